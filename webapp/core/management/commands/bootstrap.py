"""``manage.py bootstrap``: register the shipped default model and create the demo account.

Idempotent; run by ``dev.py app`` (and the docker web service) after ``migrate``.
"""

from __future__ import annotations

from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from webapp.core.models import ResearchGroup
from webapp.core.services import model_version_refresh_shipped

SHIPPED_NAME = "autophasenn-shipped"


def shipped_checkpoint(dims: int = 3) -> Path | None:
    """Path of the library's shipped model for ``dims``, or None when it is not there (yet)."""
    try:
        from reconstruction.nn import default_checkpoint_path
    except ImportError:
        return None
    from reconstruction.errors import ReconstructionError

    try:
        path = Path(default_checkpoint_path(dims))
    except ReconstructionError:
        return None
    return path if path.is_file() else None


def checkpoint_config(path: Path) -> tuple[dict, dict]:
    """Architecture config and metrics stored in a checkpoint; raises ``CheckpointError`` if bad."""
    from reconstruction.cli.common import to_jsonable
    from reconstruction.nn.checkpoint import read_checkpoint

    payload = read_checkpoint(path)
    return to_jsonable(dict(payload.get("config") or {})), to_jsonable(dict(payload.get("metrics") or {}))


class Command(BaseCommand):
    help = "Register the shipped default model(s) and create the demo group and user (idempotent)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--no-demo", action="store_true", help="do not create the demo account")

    def handle(self, *args, **options) -> None:
        for dims in (3, 2):
            self.register_shipped(dims)
        if not options["no_demo"]:
            self.create_demo()

    def register_shipped(self, dims: int) -> None:
        path = shipped_checkpoint(dims)
        if path is None:
            if dims == 3:
                self.stderr.write("warning: no shipped 3D model found (reconstruction.nn.default_checkpoint_path); "
                                  "predict jobs will fail until one is registered")
            return
        from reconstruction.errors import CheckpointError

        try:
            config, metrics = checkpoint_config(path)
        except CheckpointError as exc:
            self.stderr.write(f"warning: the shipped {dims}D model is unusable: {exc}")
            return
        version = model_version_refresh_shipped(
            name=SHIPPED_NAME if dims == 3 else f"{SHIPPED_NAME}-2d", file=path, dims=dims, config=config,
            metrics=metrics,
        )
        if version is None:
            return
        self.stdout.write(f"registered {version}")

    def create_demo(self) -> None:
        group, _ = ResearchGroup.objects.get_or_create(name="demo")
        user_model = get_user_model()
        user = user_model.objects.filter(username="demo").first()
        if user is None:
            user = user_model.objects.create_user("demo", password="demo-password")
            self.stdout.write("created user demo (password demo-password)")
        group.members.add(user)
