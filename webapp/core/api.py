"""The JSON API (django-ninja) mounted at ``/api/``; OpenAPI docs at ``/api/docs``.

Authentication: ``Authorization: Bearer <token>`` (tokens from ``manage.py create_api_token``;
read-only tokens may only read) or the browser session (with CSRF on writes). Every object is
fetched through ``webapp.core.access``: outsiders get 404.
"""

from __future__ import annotations

import mimetypes
from datetime import datetime
from pathlib import Path
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, Http404, HttpRequest
from django.utils import timezone
from ninja import File, Form, NinjaAPI, Schema, Status
from ninja.files import UploadedFile
from ninja.security import HttpBearer, django_auth

from webapp.core import schemas, selectors, services
from webapp.core.access import group_for_user
from webapp.core.models import ApiToken, Dataset, Job, ModelVersion
from webapp.core.uploads import UploadTooLarge


class BearerToken(HttpBearer):
    """``Authorization: Bearer cdi_…``: look the token up by the SHA-256 of its key."""

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        from webapp.core.access import READ_ONLY_ATTR

        row = ApiToken.objects.select_related("user").filter(key_hash=services.hash_token(token)).first()
        if row is None or not row.user.is_active:
            return None
        now = timezone.now()
        if row.last_used is None or (now - row.last_used).total_seconds() > 60:
            ApiToken.objects.filter(pk=row.pk).update(last_used=now)
        user = row.user
        setattr(user, READ_ONLY_ATTR, row.read_only)
        request.user = user
        return user


api = NinjaAPI(
    title="CDI phase retrieval API",
    version="1",
    description="Datasets, jobs (simulate, train, finetune, predict, refine, phase, pipeline), results, models.",
    auth=[BearerToken(), django_auth],
    urls_namespace="api",
)


# ---------------------------------------------------------------- errors
def _validation_detail(exc: ValidationError) -> Any:
    if hasattr(exc, "error_dict"):
        return {field: " ".join(str(m) for msgs in errors for m in msgs.messages) for field, errors in exc.error_dict.items()}
    return " ".join(exc.messages)


@api.exception_handler(ValidationError)
def _on_validation_error(request: HttpRequest, exc: ValidationError):
    return api.create_response(request, {"detail": _validation_detail(exc)}, status=400)


@api.exception_handler(services.ValidationUnavailable)
def _on_validation_unavailable(request: HttpRequest, exc: services.ValidationUnavailable):
    return api.create_response(request, {"detail": _validation_detail(exc)}, status=503)


@api.exception_handler(PermissionDenied)
def _on_permission_denied(request: HttpRequest, exc: PermissionDenied):
    return api.create_response(request, {"detail": str(exc) or "permission denied"}, status=403)


@api.exception_handler(Http404)
def _on_not_found(request: HttpRequest, exc: Http404):
    return api.create_response(request, {"detail": "Not Found"}, status=404)


@api.exception_handler(UploadTooLarge)
def _on_too_large(request: HttpRequest, exc: UploadTooLarge):
    return api.create_response(request, {"detail": str(exc)}, status=413)


# ---------------------------------------------------------------- schemas
class GroupOut(Schema):
    id: int
    name: str


class DatasetOut(Schema):
    id: int
    group: int
    group_name: str
    owner: str
    name: str
    size_bytes: int
    sha256: str
    format: str
    kind: str
    shape: list[int]
    metadata: dict[str, Any]
    produced_by_job: int | None = None
    created: datetime
    duplicate: bool = False
    message: str = ""


class JobIn(Schema):
    kind: str
    params: dict[str, Any] = {}
    preset: str | None = None
    dataset: int | None = None
    parent: int | None = None
    model_version: int | None = None
    group: int | None = None


class RerunIn(Schema):
    params: dict[str, Any] = {}
    preset: str | None = None


class JobOut(Schema):
    id: int
    group: int
    owner: str
    kind: str
    status: str
    params: dict[str, Any]
    dataset: int | None
    parent: int | None
    children: list[int]
    model_version: int | None
    progress: float
    stage: str
    eta_s: float | None
    latest_values: dict[str, Any]
    curves: dict[str, Any]
    metrics: dict[str, Any]
    summary: dict[str, Any]
    error_message: str
    log_tail: str
    attempts: int
    cancel_requested: bool
    created: datetime
    started: datetime | None
    finished: datetime | None
    updated: datetime
    result_url: str | None
    files: list[str]


class ModelVersionOut(Schema):
    id: int
    name: str
    version: int
    dims: int
    sha256: str
    config: dict[str, Any]
    metrics: dict[str, Any]
    status: str
    parent: int | None
    trained_by_job: int | None
    created: datetime


class Message(Schema):
    detail: Any


def dataset_out(ds: Dataset, *, duplicate: bool = False) -> dict[str, Any]:
    """The API view of a dataset."""
    return {
        "id": ds.pk, "group": ds.group_id, "group_name": ds.group.name, "owner": ds.owner.get_username(),
        "name": ds.name, "size_bytes": ds.size_bytes, "sha256": ds.sha256, "format": ds.format, "kind": ds.kind,
        "shape": ds.shape or [], "metadata": ds.metadata or {}, "produced_by_job": ds.produced_by_job_id, "created": ds.created,
        "duplicate": duplicate,
        "message": f"this file is already dataset {ds.pk} of group {ds.group.name}" if duplicate else "",
    }


def job_files(job: Job) -> list[str]:
    """Names of the files in the job's folder (no temporaries)."""
    if not job.result_dir.is_dir():
        return []
    return sorted(p.name for p in job.result_dir.iterdir() if p.is_file() and ".tmp" not in p.name)


def job_out(job: Job, *, log_chars: int = 4000) -> dict[str, Any]:
    """The API view of a job (what the pages poll)."""
    has_result = job.status == "succeeded" and job.result_path.exists()
    return {
        "id": job.pk, "group": job.group_id, "owner": job.owner.get_username(), "kind": job.kind,
        "status": job.status, "params": job.params, "dataset": job.dataset_id, "parent": job.parent_id,
        "children": sorted(child.pk for child in job.children.all()),
        "model_version": job.model_version_id, "progress": job.progress, "stage": job.stage, "eta_s": job.eta_s,
        "latest_values": job.latest_values or {}, "curves": job.curves or {}, "metrics": job.metrics or {},
        "summary": job.summary or {}, "error_message": job.error_message, "log_tail": job.log[-log_chars:],
        "attempts": job.attempts, "cancel_requested": job.cancel_requested, "created": job.created,
        "started": job.started, "finished": job.finished, "updated": job.updated,
        "result_url": f"/api/jobs/{job.pk}/result" if has_result else None, "files": job_files(job),
    }


def model_out(mv: ModelVersion) -> dict[str, Any]:
    """The API view of a model version (the file path stays on the server)."""
    return {
        "id": mv.pk, "name": mv.name, "version": mv.version, "dims": mv.dims, "sha256": mv.sha256,
        "config": mv.config or {}, "metrics": mv.metrics or {}, "status": mv.status, "parent": mv.parent_id,
        "trained_by_job": mv.trained_by_job_id, "created": mv.created,
    }


def _file_response(path: Path, *, download_name: str) -> FileResponse:
    if not path.is_file():
        raise Http404("file not found")
    content_type = mimetypes.guess_type(download_name)[0] or "application/octet-stream"
    if path.suffix in (".cxi", ".h5", ".hdf5", ".nxs"):
        content_type = "application/x-hdf5"
    return FileResponse(open(path, "rb"), as_attachment=True, filename=download_name, content_type=content_type)


# ---------------------------------------------------------------- routes
@api.get("/groups", response=list[GroupOut], tags=["groups"])
def list_groups(request: HttpRequest):
    """Research groups you belong to."""
    return [{"id": g.pk, "name": g.name} for g in selectors.groups_of(request.auth)]


@api.get("/schemas", tags=["jobs"])
def job_schemas(request: HttpRequest):
    """Parameters, defaults and presets of every job kind."""
    return schemas.specs_as_json()


@api.get("/datasets", response=list[DatasetOut], tags=["datasets"])
def list_datasets(request: HttpRequest, group: int | None = None, limit: int = 200):
    """Datasets of your groups, newest first."""
    qs = selectors.datasets_visible_to(request.auth)
    if group is not None:
        qs = qs.filter(group_id=group)
    return [dataset_out(ds) for ds in qs[: max(1, min(limit, 1000))]]


@api.post("/datasets", response={201: DatasetOut, 200: DatasetOut, 400: Message, 403: Message, 404: Message, 413: Message,
                                  503: Message}, tags=["datasets"])
def upload_dataset(request: HttpRequest, file: UploadedFile = File(...), group: int | None = Form(None),
                   name: str | None = Form(None)):
    """Upload a CXI / HDF5 / NeXus / NPY / NPZ / EDF file (multipart field ``file``).

    The file is checked by the library in a worker (queue ``io``); a refused file gives 400 with
    the library's message, a file already in the group gives 200 with ``duplicate: true`` and the
    existing dataset, and 503 means no worker checked it in time (nothing was stored: retry).
    """
    try:
        grp = group_for_user(request.auth, group)
    except ValueError as exc:
        raise ValidationError({"group": str(exc)}) from exc
    ds = services.dataset_create(user=request.auth, group=grp, uploaded_file=file, name=name)
    duplicate = bool(getattr(ds, "is_duplicate", False))
    return Status(200 if duplicate else 201, dataset_out(ds, duplicate=duplicate))


@api.get("/datasets/{dataset_id}", response=DatasetOut, tags=["datasets"])
def get_dataset(request: HttpRequest, dataset_id: int):
    """One dataset with its metadata."""
    return dataset_out(selectors.dataset_get_for_user(request.auth, dataset_id))


@api.get("/datasets/{dataset_id}/download", tags=["datasets"])
def download_dataset(request: HttpRequest, dataset_id: int):
    """The uploaded file itself."""
    ds = selectors.dataset_get_for_user(request.auth, dataset_id)
    return _file_response(ds.path, download_name=ds.path.name)


@api.get("/jobs", response=list[JobOut], tags=["jobs"])
def list_jobs(request: HttpRequest, status: str | None = None, kind: str | None = None, group: int | None = None,
              dataset: int | None = None, limit: int = 100):
    """Jobs of your groups, newest first (filters: status, kind, group, dataset)."""
    qs = selectors.jobs_visible_to(request.auth).prefetch_related("children")
    for field, value in (("status", status), ("kind", kind), ("group_id", group), ("dataset_id", dataset)):
        if value is not None:
            qs = qs.filter(**{field: value})
    return [job_out(job, log_chars=500) for job in qs[: max(1, min(limit, 1000))]]


@api.post("/jobs", response={201: JobOut, 400: Message, 403: Message, 404: Message}, tags=["jobs"])
def submit_job(request: HttpRequest, payload: JobIn):
    """Submit a job; parameters are validated (defaults and ``preset`` filled in)."""
    user = request.auth
    dataset = selectors.dataset_get_for_user(user, payload.dataset) if payload.dataset is not None else None
    parent = selectors.job_get_for_user(user, payload.parent) if payload.parent is not None else None
    model = (selectors.model_version_get_for_user(user, payload.model_version)
             if payload.model_version is not None else None)
    group_id = payload.group
    if group_id is None and (dataset or parent) is not None:
        group_id = (dataset or parent).group_id
    try:
        group = group_for_user(user, group_id)
    except ValueError as exc:
        raise ValidationError({"group": str(exc)}) from exc
    job = services.job_submit(user=user, group=group, kind=payload.kind, params=payload.params, dataset=dataset,
                              parent=parent, model_version=model, preset=payload.preset)
    job.refresh_from_db()  # enqueueing may already have failed it (broker down)
    return Status(201, job_out(job))


@api.get("/jobs/{job_id}", response=JobOut, tags=["jobs"])
def get_job(request: HttpRequest, job_id: int, log_chars: int = 4000):
    """Status, progress, stage, ETA, latest error values, short curves, metrics and log tail."""
    from workers.sweeper import recover_if_stale

    job = recover_if_stale(selectors.job_get_for_user(request.auth, job_id))
    return job_out(job, log_chars=max(0, min(log_chars, 200_000)))


@api.post("/jobs/{job_id}/cancel", response={200: JobOut, 403: Message, 404: Message}, tags=["jobs"])
def cancel_job(request: HttpRequest, job_id: int):
    """Cancel: a queued job never runs, a running one stops within a few seconds."""
    job = selectors.job_get_for_user(request.auth, job_id, write=True)
    return Status(200, job_out(services.job_cancel(user=request.auth, job=job)))


@api.post("/jobs/{job_id}/rerun", response={201: JobOut, 400: Message, 403: Message, 404: Message}, tags=["jobs"])
def rerun_job(request: HttpRequest, job_id: int, payload: RerunIn | None = None):
    """Submit a copy of the job with edited parameters (body: ``{"params": {...}}``)."""
    job = selectors.job_get_for_user(request.auth, job_id, write=True)
    payload = payload or RerunIn()
    new = services.job_rerun(user=request.auth, job=job, params=payload.params, preset=payload.preset)
    new.refresh_from_db()
    return Status(201, job_out(new))


@api.get("/jobs/{job_id}/result", tags=["jobs"])
def download_result(request: HttpRequest, job_id: int):
    """The result CXI file (``result.cxi``) of a finished job."""
    job = selectors.job_get_for_user(request.auth, job_id)
    return _file_response(job.result_path, download_name=f"job{job.pk}_{job.kind}_result.cxi")


@api.get("/jobs/{job_id}/files/{name}", tags=["jobs"])
def download_job_file(request: HttpRequest, job_id: int, name: str):
    """Any file of the job's folder (``summary.json``, ``model.pt`` ...)."""
    job = selectors.job_get_for_user(request.auth, job_id)
    if name not in job_files(job):
        raise Http404("file not found")
    return _file_response(job.result_dir / name, download_name=f"job{job.pk}_{name}")


@api.get("/models", response=list[ModelVersionOut], tags=["models"])
def list_models(request: HttpRequest, dims: int | None = None, status: str | None = None):
    """Model versions you may use (default, shipped, and those trained by your groups)."""
    qs = selectors.model_versions_visible_to(request.auth)
    if dims is not None:
        qs = qs.filter(dims=dims)
    if status is not None:
        qs = qs.filter(status=status)
    return [model_out(mv) for mv in qs]


@api.get("/models/{model_id}", response=ModelVersionOut, tags=["models"])
def get_model(request: HttpRequest, model_id: int):
    """One model version."""
    return model_out(selectors.model_version_get_for_user(request.auth, model_id))


@api.post("/models/{model_id}/promote", response={200: ModelVersionOut, 400: Message, 403: Message, 404: Message},
          tags=["models"])
def promote_model(request: HttpRequest, model_id: int):
    """Staff: make this version the default for its dimensionality."""
    mv = selectors.model_version_get_for_user(request.auth, model_id, write=True)
    return Status(200, model_out(services.model_version_promote(user=request.auth, version=mv)))


@api.post("/models/{model_id}/retire", response={200: ModelVersionOut, 403: Message, 404: Message}, tags=["models"])
def retire_model(request: HttpRequest, model_id: int):
    """Staff: retire this version."""
    mv = selectors.model_version_get_for_user(request.auth, model_id, write=True)
    return Status(200, model_out(services.model_version_retire(user=request.auth, version=mv)))
