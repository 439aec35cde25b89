"""Run one job: claim it, report throttled progress, honour cancellation, record the outcome.

Everything here is bookkeeping; the science is in the library workflow each kind calls
(``workers.kinds``). Progress is written with ``QuerySet.update`` on named columns only, so a
concurrent ``cancel_requested = True`` from the web app is never overwritten.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from reconstruction.errors import Cancelled, ReconstructionError
from reconstruction.progress import CallbackCancelToken, ProgressEvent
from webapp.core.models import Job
from workers.sweeper import LOST_TWICE, pipeline_steps

logger = logging.getLogger(__name__)

MAX_CURVE_POINTS = 400  # per curve stored in the database (the result file has them all)
MAX_LOG_CHARS = 200_000


def _stamp() -> str:
    return f"{timezone.now():%Y-%m-%d %H:%M:%S}"


def _finite(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if out == out and abs(out) != float("inf") else None


def short_curves(curves: dict[str, Any], max_points: int = MAX_CURVE_POINTS) -> dict[str, list[float | None]]:
    """Decimate each curve to at most ``max_points`` values (keeping the last one)."""
    out: dict[str, list[float | None]] = {}
    for name, values in (curves or {}).items():
        try:
            seq = [_finite(v) for v in list(values)]
        except TypeError:
            continue
        if len(seq) > max_points:
            stride = -(-len(seq) // max_points)
            seq = seq[::stride][: max_points - 1] + [seq[-1]]
        out[str(name)] = seq
    return out


def write_json_atomic(path: os.PathLike | str, payload: dict[str, Any]) -> None:
    """Write JSON to a temporary file next to ``path`` and ``os.replace`` it into place."""
    from reconstruction.cli.common import to_jsonable

    path = os.fspath(path)
    temp = f"{path}.tmp-{os.getpid()}"
    with open(temp, "w", encoding="utf-8") as handle:
        json.dump(to_jsonable(payload), handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)


class JobProgress:
    """Progress callback writing fraction, stage, ETA, latest values, short curves and log lines.

    At most one database write per ``min_interval_s`` (plus the final one). ``lo``/``hi`` map the
    reported fraction into a range of this job (pipeline steps); ``mirror`` forwards each event
    to another ``JobProgress`` (the pipeline parent) with its own range.
    """

    def __init__(
        self,
        job_id: int,
        *,
        log: str = "",
        lo: float = 0.0,
        hi: float = 1.0,
        mirror: JobProgress | None = None,
        min_interval_s: float | None = None,
    ) -> None:
        self.job_id = job_id
        self.lo, self.hi = lo, hi
        self.mirror = mirror
        self.min_interval_s = settings.CDI_PROGRESS_INTERVAL_S if min_interval_s is None else min_interval_s
        self.start = time.monotonic()
        self.last_write = -float("inf")
        self.fraction = 0.0
        self.stage = ""
        self.values: dict[str, float | None] = {}
        self.curves: dict[str, list[float | None]] = {}
        self._stride: dict[str, int] = {}
        self._count: dict[str, int] = {}
        self.log = log
        self.dirty = False
        self.stage_prefix = ""  # e.g. "predict: " while a pipeline runs its predict step

    def add_log(self, line: str) -> None:
        """Append a time-stamped line to the job's log (written with the next progress write)."""
        self.log = (self.log + f"{_stamp()} {line}\n")[-MAX_LOG_CHARS:]
        self.dirty = True

    def _append(self, name: str, value: float | None) -> None:
        count = self._count.get(name, 0)
        self._count[name] = count + 1
        stride = self._stride.get(name, 1)
        if count % stride:
            return
        curve = self.curves.setdefault(name, [])
        curve.append(value)
        if len(curve) > MAX_CURVE_POINTS:
            self.curves[name] = curve[::2]
            self._stride[name] = stride * 2

    def __call__(self, event: ProgressEvent) -> None:
        """Record one ``ProgressEvent`` (called by the library)."""
        frac = min(max(float(event.fraction), 0.0), 1.0)
        self.fraction = self.lo + (self.hi - self.lo) * frac
        if event.stage:
            self.stage = f"{self.stage_prefix}{event.stage}"[:100]
        for name, value in (event.values or {}).items():
            number = _finite(value)
            self.values[str(name)] = number
            self._append(str(name), number)
        if event.message:
            self.add_log(f"{event.stage + ': ' if event.stage else ''}{event.message}")
        self.dirty = True
        if self.mirror is not None:
            self.mirror(event)
        if time.monotonic() - self.last_write >= self.min_interval_s:
            self.flush()

    def eta_s(self) -> float | None:
        """Seconds left, extrapolated from the elapsed time and the fraction done."""
        if self.fraction < 0.01:
            return None
        elapsed = time.monotonic() - self.start
        return max(0.0, elapsed * (1.0 - self.fraction) / self.fraction)

    def flush(self) -> None:
        """Write the current state to the job row (if anything changed)."""
        if not self.dirty:
            return
        Job.objects.filter(pk=self.job_id).update(
            progress=self.fraction,
            stage=self.stage,
            eta_s=self.eta_s(),
            latest_values=self.values,
            curves=self.curves,
            log=self.log,
            updated=timezone.now(),
        )
        self.last_write = time.monotonic()
        self.dirty = False


class Heartbeat:
    """A thread stamping ``Job.updated`` of running jobs every ``CDI_HEARTBEAT_S`` seconds.

    It proves the worker is alive even while the library is inside one long step without
    progress events; it dies with the worker, which is what the sweeper detects.
    """

    def __init__(self, job_ids: list[int]) -> None:
        self.ids = list(job_ids)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="job-heartbeat", daemon=True)

    def _run(self) -> None:
        try:
            while not self._stop.wait(settings.CDI_HEARTBEAT_S):
                Job.objects.filter(pk__in=list(self.ids), status="running").update(updated=timezone.now())
        except Exception:
            logger.exception("heartbeat failed")
        finally:
            connection.close()

    def start(self) -> None:
        """Start stamping."""
        self._thread.start()

    def stop(self) -> None:
        """Stop stamping and wait for the thread."""
        self._stop.set()
        self._thread.join(timeout=5)


@dataclass
class Context:
    """What a kind handler gets besides the job: progress, cancel token, device, provenance."""

    job: Job
    progress: JobProgress
    cancel: Any
    heartbeat: Heartbeat
    device: str = "auto"
    provenance: dict[str, Any] = field(default_factory=dict)


def claim(job_id: int, *, task_id: str | None) -> Job | None:
    """Mark the job running (attempts + 1) or return None when it must not run now.

    Skips a missing or finished job and a message whose id is not the job's current task id
    (superseded by a re-queue). A job found "running" was interrupted (worker lost, message
    redelivered): it runs again once, and is failed with "worker lost twice" the next time.
    """
    now = timezone.now()
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.is_finished:
            return None
        if task_id and job.celery_task_id and task_id != job.celery_task_id:
            logger.warning("job %s: dropping superseded message %s", job_id, task_id)
            return None
        if job.cancel_requested:
            Job.objects.filter(pk=job.pk).update(status="cancelled", finished=now, updated=now, stage="cancelled")
            return None
        log = job.log
        if job.status == "running":
            if job.attempts >= 2:
                Job.objects.filter(pk=job.pk).update(
                    status="failed", error_message=LOST_TWICE, finished=now, updated=now,
                    log=log + f"{_stamp()} {LOST_TWICE}\n",
                )
                pipeline_steps(job).filter(status="running").update(
                    status="failed", error_message=LOST_TWICE, finished=now, updated=now
                )
                return None
            log += f"{_stamp()} the previous attempt was interrupted (worker lost): running again\n"
        attempts = job.attempts + 1
        log += f"{_stamp()} started (attempt {attempts}) on {os.uname().nodename} pid {os.getpid()}\n"
        Job.objects.filter(pk=job.pk).update(
            status="running", attempts=attempts, started=now, updated=now, finished=None,
            progress=0.0, stage="starting", eta_s=None, error_message="", log=log,
        )
    job.refresh_from_db()
    return job


def provenance_of(job: Job) -> dict[str, Any]:
    """Scalars recorded in every output file: job id, kind, parameters, input and model."""
    prov: dict[str, Any] = {
        "job_id": job.pk,
        "job_kind": job.kind,
        "params": json.dumps(job.params, sort_keys=True),
        "group": job.group.name,
        "submitted_by": job.owner.get_username(),
    }
    if job.dataset is not None:
        prov.update(input_sha256=job.dataset.sha256, input_name=job.dataset.name)
    if job.model_version is not None:
        prov.update(model_version=f"{job.model_version.name} v{job.model_version.version}",
                    model_sha256=job.model_version.sha256)
    if job.parent is not None:
        prov["parent_job_id"] = job.parent.pk
    return prov


def finish(job_id: int, status: str, *, progress: JobProgress | None = None, summary: dict[str, Any] | None = None,
           error: str = "") -> None:
    """Record the final status, metrics, short curves, summary and log of a job."""
    now = timezone.now()
    fields: dict[str, Any] = {"status": status, "finished": now, "updated": now, "eta_s": None}
    if progress is not None:
        if status == "succeeded":
            progress.fraction = 1.0
            progress.stage = "done"
        elif status == "cancelled":
            progress.add_log("cancelled")
        else:
            progress.add_log(f"failed: {error}")
        progress.dirty = True
        progress.flush()
    if status == "succeeded":
        fields["progress"] = 1.0
        fields["stage"] = "done"
    else:
        fields["stage"] = status
    if error:
        fields["error_message"] = error[:5000]
    if summary is not None:
        from reconstruction.cli.common import to_jsonable

        metrics = {k: _finite(v) for k, v in (summary.get("metrics") or {}).items() if _finite(v) is not None}
        fields["metrics"] = metrics
        if summary.get("curves"):
            fields["curves"] = short_curves(summary["curves"])
        fields["summary"] = to_jsonable({k: v for k, v in summary.items() if k != "curves"})
    Job.objects.filter(pk=job_id).update(**fields)


def execute(job_id: int, *, task_id: str | None = None) -> str:
    """Run job ``job_id`` to its end; return its final status (or "skipped")."""
    from workers.kinds import HANDLERS

    job = claim(job_id, task_id=task_id)
    if job is None:
        return "skipped"
    job.result_dir.mkdir(parents=True, exist_ok=True)
    heartbeat = Heartbeat([job.pk])
    progress = JobProgress(job.pk, log=job.log)

    def cancel_requested() -> bool:
        return Job.objects.filter(pk__in=list(heartbeat.ids), cancel_requested=True).exists()

    ctx = Context(
        job=job,
        progress=progress,
        cancel=CallbackCancelToken(cancel_requested, period_s=settings.CDI_CANCEL_POLL_S),
        heartbeat=heartbeat,
        device=settings.CDI_DEVICE,
        provenance=provenance_of(job),
    )
    heartbeat.start()
    started = time.monotonic()
    try:
        summary = HANDLERS[job.kind](ctx)
        summary = dict(summary or {})
        summary.setdefault("seconds", time.monotonic() - started)
        summary["job"] = {"id": job.pk, "kind": job.kind, "params": job.params, "attempts": job.attempts,
                          "wall_seconds": time.monotonic() - started, **ctx.provenance}
        write_json_atomic(job.summary_path, summary)
        finish(job.pk, "succeeded", progress=progress, summary=summary)
        return "succeeded"
    except Cancelled:
        finish(job.pk, "cancelled", progress=progress)
        return "cancelled"
    except ReconstructionError as exc:
        finish(job.pk, "failed", progress=progress, error=str(exc))
        return "failed"
    except Exception as exc:
        from celery.exceptions import SoftTimeLimitExceeded

        if isinstance(exc, SoftTimeLimitExceeded):
            from workers.tasks import time_limits_s

            message = f"time limit of {time_limits_s(job.kind)[0]:g} s exceeded for a {job.kind} job"
        else:
            message = f"internal error ({type(exc).__name__}: {exc})"
            progress.add_log(traceback.format_exc())
            logger.exception("job %s failed", job.pk)
        finish(job.pk, "failed", progress=progress, error=message)
        return "failed"
    finally:
        heartbeat.stop()


def claim_step(pipeline: Job, *, kind: str, parent: Job, params: dict[str, Any]) -> Job:
    """Find or create the Job row of one step run inside ``pipeline``'s task, marked running.

    A step that succeeded in an earlier attempt is returned as is (its result is reused).
    """
    from webapp.core.schemas import validate_params

    now = timezone.now()
    full = validate_params(kind, params)
    with transaction.atomic():
        step = (
            Job.objects.select_for_update()
            .filter(parent=parent, kind=kind, celery_task_id="")
            .order_by("-id")
            .first()
        )
        if step is not None and step.status == "succeeded":
            return step
        if step is None:
            step = Job.objects.create(
                group=pipeline.group, owner=pipeline.owner, kind=kind, params=full, dataset=pipeline.dataset,
                parent=parent, model_version=pipeline.model_version if kind == "predict" else None,
                celery_task_id="", status="running", attempts=1, started=now, updated=now, stage="starting",
                log=f"{_stamp()} step of pipeline job {pipeline.pk}\n",
            )
            return step
        Job.objects.filter(pk=step.pk).update(
            status="running", attempts=step.attempts + 1, started=now, updated=now, finished=None,
            progress=0.0, stage="starting", error_message="",
            log=step.log + f"{_stamp()} restarted with pipeline job {pipeline.pk} (attempt {step.attempts + 1})\n",
        )
    step.refresh_from_db()
    return step
