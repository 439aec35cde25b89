"""``manage.py bootstrap``: the demo account and the shipped default model, idempotently."""

from __future__ import annotations

from io import StringIO

from django.contrib.auth import authenticate
from django.core.management import call_command

from webapp.core.management.commands.bootstrap import shipped_checkpoint
from webapp.core.models import ModelVersion, ResearchGroup


def _bootstrap() -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("bootstrap", stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_bootstrap_creates_the_demo_account_once(db):
    _bootstrap()
    _bootstrap()
    group = ResearchGroup.objects.get(name="demo")
    user = authenticate(username="demo", password="demo-password")
    assert user is not None and list(group.members.all()) == [user]


def test_bootstrap_registers_the_shipped_model_as_the_3d_default_or_warns(db):
    out, err = _bootstrap()
    _bootstrap()
    path = shipped_checkpoint(3)
    if path is None:
        assert "no shipped 3D model" in err and not ModelVersion.objects.exists()
        return
    (version,) = ModelVersion.objects.filter(dims=3)
    assert version.status == "default" and version.file == str(path) and len(version.sha256) == 64
    assert version.trained_by_job is None
