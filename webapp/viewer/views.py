"""HTML pages and the small JSON endpoints their scripts fetch. Thin: reads go through
``webapp.core.selectors`` (outsiders get 404), writes through ``webapp.core.services``,
figures come from ``webapp.viewer.figures``.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from webapp.core import access, schemas, selectors, services
from webapp.core.models import Dataset, Job, ModelVersion
from webapp.viewer import exports, figures
from webapp.viewer.cache import cached_gzip_json, gzip_json_response
from webapp.viewer.frames import shown_object
from webapp.viewer.units import job_grid

LOG_TAIL_LINES = 60
DASHBOARD_ROWS = 200
MAX_COMPARE = 3


# --------------------------------------------------------------------------- helpers
def _is_json_request(request: HttpRequest) -> bool:
    """True when the page's script (fetch/XHR) asked for JSON."""
    return "application/json" in request.headers.get("Accept", "") or request.headers.get("X-Requested-With") == "XMLHttpRequest"


def _error_text(exc: ValidationError) -> str:
    """One readable line from a ValidationError (field: message; …)."""
    if hasattr(exc, "message_dict"):
        return "; ".join(f"{k}: {' '.join(v)}" if k != "__all__" else " ".join(v) for k, v in exc.message_dict.items())
    return " ".join(exc.messages)


def _duration_s(job: Job) -> float | None:
    """Seconds the job ran (so far, when still running)."""
    if job.started is None:
        return None
    end = job.finished or timezone.now()
    return max(0.0, (end - job.started).total_seconds())


def _number(value: Any) -> float | None:
    """A finite float or None."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def job_row(job: Job) -> dict[str, Any]:
    """The dashboard's JSON row of one job."""
    return {
        "id": job.pk,
        "url": reverse("viewer:job", args=[job.pk]),
        "kind": job.kind,
        "status": job.status,
        "progress": _number(job.progress) or 0.0,
        "stage": job.stage,
        "dataset": job.dataset.name if job.dataset_id else "",
        "dataset_url": reverse("viewer:dataset", args=[job.dataset_id]) if job.dataset_id else "",
        "group": job.group.name,
        "owner": job.owner.get_username(),
        "model_version": str(job.model_version) if job.model_version_id else "",
        "chi2": _number((job.metrics or {}).get("chi2")),
        "duration_s": _duration_s(job),
        "created": job.created.isoformat(),
        "parent": job.parent_id,
    }


def _row_id(text: str) -> int | None:
    """A database id written in ASCII digits within the range of an integer column, else None."""
    if text.isascii() and text.isdigit() and 0 < int(text) < 2**31:
        return int(text)
    return None


def _filtered_jobs(request: HttpRequest) -> QuerySet[Job]:
    """Jobs visible to the user, filtered by the GET parameters kind, status, group and q."""
    jobs = selectors.jobs_visible_to(request.user)
    kind, status = request.GET.get("kind", ""), request.GET.get("status", "")
    group, text = request.GET.get("group", ""), request.GET.get("q", "").strip()
    if kind in schemas.JOB_KINDS:
        jobs = jobs.filter(kind=kind)
    if status in Job.STATUSES:
        jobs = jobs.filter(status=status)
    if (group_id := _row_id(group)) is not None:
        jobs = jobs.filter(group_id=group_id)
    if text:
        query = Q(dataset__name__icontains=text) | Q(owner__username__icontains=text) | Q(kind__icontains=text)
        query |= Q(stage__icontains=text) | Q(model_version__name__icontains=text)
        if (pk := _row_id(text.lstrip("#"))) is not None:
            query |= Q(pk=pk)
        jobs = jobs.filter(query)
    return jobs


# --------------------------------------------------------------------------- dashboard
@login_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    """The group's job history with filters; the table refreshes itself from ``jobs.json``."""
    rows = [job_row(j) for j in _filtered_jobs(request)[:DASHBOARD_ROWS]]
    context = {
        "rows": rows,
        "kinds": schemas.JOB_KINDS,
        "statuses": Job.STATUSES,
        "groups": selectors.groups_of(request.user),
        "filters": {k: request.GET.get(k, "") for k in ("kind", "status", "group", "q")},
        "datasets": selectors.datasets_visible_to(request.user)[:20],
    }
    return render(request, "viewer/dashboard.html", context)


@login_required
@require_GET
def jobs_json(request: HttpRequest) -> JsonResponse:
    """Dashboard rows as JSON (same filters as the page)."""
    rows = [job_row(j) for j in _filtered_jobs(request)[:DASHBOARD_ROWS]]
    return JsonResponse({"jobs": rows, "active": any(r["status"] in ("queued", "running") for r in rows)})


# --------------------------------------------------------------------------- datasets
@login_required
@require_http_methods(["GET", "POST"])
def dataset_upload(request: HttpRequest) -> HttpResponse:
    """Upload form (GET); the upload itself (POST, multipart ``file`` [+ ``group``, ``name``]).

    The page's script posts with XHR and gets JSON: ``{"id", "url"}`` or ``{"error"}`` (400)
    with the library's message when the file is refused.
    """
    groups = list(selectors.groups_of(request.user))
    if request.method == "GET":
        return render(request, "viewer/upload.html", {"groups": groups})
    try:
        upload = request.FILES.get("file")
        if upload is None:
            raise ValidationError("choose a file to upload")
        group = access.group_for_user(request.user, request.POST.get("group") or None)
        dataset = services.dataset_create(
            user=request.user, group=group, uploaded_file=upload, name=request.POST.get("name") or None
        )
    except ValidationError as exc:
        message = _error_text(exc)
    except ValueError as exc:  # several groups and none chosen
        message = str(exc)
    else:
        url = reverse("viewer:dataset", args=[dataset.pk])
        if _is_json_request(request):
            return JsonResponse({"id": dataset.pk, "url": url, "duplicate": bool(getattr(dataset, "is_duplicate", False))})
        return redirect(url)
    if _is_json_request(request):
        return JsonResponse({"error": message}, status=400)
    return render(request, "viewer/upload.html", {"groups": groups, "error": message}, status=400)


def _flat_metadata(metadata: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """(key, value) rows of a nested metadata dict, long values shortened."""
    rows: list[tuple[str, str]] = []
    for key, value in metadata.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and len(prefix) < 40:
            rows += _flat_metadata(value, prefix=f"{name}.")
        else:
            text = json.dumps(value) if not isinstance(value, str) else value
            rows.append((name, text if len(text) <= 160 else text[:157] + "…"))
    return rows


@login_required
@require_GET
def dataset_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Metadata, diffraction slices and a 3D view of one dataset, with job buttons."""
    dataset = selectors.dataset_get_for_user(request.user, pk)
    context = {
        "dataset": dataset,
        "metadata_rows": _flat_metadata(dataset.metadata or {}),
        "jobs": selectors.jobs_visible_to(request.user).filter(dataset=dataset)[:50],
        "job_kinds": _dataset_job_kinds(dataset),
    }
    return render(request, "viewer/dataset.html", context)


def _dataset_job_kinds(dataset: Dataset) -> list[str]:
    """The job kinds a dataset page offers: train for a simulated set, none for an object."""
    if dataset.kind == "object":
        return []
    optional = [k for k, wanted in schemas.OPTIONAL_DATASET.items() if wanted == dataset.kind]
    if optional:
        return optional
    return [k for k in schemas.NEEDS_DATASET if k != "refine"]


def _job_datasets(user: Any, kind: str) -> Any:
    """The datasets a submit form of ``kind`` may choose from (simulated sets only for train)."""
    visible = selectors.datasets_visible_to(user)
    if kind in schemas.OPTIONAL_DATASET:
        return visible.filter(kind=schemas.OPTIONAL_DATASET[kind])[:200]
    if kind in schemas.NEEDS_DATASET:
        return visible.exclude(kind__in=set(schemas.OPTIONAL_DATASET.values()))[:200]
    return []


def _dataset_bundle(dataset: Dataset) -> dict[str, Any]:
    """Figures of a dataset file: an object's isosurface and slices, or diffraction slices + 3D.

    A simulated training set shows its first pattern and that pattern's true object.
    """
    from reconstruction.io import load_data, load_object

    if dataset.kind == "simulated-set":
        from reconstruction.simulate import StoredDataset

        stored = StoredDataset(str(dataset.path))
        try:
            first = stored.sample(0)
        finally:
            stored.close()
        intensity = np.asarray(first["intensity"], dtype=np.float32)
        mask = np.asarray(first["mask"], dtype=bool)
        from reconstruction.phasing.support import support_from_object

        obj = np.asarray(first["amplitude"], dtype=np.float32) * np.exp(1j * np.asarray(first["phase"], dtype=np.float32))
        support = support_from_object(obj, threshold=0.1)
        return {"kind": "diffraction", "note": "first pattern of the simulated set and its true object",
                "diffraction": figures.diffraction_bundle(intensity, mask),
                "object": figures.object_bundle(obj.astype(np.complex64), support)}
    if dataset.kind == "object":
        data = load_object(str(dataset.path))
        return {"kind": "object", "object": figures.object_bundle(np.asarray(data.obj), data.support)}
    from reconstruction.io.voxel import voxel_size_m

    data = load_data(str(dataset.path))
    intensity = np.asarray(data.intensity, dtype=np.float32)
    mask = np.asarray(data.mask, dtype=bool)
    voxel = voxel_size_m(data.metadata, tuple(intensity.shape))
    bundle: dict[str, Any] = {"kind": "diffraction",
                              "diffraction": figures.diffraction_bundle(intensity, mask, voxel_size_m=voxel)}  # fmt: skip
    if intensity.ndim == 3:
        bundle["volume3d"] = figures.intensity_isosurface_figure(intensity, mask)
    return bundle


@login_required
@require_GET
def dataset_figures(request: HttpRequest, pk: int) -> HttpResponse:
    """Figure data of a dataset page (cached, gzipped JSON)."""
    from reconstruction.errors import ReconstructionError

    dataset = selectors.dataset_get_for_user(request.user, pk)
    if not dataset.path.exists():
        return JsonResponse({"error": "the dataset's file is missing on the server"}, status=404)
    try:
        payload = cached_gzip_json(dataset.path, lambda: _dataset_bundle(dataset), view="dataset", version=1)
    except ReconstructionError as exc:
        return JsonResponse({"error": _public_message(exc, dataset.path, dataset.name)}, status=422)
    return gzip_json_response(request, payload)


def _public_message(exc: Exception, path: Path, name: str) -> str:
    """The library's message with the server's file path replaced by the file's name."""
    return str(exc).replace(str(path), name).replace(str(settings.MEDIA_ROOT), "…")


# --------------------------------------------------------------------------- job submission
def _spec_rows(kind: str, values: dict[str, Any]) -> list[dict[str, Any]]:
    """The form fields of a job kind, with current values."""
    rows = []
    for spec in schemas.PARAM_SPECS.get(kind, []):
        row = spec.as_dict()
        row["value"] = values.get(spec.name, spec.default)
        row["step"] = "1" if spec.type == "int" else "any"
        rows.append(row)
    return rows


def _form_params(kind: str, post: Any) -> dict[str, Any]:
    """Parameters of a submitted form (checkboxes absent = false); validated by the service."""
    params: dict[str, Any] = {}
    for spec in schemas.PARAM_SPECS.get(kind, []):
        if spec.type == "bool":
            params[spec.name] = post.get(spec.name) in ("on", "true", "1")
        elif spec.name in post:
            params[spec.name] = post.get(spec.name)
    return params


@login_required
@require_http_methods(["GET", "POST"])
def job_new(request: HttpRequest) -> HttpResponse:
    """Submit form of a job kind (``?kind=…&dataset=…&parent=…``, or ``?rerun=<job id>``)."""
    source = request.POST if request.method == "POST" else request.GET
    rerun = selectors.job_get_for_user(request.user, source["rerun"]) if source.get("rerun") else None
    kind = rerun.kind if rerun else source.get("kind", "")
    if kind not in schemas.JOB_KINDS:
        return render(request, "viewer/job_kinds.html", {"kinds": schemas.JOB_KINDS,
                                                         "dataset": source.get("dataset", "")})  # fmt: skip
    dataset = rerun.dataset if rerun else None
    if dataset is None and source.get("dataset"):
        dataset = selectors.dataset_get_for_user(request.user, source["dataset"])
    parent = rerun.parent if rerun else None
    if parent is None and source.get("parent"):
        parent = selectors.job_get_for_user(request.user, source["parent"])
    versions = [v for v in selectors.model_versions_visible_to(request.user) if v.status != "retired"]
    model_version = rerun.model_version if rerun else None
    if source.get("model_version"):
        model_version = selectors.model_version_get_for_user(request.user, source["model_version"])
    values = dict(rerun.params) if rerun else {}
    errors: dict[str, str] = {}
    if request.method == "POST":
        values = _form_params(kind, request.POST)
        try:
            if rerun:
                job = services.job_rerun(user=request.user, job=rerun, params=values)
            else:
                group = (dataset.group if dataset else parent.group if parent else
                         access.group_for_user(request.user, request.POST.get("group") or None))  # fmt: skip
                job = services.job_submit(user=request.user, group=group, kind=kind, params=values,
                                          dataset=dataset, parent=parent, model_version=model_version)  # fmt: skip
        except ValidationError as exc:
            errors = {k: " ".join(v) for k, v in exc.message_dict.items()} if hasattr(exc, "message_dict") else {"__all__": " ".join(exc.messages)}
        except ValueError as exc:
            errors = {"group": str(exc)}
        else:
            return redirect("viewer:job", pk=job.pk)
    context = {
        "kind": kind,
        "fields": _spec_rows(kind, values),
        "presets": schemas.PRESETS.get(kind, {}),
        "dataset": dataset,
        "datasets": _job_datasets(request.user, kind),
        "dataset_optional": kind in schemas.OPTIONAL_DATASET,
        "parent": parent,
        "parents": selectors.jobs_visible_to(request.user).filter(status="succeeded")[:100] if kind == "refine" else [],
        "versions": versions if kind in ("predict", "pipeline", "finetune") else [],
        "model_version": model_version,
        "groups": selectors.groups_of(request.user),
        "rerun": rerun,
        "errors": errors,
        "general_errors": [v for k, v in errors.items() if k not in {f.name for f in schemas.PARAM_SPECS.get(kind, [])}],
    }
    return render(request, "viewer/job_new.html", context, status=400 if errors else 200)


# --------------------------------------------------------------------------- job page
@login_required
@require_GET
def job_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Live progress, log, lineage, cancel / re-run, and the result viewer once succeeded."""
    job = selectors.job_get_for_user(request.user, pk)
    children, grandchildren = _steps(job)
    context = {
        "job": job,
        "children": children,
        "grandchildren": grandchildren,
        "params": sorted(job.params.items()),
        "compare_url": _compare_url(children + grandchildren),
        "has_result_kind": job.kind in ("predict", "refine", "phase", "pipeline"),
        "is_training": job.kind in ("train", "finetune"),
        "trained_models": list(job.trained_models.all()),
        "view_query": _view_query(request),
        "ramp": _ramp(request),
        "displacement": _displacement(request),
        "strain": _strain(request),
        "lab": _lab(request),
    }
    return render(request, "viewer/job.html", context)


def _steps(job: Job) -> tuple[list[Job], list[Job]]:
    """The job's children and grandchildren (a pipeline's predict step and its refine step)."""
    children = list(selectors.job_children(job))
    return children, [g for c in children for g in selectors.job_children(c)]


def _compare_url(steps: list[Job]) -> str:
    """The compare page of a job's result-producing steps, or "" when there are fewer than two."""
    ids = [j.pk for j in steps if j.kind in ("predict", "refine", "phase")][:MAX_COMPARE]
    return f"{reverse('viewer:compare')}?jobs={','.join(map(str, ids))}" if len(ids) >= 2 else ""


def _log_tail(text: str, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a log."""
    return "\n".join((text or "").splitlines()[-lines:])


@login_required
@require_GET
def job_status(request: HttpRequest, pk: int) -> JsonResponse:
    """What the job page polls: status, progress, stage, ETA, latest values, curves, log tail."""
    job = selectors.job_get_for_user(request.user, pk)
    children, grandchildren = _steps(job)
    return JsonResponse({
        **job_row(job),
        "eta_s": _number(job.eta_s),
        "latest_values": job.latest_values or {},
        "curves": job.curves or {},
        "metrics": job.metrics or {},
        "log_tail": _log_tail(job.log),
        "error_message": job.error_message,
        "cancel_requested": job.cancel_requested,
        "finished": job.is_finished,
        "has_result": job.status == "succeeded" and job.result_path.exists(),
        "steps": [{"id": c.pk, "kind": c.kind, "status": c.status, "progress": c.progress, "parent": c.parent_id,
                   "url": reverse("viewer:job", args=[c.pk])} for c in children + grandchildren],  # fmt: skip
        "compare_url": _compare_url(children + grandchildren),
    })


def _summary(job: Job) -> dict[str, Any]:
    """The job's summary (database copy, else summary.json)."""
    if job.summary:
        return job.summary
    if job.summary_path.exists():
        try:
            return json.loads(job.summary_path.read_text())
        except (OSError, ValueError):
            return {}
    return {}


def _threshold(request: HttpRequest) -> float:
    """The isosurface threshold of the request (fraction of max amplitude), rounded to 0.01."""
    try:
        value = round(float(request.GET.get("threshold", figures.DEFAULT_THRESHOLD)), 2)
    except ValueError:
        raise ValidationError("threshold must be a number") from None
    if not 0.0 < value < 1.0:
        raise ValidationError("threshold must be a fraction of the maximum amplitude in (0, 1)")
    return value


def _ramp(request: HttpRequest) -> bool:
    """True when the request asks for the phase without its linear ramp (``?ramp=1``)."""
    return request.GET.get("ramp") == "1"


def _displacement(request: HttpRequest) -> bool:
    """True when the request asks for the displacement along G instead of the phase (``?field=u``)."""
    return request.GET.get("field") == "u"


def _strain(request: HttpRequest) -> bool:
    """True when the request asks for the strain along G instead of the phase (``?field=strain``)."""
    return request.GET.get("field") == "strain"


def _lab(request: HttpRequest) -> bool:
    """True when the request asks for the object on the orthogonal lab grid (``?frame=lab``)."""
    return request.GET.get("frame") == "lab"


def _view_parts(request: HttpRequest, *, ramp: bool = True) -> list[str]:
    """The query parameters of the view switches the request asks for: ramp removed (unless
    ``ramp`` is False), displacement or strain, lab frame."""
    parts = ["ramp=1"] if ramp and _ramp(request) else []
    parts += ["field=u"] if _displacement(request) else ["field=strain"] if _strain(request) else []
    return parts + (["frame=lab"] if _lab(request) else [])


def _view_query(request: HttpRequest) -> str:
    """The query string of the result page's view switches, or ""."""
    parts = _view_parts(request)
    return "?" + "&".join(parts) if parts else ""


def _max_vertices(request: HttpRequest) -> int:
    """The vertex budget of the request (1,000 … 200,000)."""
    try:
        return int(np.clip(int(request.GET.get("max_vertices", figures.DEFAULT_MAX_VERTICES)), 1_000, 200_000))
    except ValueError:
        raise ValidationError("max_vertices must be an integer") from None


def _read_result(job: Job) -> Any:
    """The job's ResultRecord, or Http404 when it has none."""
    from reconstruction.io import read_result

    if job.status != "succeeded" or not job.result_path.exists():
        raise Http404("this job has no result")
    return read_result(str(job.result_path))


@login_required
@require_GET
def job_figures(request: HttpRequest, pk: int) -> HttpResponse:
    """Result figures of a job (cached, gzipped JSON): ``result`` (see ``figures.result_bundle``),
    ``loss`` (training curves) and ``summary``."""
    from reconstruction.errors import ReconstructionError

    job = selectors.job_get_for_user(request.user, pk)
    try:
        threshold, budget = _threshold(request), _max_vertices(request)
    except ValidationError as exc:
        return JsonResponse({"error": _error_text(exc)}, status=400)
    ramp, displacement, lab, strain = _ramp(request), _displacement(request), _lab(request), _strain(request)
    summary = _summary(job)
    history = summary.get("history") or {k: v for k, v in (summary.get("curves") or {}).items() if "loss" in k}
    loss = figures.loss_curves_figure(history) if history and job.kind in ("train", "finetune") else None
    base = {"job": job.pk, "kind": job.kind, "status": job.status, "loss": loss}
    if job.status != "succeeded" or not job.result_path.exists():
        return JsonResponse({**base, "result": None})

    def compute() -> dict[str, Any]:
        record = _read_result(job)
        grid = job_grid(job, np.shape(record.obj))
        support = None if record.support is None else np.asarray(record.support, dtype=bool)
        view = shown_object(np.asarray(record.obj), support, grid, lab=lab)
        return {**base, "result": figures.result_bundle(record, threshold=threshold, max_vertices=budget,
                                                        voxel_size_m=grid.voxel_size_m, remove_ramp=ramp,
                                                        g_norm_per_m=grid.g_norm_per_m, displacement=displacement,
                                                        object_view=view, strain=strain)}  # fmt: skip

    try:
        payload = cached_gzip_json(job.result_path, compute, view="job", threshold=threshold, budget=budget, ramp=ramp,
                                   displacement=displacement, lab=lab, strain=strain, version=3)  # fmt: skip
    except ReconstructionError as exc:
        return JsonResponse({**base, "result": None, "error": _public_message(exc, job.result_path, "result.cxi")},
                            status=422)
    return gzip_json_response(request, payload)


@login_required
@require_GET
def job_isosurface(request: HttpRequest, pk: int) -> HttpResponse:
    """Only the isosurface at ``?threshold=`` (the page's slider), cached."""
    from reconstruction.errors import ReconstructionError

    job = selectors.job_get_for_user(request.user, pk)
    try:
        threshold, budget = _threshold(request), _max_vertices(request)
    except ValidationError as exc:
        return JsonResponse({"error": _error_text(exc)}, status=400)

    def compute() -> dict[str, Any]:
        record = _read_result(job)
        support = None if record.support is None else np.asarray(record.support, dtype=bool)
        grid = job_grid(job, np.shape(record.obj))
        view = shown_object(np.asarray(record.obj), support, grid, lab=lab)
        return figures.object_isosurface_figure(view.obj, view.support, threshold=threshold,
                                                max_vertices=budget, voxel_size_m=view.voxel_size_m, remove_ramp=ramp,
                                                g_norm_per_m=grid.g_norm_per_m, displacement=displacement,
                                                strain=strain, strain_geometry=view.strain_geometry)  # fmt: skip

    ramp, displacement, lab, strain = _ramp(request), _displacement(request), _lab(request), _strain(request)
    if job.status != "succeeded" or not job.result_path.exists():
        raise Http404("this job has no result")
    try:
        payload = cached_gzip_json(job.result_path, compute, view="iso", threshold=threshold, budget=budget, ramp=ramp,
                                   displacement=displacement, lab=lab, strain=strain, version=3)  # fmt: skip
    except ReconstructionError as exc:
        return JsonResponse({"error": _public_message(exc, job.result_path, "result.cxi")}, status=422)
    return gzip_json_response(request, payload)


@login_required
@require_GET
def job_npz(request: HttpRequest, pk: int) -> HttpResponse:
    """The result as an NPZ file (``exports.result_arrays``: the object, its support, voxel size
    and, as the data allow, displacement, strain and the lab-frame object)."""
    job = selectors.job_get_for_user(request.user, pk)
    record = _read_result(job)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **exports.result_arrays(record, job_grid(job, np.shape(record.obj))))
    response = HttpResponse(buffer.getvalue(), content_type="application/octet-stream")
    response["Content-Disposition"] = f'attachment; filename="job{job.pk}_object.npz"'
    return response


@login_required
@require_GET
def job_vtk(request: HttpRequest, pk: int) -> HttpResponse:
    """The result as a legacy VTK file for ParaView (``exports.result_vtk``): on the orthogonal
    lab grid where the diffractometer geometry is known, else on the data's grid."""
    job = selectors.job_get_for_user(request.user, pk)
    record = _read_result(job)
    payload = exports.result_vtk(record, job_grid(job, np.shape(record.obj)), title=f"job {job.pk} {job.kind}")
    response = HttpResponse(payload, content_type="application/octet-stream")
    response["Content-Disposition"] = f'attachment; filename="job{job.pk}_object.vtk"'
    return response


@login_required
@require_POST
def job_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    """Ask a queued or running job to stop."""
    job = selectors.job_get_for_user(request.user, pk, write=True)
    job = services.job_cancel(user=request.user, job=job)
    if _is_json_request(request):
        return JsonResponse({"id": job.pk, "status": job.status, "cancel_requested": job.cancel_requested})
    return redirect("viewer:job", pk=job.pk)


# --------------------------------------------------------------------------- compare
@login_required
@require_GET
def compare(request: HttpRequest) -> HttpResponse:
    """Two or three results side by side (``?jobs=1,2,3``) with linked slice positions."""
    ids = [s for s in request.GET.get("jobs", "").replace(" ", "").split(",") if s]
    if not ids:
        raise Http404("say which jobs to compare: ?jobs=1,2")
    jobs = [selectors.job_get_for_user(request.user, i) for i in ids[:MAX_COMPARE]]
    query = "&".join(_view_parts(request, ramp=False))  # the alignment fits its own ramp
    base = reverse("viewer:compare") + "?jobs=" + ",".join(str(j.pk) for j in jobs)
    field = "u" if _displacement(request) else "strain" if _strain(request) else ""
    frame = "&frame=lab" if _lab(request) else ""
    views = {  # the page's field and frame choices, as links that keep the jobs
        "fields": [(label, f"{base}{'&field=' + f if f else ''}{frame}", f == field)
                   for label, f in (("phase", ""), ("displacement u", "u"), ("strain ε", "strain"))],
        "frames": [(label, f"{base}{'&field=' + field if field else ''}{extra}", bool(extra) == bool(frame))
                   for label, extra in (("data grid", ""), ("lab frame", "&frame=lab"))],
    }  # fmt: skip
    return render(request, "viewer/compare.html",
                  {"jobs": jobs, "ids": [j.pk for j in jobs], "view_query": query, "views": views})


@login_required
@require_GET
def job_aligned(request: HttpRequest, pk: int) -> HttpResponse:
    """The compare page's figures of job ``pk`` aligned onto job ``?ref=`` (cached, gzipped JSON):
    ``{"job", "result": figures.aligned_result_bundle(…)}``; 404 unless both are visible results."""
    from reconstruction.errors import ReconstructionError

    job = selectors.job_get_for_user(request.user, pk)
    ref_id = _row_id(request.GET.get("ref", ""))
    if ref_id is None:
        return JsonResponse({"error": "say which result to align onto: ?ref=<job id>"}, status=400)
    reference = selectors.job_get_for_user(request.user, ref_id)
    for j in (job, reference):
        if j.status != "succeeded" or not j.result_path.exists():
            return JsonResponse({"job": job.pk, "status": job.status, "result": None,
                                 "error": f"job #{j.pk} has no result to compare"}, status=404)  # fmt: skip
    ref_stat = reference.result_path.stat()

    lab, displacement, strain = _lab(request), _displacement(request), _strain(request)

    def compute() -> dict[str, Any]:
        record, ref_record = _read_result(job), _read_result(reference)
        grid = job_grid(job, np.shape(record.obj))
        return {"job": job.pk, "status": job.status, "reference": reference.pk,
                "result": figures.aligned_result_bundle(
                    record, ref_record, voxel_size_m=grid.voxel_size_m,
                    view=lambda o, s: shown_object(o, s, grid, lab=lab), g_norm_per_m=grid.g_norm_per_m,
                    displacement=displacement, strain=strain)}  # fmt: skip

    try:
        payload = cached_gzip_json(job.result_path, compute, view="aligned", ref=str(reference.result_path),
                                   ref_size=ref_stat.st_size, ref_mtime=ref_stat.st_mtime_ns, lab=lab,
                                   displacement=displacement, strain=strain, version=2)  # fmt: skip
    except ReconstructionError as exc:
        return JsonResponse({"job": job.pk, "result": None, "error": _public_message(exc, job.result_path, "result.cxi")},
                            status=422)  # fmt: skip
    return gzip_json_response(request, payload)


# --------------------------------------------------------------------------- models
@login_required
@require_GET
def models_list(request: HttpRequest) -> HttpResponse:
    """Model versions with their metrics; staff can promote and retire."""
    versions = list(selectors.model_versions_visible_to(request.user))
    metric_names = sorted({k for v in versions for k, val in (v.metrics or {}).items() if _number(val) is not None})
    rows = [{"version": v, "metrics": [_number((v.metrics or {}).get(k)) for k in metric_names]} for v in versions]
    return render(request, "viewer/models.html", {"rows": rows, "metric_names": metric_names})


@login_required
@require_POST
def model_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """Promote a model version to default, or retire it (staff only)."""
    version: ModelVersion = selectors.model_version_get_for_user(request.user, pk, write=True)
    try:
        if action == "promote":
            services.model_version_promote(user=request.user, version=version)
        elif action == "retire":
            services.model_version_retire(user=request.user, version=version)
        else:
            raise Http404("unknown action")
    except ValidationError as exc:
        if _is_json_request(request):
            return JsonResponse({"error": _error_text(exc)}, status=400)
        raise PermissionDenied(_error_text(exc)) from exc
    if _is_json_request(request):
        version.refresh_from_db()
        return JsonResponse({"id": version.pk, "status": version.status})
    return redirect("viewer:models")
