"""Database models: the ``Job`` row is the truth, Celery only carries work.

Arrays live in files (under ``MEDIA_ROOT``); rows hold scalars, paths and short curves.
"""

from __future__ import annotations

import logging
from pathlib import Path

from django.conf import settings
from django.db import models
from django.utils import timezone

logger = logging.getLogger(__name__)


class ResearchGroup(models.Model):
    """A beamline / research group; datasets and jobs belong to one, every member sees them."""

    name = models.CharField(max_length=100, unique=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="research_groups", blank=True)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Dataset(models.Model):
    """An uploaded file (diffraction pattern or object) validated by the library, or a training
    set a simulate job wrote (kind "simulated-set", ``produced_by_job`` set)."""

    KINDS = ["diffraction-3d", "diffraction-2d", "object", "simulated-set", "other"]

    group = models.ForeignKey(ResearchGroup, on_delete=models.CASCADE, related_name="datasets")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="datasets")
    name = models.CharField(max_length=255)
    file = models.FileField(max_length=500)  # relative to MEDIA_ROOT: datasets/<group>/<uuid>/<name>
    size_bytes = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, db_index=True)
    format = models.CharField(max_length=32, blank=True)
    kind = models.CharField(max_length=32, default="other")
    shape = models.JSONField(default=list, blank=True)
    metadata = models.JSONField(default=dict, blank=True)  # inspect_file's dict, or the simulation's summary
    produced_by_job = models.ForeignKey(
        "Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="produced_datasets"
    )
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created"]
        constraints = [models.UniqueConstraint(fields=["group", "sha256"], name="dataset_unique_hash_per_group")]

    def __str__(self) -> str:
        return f"{self.name} ({self.group})"

    @property
    def path(self) -> Path:
        """Absolute path of the stored file."""
        return Path(settings.MEDIA_ROOT) / self.file.name

    @property
    def dims(self) -> int:
        """2 or 3 for diffraction data and simulated sets (3 when unknown)."""
        if self.kind == "simulated-set":
            return 2 if int((self.metadata or {}).get("dims") or 3) == 2 else 3
        return 2 if self.kind == "diffraction-2d" else 3


class ModelVersion(models.Model):
    """A trained network checkpoint with lineage and evaluation metrics."""

    STATUSES = ["candidate", "default", "retired"]

    name = models.CharField(max_length=100)
    version = models.PositiveIntegerField(default=1)
    dims = models.PositiveSmallIntegerField(default=3)
    file = models.CharField(max_length=500)  # absolute path of the checkpoint (.pt)
    sha256 = models.CharField(max_length=64, blank=True)
    config = models.JSONField(default=dict, blank=True)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children")
    trained_by_job = models.ForeignKey(
        "Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="trained_models"
    )
    metrics = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, default="candidate", choices=[(s, s) for s in STATUSES])
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created"]
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="model_version_unique"),
            models.UniqueConstraint(
                fields=["dims"], condition=models.Q(status="default"), name="one_default_model_per_dims"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version} ({self.dims}D, {self.status})"


class Job(models.Model):
    """One unit of work (simulate, train, finetune, predict, refine, phase, pipeline)."""

    STATUSES = ["queued", "running", "succeeded", "failed", "cancelled"]
    FINISHED = ("succeeded", "failed", "cancelled")

    group = models.ForeignKey(ResearchGroup, on_delete=models.CASCADE, related_name="jobs")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="jobs")
    kind = models.CharField(max_length=16)
    status = models.CharField(max_length=16, default="queued", choices=[(s, s) for s in STATUSES], db_index=True)
    params = models.JSONField(default=dict, blank=True)
    dataset = models.ForeignKey(Dataset, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children")
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    progress = models.FloatField(default=0.0)
    stage = models.CharField(max_length=100, blank=True)
    eta_s = models.FloatField(null=True, blank=True)
    latest_values = models.JSONField(default=dict, blank=True)
    curves = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    summary = models.JSONField(default=dict, blank=True)
    log = models.TextField(blank=True)
    error_message = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    cancel_requested = models.BooleanField(default=False)
    celery_task_id = models.CharField(max_length=64, blank=True)  # empty for steps run inside a parent's task
    created = models.DateTimeField(default=timezone.now, db_index=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    updated = models.DateTimeField(default=timezone.now)  # heartbeat, written with progress

    class Meta:
        ordering = ["-created", "-id"]

    def __str__(self) -> str:
        return f"job {self.pk} {self.kind} ({self.status})"

    def save(self, *args, **kwargs) -> None:
        """Save; a new job whose folder already exists has that folder set aside first."""
        adding = self._state.adding
        super().save(*args, **kwargs)
        if adding:
            self._set_aside_stale_folder()

    def _set_aside_stale_folder(self) -> None:
        """Rename an existing ``jobs/<id>/`` to ``jobs/<id>.stale-<UTC time>/`` (nothing is
        deleted): a database recreated beside old files, or an id SQLite reused after a rollback,
        must not hand this job another job's prepared data or results."""
        folder = self.result_dir
        if not folder.exists():
            return
        aside = folder.with_name(f"{folder.name}.stale-{timezone.now():%Y%m%dT%H%M%S%f}")
        folder.rename(aside)
        logger.warning("job %s: an older folder with its id was set aside as %s", self.pk, aside.name)

    @property
    def result_dir(self) -> Path:
        """Folder of this job's files: MEDIA_ROOT/jobs/<id>/."""
        return Path(settings.MEDIA_ROOT) / "jobs" / str(self.pk)

    @property
    def result_path(self) -> Path:
        """The result CXI file: MEDIA_ROOT/jobs/<id>/result.cxi."""
        return self.result_dir / "result.cxi"

    @property
    def summary_path(self) -> Path:
        """The JSON summary: MEDIA_ROOT/jobs/<id>/summary.json."""
        return self.result_dir / "summary.json"

    def prepared_files(self) -> list[Path]:
        """Existing ``prepared.cxi`` files on this job's data grid, most specific first: its own
        (or, for a pipeline, its predict step's), then those of its parent, grandparent, …"""
        files: list[Path] = []
        node: Job | None = self
        while node is not None:
            folders = [node.result_dir]
            if node.kind == "pipeline":  # its predict step holds the prepared data
                folders += [step.result_dir for step in Job.objects.filter(parent=node, kind="predict")]
            files += [folder / "prepared.cxi" for folder in folders]
            node = node.parent
        return [f for f in files if f.is_file()]

    @property
    def is_finished(self) -> bool:
        """True once succeeded, failed or cancelled."""
        return self.status in self.FINISHED


class ApiToken(models.Model):
    """A per-user API token; only the SHA-256 of the key is stored."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    key_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=12, blank=True)  # first characters, to recognise a token
    name = models.CharField(max_length=100, blank=True)
    read_only = models.BooleanField(default=False)
    created = models.DateTimeField(default=timezone.now)
    last_used = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.user} {self.name or self.prefix}{' (read-only)' if self.read_only else ''}"
