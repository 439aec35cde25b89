"""Writes: every change to datasets, jobs, model versions and tokens goes through here.

Each service is ``@transaction.atomic`` with keyword-only arguments and checks access with
``webapp.core.access``. Celery messages are sent with ``transaction.on_commit`` so a worker
never sees a job that is not in the database yet.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import shutil
import uuid
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from webapp.core import schemas
from webapp.core.access import get_for_user, require_write_allowed
from webapp.core.models import ApiToken, Dataset, Job, ModelVersion, ResearchGroup

logger = logging.getLogger(__name__)

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def safe_filename(name: str) -> str:
    """A file name without directories or odd characters (keeps the extension)."""
    base = os.path.basename(name.replace("\\", "/")) or "upload"
    base = _SAFE_NAME.sub("_", base).strip("._") or "upload"
    return base[-120:]


def _sha256_of(path: Path) -> str:
    """SHA-256 hex digest of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1024**2), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _store_upload(uploaded_file: Any, dest: Path) -> tuple[int, str]:
    """Move (or stream) an uploaded file to ``dest``; return its size in bytes and SHA-256."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    temp_path = getattr(uploaded_file, "temporary_file_path", None)
    known_hash = getattr(uploaded_file, "sha256_hex", "")
    if temp_path is not None and known_hash:
        uploaded_file.file.flush()
        shutil.move(temp_path(), dest)
        try:
            uploaded_file.close()
        except (OSError, FileNotFoundError):
            pass
        return dest.stat().st_size, known_hash
    digest = hashlib.sha256()
    size = 0
    limit = int(settings.CDI_UPLOAD_LIMIT_BYTES)
    with open(dest, "wb") as out:
        for chunk in uploaded_file.chunks():
            size += len(chunk)
            if size > limit:
                raise ValidationError(f"file too large: the upload limit is {limit:,} bytes")
            digest.update(chunk)
            out.write(chunk)
    return size, digest.hexdigest()


def _dataset_kind(info: dict[str, Any]) -> tuple[str, list[int], str]:
    """Kind, shape and format of a file from the library's ``inspect_file`` dict."""
    shape = info.get("shape") or info.get("intensity_shape") or []
    try:
        shape = [int(n) for n in shape]
    except (TypeError, ValueError):
        shape = []
    fmt = str(info.get("format") or info.get("source_format") or "")
    kind = str(info.get("kind") or "")
    if kind not in Dataset.KINDS:
        if "object" in kind or "result" in fmt:
            kind = "object"
        elif len(shape) == 3:
            kind = "diffraction-3d"
        elif len(shape) == 2:
            kind = "diffraction-2d"
        else:
            kind = "other"
    return kind, shape, fmt


def _remove_tree(path: Path) -> None:
    """Delete a stored upload's folder (no error when absent)."""
    shutil.rmtree(path, ignore_errors=True)


class ValidationUnavailable(ValidationError):
    """An upload could not be checked now (no worker answered in time, queue down): HTTP 503."""


def _inspect_upload(dest: Path, *, filename: str, folder: Path) -> dict[str, Any]:
    """The library's ``inspect_file`` dict of a stored upload, checked in a worker or inline.

    With ``CDI_VALIDATE_IN_WORKER`` the file is parsed by a worker on the ``io`` queue (at most
    ``CDI_VALIDATION_TIMEOUT_S`` seconds); otherwise in this process. A refused file raises
    ``ValidationError(<library message>)`` naming the user's file, never our disk layout.
    """
    from workers.tasks import ValidationNoAnswer, inspect_in_worker, inspect_upload_answer

    if settings.CDI_VALIDATE_IN_WORKER:
        try:
            answer = inspect_in_worker(str(dest), timeout_s=float(settings.CDI_VALIDATION_TIMEOUT_S))
        except ValidationNoAnswer as exc:
            raise ValidationUnavailable(str(exc)) from exc
    else:
        answer = inspect_upload_answer(str(dest))
    if "error" in answer:
        # The library names the file by its path: show the user's file name, not our disk layout.
        raise ValidationError(str(answer["error"]).replace(str(dest), filename).replace(str(folder), "upload"))
    info = dict(answer["info"])
    info["path"] = filename
    return info


def dataset_create(*, user: Any, group: ResearchGroup, uploaded_file: Any, name: str | None = None) -> Dataset:
    """Store an uploaded file as a dataset of ``group``, validated by the library.

    The file is moved (streamed) to ``MEDIA_ROOT/datasets/<group>/<uuid>/<name>``, hashed and
    checked with ``reconstruction.io.workflow.inspect_file`` in a worker (``_inspect_upload``).
    A file already in the group (same SHA-256) returns the existing dataset with
    ``is_duplicate = True`` and stores nothing. A file the library refuses raises
    ``ValidationError(<library message>)``, a check that got no answer ``ValidationUnavailable``;
    both leave no file and no row. No database transaction is held while the worker parses.
    """
    require_write_allowed(user)
    if not user.is_staff and not group.members.filter(pk=user.pk).exists():
        raise PermissionDenied("not a member of this group")
    filename = safe_filename(name or getattr(uploaded_file, "name", "") or "upload")
    folder = Path(settings.MEDIA_ROOT) / "datasets" / str(group.pk) / uuid.uuid4().hex
    dest = folder / filename
    try:
        size, digest = _store_upload(uploaded_file, dest)
        existing = Dataset.objects.filter(group=group, sha256=digest).first()
        if existing is not None:
            _remove_tree(folder)
            existing.is_duplicate = True
            return existing
        info = _inspect_upload(dest, filename=filename, folder=folder)
        kind, shape, fmt = _dataset_kind(info)
        fields = {
            "group": group,
            "owner": user,
            "name": (name or getattr(uploaded_file, "name", "") or filename)[:255],
            "file": str(dest.relative_to(Path(settings.MEDIA_ROOT))),
            "size_bytes": size,
            "sha256": digest,
            "format": fmt or dest.suffix.lstrip(".").lower(),
            "kind": kind,
            "shape": shape,
            "metadata": info,
        }
        try:
            with transaction.atomic():
                dataset = Dataset.objects.create(**fields)
        except IntegrityError:  # the same file uploaded twice at the same moment
            _remove_tree(folder)
            existing = Dataset.objects.get(group=group, sha256=digest)
            existing.is_duplicate = True
            return existing
    except BaseException:
        _remove_tree(folder)
        raise
    dataset.is_duplicate = False
    return dataset


def dataset_register_simulated(*, job: Job, path: str | Path, summary: dict[str, Any]) -> Dataset:
    """Record the training set a simulate ``job`` wrote (``path`` under MEDIA_ROOT) as a dataset of its group.

    Kind "simulated-set"; metadata: n patterns, pattern shape, dims, the recipe, seed and
    families from ``simulate_dataset``'s ``summary``; ``produced_by_job`` is the job. Safe to call
    twice for one job; a set identical to one the group already has returns that dataset.
    """
    path = Path(path)
    recipe = dict(summary.get("recipe") or {})
    dims = int(recipe.get("dims") or len(summary.get("shape") or []) or 3)
    shape = [int(n) for n in (summary.get("shape") or [recipe.get("shape", 0)] * dims)]
    metadata = {
        "format": "reconstruction.simulate/1",
        "n": int(summary.get("n") or 0),
        "shape": shape,
        "dims": dims,
        "recipe": recipe,
        "seed": int(summary.get("seed") or 0),
        "families": dict(summary.get("families") or {}),
        "produced_by_job": job.pk,
        "job_params": dict(job.params or {}),
    }
    digest = _sha256_of(path)
    fields = {
        "owner": job.owner,
        "name": f"simulated set of job {job.pk} ({metadata['n']} × {'×'.join(str(n) for n in shape)})"[:255],
        "file": str(path.resolve().relative_to(Path(settings.MEDIA_ROOT).resolve())),
        "size_bytes": path.stat().st_size,
        "sha256": digest,
        "format": "hdf5",
        "kind": "simulated-set",
        "shape": shape,
        "metadata": metadata,
    }
    with transaction.atomic():
        mine = Dataset.objects.select_for_update().filter(produced_by_job=job).first()
        if mine is not None:  # the task ran again: describe the file it rewrote
            Dataset.objects.filter(pk=mine.pk).update(**fields)
            mine.refresh_from_db()
            return mine
        same = Dataset.objects.filter(group=job.group, sha256=digest).first()
        if same is not None:  # the same recipe and seed simulated before: one dataset
            return same
        return Dataset.objects.create(group=job.group, produced_by_job=job, **fields)


def enqueue_or_fail(job_id: int) -> None:
    """Send the Celery message of a queued job (call after commit); a dead broker fails the job."""
    from kombu.exceptions import OperationalError

    from workers.tasks import enqueue_job

    try:
        enqueue_job(job_id)
    except (OperationalError, ConnectionError, OSError) as exc:
        logger.error("could not enqueue job %s: %s", job_id, exc)
        Job.objects.filter(pk=job_id, status="queued").update(
            status="failed",
            error_message=f"the job queue (Redis) is unreachable: {exc}",
            finished=timezone.now(),
            updated=timezone.now(),
        )


def _check_dataset_kind(kind: str, params: dict[str, Any], dataset: Dataset | None) -> None:
    """A train job reads a simulated set of its recipe's pattern shape; other kinds need measured data."""
    if dataset is None:
        return
    if kind in schemas.OPTIONAL_DATASET:
        if dataset.kind != schemas.OPTIONAL_DATASET[kind]:
            raise ValidationError({"dataset": f"a train job learns from a simulated set (a simulate job's output); "
                                              f"dataset {dataset.pk} is {dataset.kind}"})
        from reconstruction.nn.config import get_recipe

        recipe = get_recipe(params["recipe"])
        shape = [int(n) for n in dataset.shape or []]
        if shape != [recipe.shape] * recipe.dims:
            got = "×".join(str(n) for n in shape) or "unknown"
            raise ValidationError({"dataset": f"the simulated set holds {got} patterns but recipe {recipe.name!r} "
                                              f"trains a network on {'×'.join([str(recipe.shape)] * recipe.dims)} "
                                              "patterns: simulate with that shape and dims, or choose another recipe"})
    elif dataset.kind == "simulated-set":
        raise ValidationError({"dataset": f"dataset {dataset.pk} is a simulated training set: a {kind} job needs a "
                                          "measured or prepared diffraction pattern"})


def _check_support_dataset(group: ResearchGroup, params: dict[str, Any], dataset: Dataset | None) -> None:
    """A phase job's ``support_dataset`` must be an image or object of the job's group, of the
    data's dimensionality (its shape is checked by the library against the phased grid)."""
    pk = params.get("support_dataset") or 0
    if not pk:
        return
    support = Dataset.objects.filter(pk=pk).first()
    if support is None:
        raise ValidationError({"support_dataset": f"there is no dataset #{pk}"})
    _check_same_group(group, support, "support_dataset")
    if dataset is not None and support.pk == dataset.pk:
        raise ValidationError({"support_dataset": "the support must be another file than the data (a 0/1 image "
                                                  "or a reconstructed object)"})
    if support.kind == "simulated-set":
        raise ValidationError({"support_dataset": f"dataset #{pk} is a simulated training set, not a support"})
    if dataset is not None and support.dims != dataset.dims:
        raise ValidationError({"support_dataset": f"dataset #{pk} is {support.dims}D but the data are {dataset.dims}D"})


def _check_shipped_model(dims: int) -> None:
    """Refuse a predict job that would fall back on a shipped model file that is not there."""
    from reconstruction.nn.workflow import default_checkpoint_path

    if not default_checkpoint_path(dims).is_file():
        raise ValidationError({"model_version": f"there is no {dims}D model to predict with: train one (a train job "
                                                f"with a {dims}D recipe) and choose it, or have staff make one the default"})


def _check_same_group(job_group: ResearchGroup, other: Any, what: str) -> None:
    if other is not None and getattr(other, "group_id", job_group.pk) != job_group.pk:
        raise ValidationError({what: f"the {what} belongs to another research group"})


@transaction.atomic
def job_submit(
    *,
    user: Any,
    group: ResearchGroup,
    kind: str,
    params: dict[str, Any] | None = None,
    dataset: Dataset | None = None,
    parent: Job | None = None,
    model_version: ModelVersion | None = None,
    preset: str | None = None,
) -> Job:
    """Create a queued job after validating its parameters, and enqueue it on commit.

    ``predict``/``pipeline`` use ``model_version`` or the registered default for the dataset's
    dimensionality (None: the library's shipped model); ``finetune`` starts from
    ``model_version`` or the default; ``refine`` starts from ``parent``'s result.
    """
    from webapp.core.selectors import default_model_version

    require_write_allowed(user)
    if not user.is_staff and not group.members.filter(pk=user.pk).exists():
        raise PermissionDenied("not a member of this group")
    full = schemas.validate_params(kind, params, preset=preset)
    if kind in schemas.NEEDS_DATASET and dataset is None:
        raise ValidationError({"dataset": f"a {kind} job needs an input dataset"})
    _check_same_group(group, dataset, "dataset")
    _check_same_group(group, parent, "parent")
    _check_dataset_kind(kind, full, dataset)
    _check_support_dataset(group, full, dataset)
    if kind == "refine":
        if parent is None:
            raise ValidationError({"parent": "a refine job needs a parent job whose result it refines"})
        if parent.status != "succeeded" or not parent.result_path.exists():
            raise ValidationError({"parent": f"job {parent.pk} has no result to refine (status {parent.status})"})
    if model_version is not None and model_version.status == "retired" and kind in ("predict", "pipeline"):
        raise ValidationError({"model_version": f"model version {model_version} is retired"})
    if kind in ("predict", "pipeline", "finetune") and model_version is None:
        model_version = default_model_version(dataset.dims if dataset is not None else 3)
    if kind == "finetune" and model_version is None:
        raise ValidationError({"model_version": "no base model: choose a model version to fine-tune"})
    if kind in ("predict", "pipeline") and model_version is None:
        _check_shipped_model(dataset.dims if dataset is not None else 3)
    job = Job.objects.create(
        group=group,
        owner=user,
        kind=kind,
        params=full,
        dataset=dataset,
        parent=parent,
        model_version=model_version,
        celery_task_id=uuid.uuid4().hex,
        log=f"{timezone.now():%Y-%m-%d %H:%M:%S} submitted by {user}\n",
    )
    transaction.on_commit(lambda: enqueue_or_fail(job.pk))
    return job


@transaction.atomic
def job_cancel(*, user: Any, job: Job) -> Job:
    """Ask a job to stop: a queued job never runs, a running one stops at its next check."""
    job = get_for_user(user, Job.objects.all(), job.pk, write=True)
    if job.is_finished:
        return job
    now = timezone.now()
    if job.status == "queued":
        Job.objects.filter(pk=job.pk, status="queued").update(
            cancel_requested=True, status="cancelled", finished=now, updated=now, stage="cancelled"
        )
    Job.objects.filter(pk=job.pk).update(cancel_requested=True)
    # Steps of a pipeline run inside the parent's task: cancelling either stops both.
    from workers.sweeper import pipeline_steps

    pipeline_steps(job).exclude(status__in=Job.FINISHED).update(cancel_requested=True)
    job.refresh_from_db()
    return job


@transaction.atomic
def job_rerun(*, user: Any, job: Job, params: dict[str, Any] | None = None, preset: str | None = None) -> Job:
    """Submit a copy of ``job`` (same kind, dataset, parent, model) with edited ``params``."""
    job = get_for_user(user, Job.objects.all(), job.pk, write=True)
    merged = dict(job.params)
    if preset:
        merged = {k: v for k, v in schemas.validate_params(job.kind, {}, preset=preset).items()}
    merged.update(params or {})
    parent = job.parent if job.kind == "refine" else None
    return job_submit(
        user=user,
        group=job.group,
        kind=job.kind,
        params=merged,
        dataset=job.dataset,
        parent=parent,
        model_version=job.model_version if job.model_version and job.model_version.status != "retired" else None,
    )


def _require_staff(user: Any) -> None:
    require_write_allowed(user)
    if not user.is_staff:
        raise PermissionDenied("only staff change model versions")


@transaction.atomic
def model_version_promote(*, user: Any, version: ModelVersion) -> ModelVersion:
    """Make ``version`` the default for its dimensionality (the previous default becomes a candidate)."""
    _require_staff(user)
    version = ModelVersion.objects.select_for_update().get(pk=version.pk)
    if not Path(version.file).exists():
        raise ValidationError(f"the checkpoint file {version.file} is missing")
    ModelVersion.objects.filter(dims=version.dims, status="default").exclude(pk=version.pk).update(status="candidate")
    version.status = "default"
    version.save(update_fields=["status"])
    return version


@transaction.atomic
def model_version_retire(*, user: Any, version: ModelVersion) -> ModelVersion:
    """Retire ``version``: it is no longer offered (retiring the default leaves none)."""
    _require_staff(user)
    ModelVersion.objects.filter(pk=version.pk).update(status="retired")
    version.refresh_from_db()
    return version


@transaction.atomic
def model_version_register(
    *,
    name: str,
    file: str | Path,
    dims: int = 3,
    config: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    parent: ModelVersion | None = None,
    trained_by_job: Job | None = None,
    status: str = "candidate",
) -> ModelVersion:
    """Record a checkpoint file as the next version of ``name`` (used by tasks and bootstrap)."""
    path = Path(file)
    last = ModelVersion.objects.filter(name=name).order_by("-version").first()
    version = ModelVersion(
        name=name,
        version=(last.version + 1) if last else 1,
        dims=int(dims),
        file=str(path),
        sha256=_sha256_of(path) if path.exists() else "",
        config=config or {},
        metrics=metrics or {},
        parent=parent,
        trained_by_job=trained_by_job,
        status="candidate",
    )
    version.save()
    if status == "default":
        ModelVersion.objects.filter(dims=version.dims, status="default").exclude(pk=version.pk).update(status="candidate")
        version.status = "default"
        version.save(update_fields=["status"])
    return version


def model_version_checked_file(version: ModelVersion) -> str:
    """Path of ``version``'s checkpoint after checking its bytes are the ones registered.

    Raises the library's ``CheckpointError`` (a readable job failure) when the file is gone or
    its sha256 differs from the registered one (e.g. replaced by an upgrade): a job must never
    run other weights than the version it names.
    """
    from reconstruction.errors import CheckpointError

    path = Path(version.file)
    if not path.is_file():
        raise CheckpointError(f"the checkpoint file of {version} is missing ({path})")
    if version.sha256:
        actual = _sha256_of(path)
        if actual != version.sha256:
            raise CheckpointError(
                f"the checkpoint file of {version} changed since it was registered (sha256 "
                f"{version.sha256[:12]}… registered, {actual[:12]}… now): choose another model "
                "version, or ask staff to register the new file"
            )
    return str(path)


def model_version_refresh_shipped(*, name: str, file: str | Path, dims: int, config: dict[str, Any],
                                  metrics: dict[str, Any]) -> ModelVersion | None:
    """Register the repository's shipped checkpoint ``file`` unless a version with its bytes exists.

    When versions point at the same path with other bytes (the file was replaced by an upgrade),
    they are retired (their weights are gone) and the new bytes become the next version, the
    default if one of them was the default or none exists. Returns the new version or None.
    """
    path = Path(file)
    same_path = list(ModelVersion.objects.filter(file=str(path)))
    sha = _sha256_of(path)
    if any(v.sha256 == sha for v in same_path):
        return None
    with transaction.atomic():  # every version at this path now names weights that are gone
        was_default = any(v.status == "default" for v in same_path)
        ModelVersion.objects.filter(pk__in=[v.pk for v in same_path]).update(status="retired")
        has_default = ModelVersion.objects.filter(dims=dims, status="default").exists()
        return model_version_register(
            name=name, file=path, dims=dims, config=config, metrics=metrics,
            parent=max(same_path, key=lambda v: v.version) if same_path else None,
            status="default" if was_default or not has_default else "candidate",
        )


def hash_token(raw_key: str) -> str:
    """SHA-256 hex digest of a raw API key (what the database stores)."""
    return hashlib.sha256(raw_key.encode()).hexdigest()


@transaction.atomic
def api_token_create(*, user: Any, name: str = "", read_only: bool = False) -> tuple[ApiToken, str]:
    """Create an API token; return it and the raw key, which is shown once and never stored."""
    raw = "cdi_" + secrets.token_urlsafe(32)
    try:
        token = ApiToken.objects.create(
            user=user, key_hash=hash_token(raw), prefix=raw[:10], name=name[:100], read_only=read_only
        )
    except IntegrityError as exc:  # a 256-bit collision: practically impossible
        raise ValidationError("could not create a token, try again") from exc
    return token, raw


__all__ = [
    "ValidationUnavailable",
    "api_token_create",
    "dataset_create",
    "dataset_register_simulated",
    "enqueue_or_fail",
    "hash_token",
    "job_cancel",
    "job_rerun",
    "job_submit",
    "model_version_promote",
    "model_version_register",
    "model_version_retire",
]
