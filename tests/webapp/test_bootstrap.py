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
    path_2d = shipped_checkpoint(2)  # the shipped 2D model becomes the 2D default the same way
    versions_2d = list(ModelVersion.objects.filter(dims=2))
    if path_2d is None:
        assert not versions_2d
    else:
        assert [(v.status, v.file) for v in versions_2d] == [("default", str(path_2d))]


def test_an_upgraded_shipped_file_becomes_a_new_default_version_and_the_old_one_is_retired(db, tmp_path, monkeypatch):
    import shutil

    import pytest

    from reconstruction.errors import CheckpointError
    from reconstruction.nn.workflow import train_model
    from webapp.core.management.commands import bootstrap
    from webapp.core.services import model_version_checked_file

    shipped = tmp_path / "default_3d.pt"
    train_model(tmp_path / "a.pt", recipe="tiny", device="cpu", epochs=1)
    train_model(tmp_path / "b.pt", recipe="tiny", device="cpu", epochs=1, seed=1)
    shutil.copy(tmp_path / "a.pt", shipped)
    monkeypatch.setattr(bootstrap, "shipped_checkpoint", lambda dims=3: shipped if dims == 3 else None)
    _bootstrap()
    (v1,) = ModelVersion.objects.filter(dims=3)
    assert v1.status == "default" and model_version_checked_file(v1) == str(shipped)

    shutil.copy(tmp_path / "b.pt", shipped)  # the repository's model file replaced by an upgrade
    with pytest.raises(CheckpointError, match="changed since it was registered"):
        model_version_checked_file(v1)  # a job naming v1 never runs the new weights
    _bootstrap()
    _bootstrap()  # idempotent: the new bytes are registered once
    v1.refresh_from_db()
    (v2,) = ModelVersion.objects.filter(dims=3).exclude(pk=v1.pk)
    assert v1.status == "retired" and v2.status == "default" and v2.version == v1.version + 1
    assert v2.parent == v1 and v2.sha256 != v1.sha256 and model_version_checked_file(v2) == str(shipped)
