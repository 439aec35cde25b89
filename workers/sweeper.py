"""Recover jobs whose worker died: re-queue once, then fail with a reason.

A running job's task writes a heartbeat (``Job.updated``) every ``CDI_HEARTBEAT_S`` seconds.
When a whole worker is killed (SIGKILL, power loss) its Redis message stays unacknowledged
until ``visibility_timeout`` (longer than the longest job, so hours), so the job would look
"running" all that time. The sweeper (run by every worker at start and periodically, and by the
API when it reads a running job) finds jobs whose heartbeat is older than ``CDI_JOB_STALE_S``:

- first loss (``attempts`` < 2): the job goes back to "queued" and a NEW message (new task id)
  is sent; the old message, if Redis ever redelivers it, no longer matches ``celery_task_id``
  and is dropped by the task;
- second loss: the job is failed with "worker lost twice".

When only the pool child dies, Celery rejects the message (``task_reject_on_worker_lost``) and
it is redelivered at once with the same id; the task then finds the job "running" and applies
the same rule itself (``workers.runner.claim``).
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from webapp.core.models import Job


def pipeline_steps(job: Job):
    """The step jobs run inside ``job``'s own task (children and grandchildren without a task id)."""
    return Job.objects.filter(Q(parent=job) | Q(parent__parent=job), celery_task_id="")


LOST_TWICE = "worker lost twice: the job was interrupted in two attempts (killed or out of memory?)"


def _stale_cutoff(stale_after_s: float | None = None):
    seconds = settings.CDI_JOB_STALE_S if stale_after_s is None else stale_after_s
    return timezone.now() - timedelta(seconds=seconds)


def recover_job(job_id: int, *, stale_after_s: float | None = None) -> str | None:
    """Re-queue or fail one top-level job whose heartbeat is stale; return what was done or None."""
    from webapp.core.services import enqueue_or_fail

    now = timezone.now()
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if (
            job is None
            or job.status != "running"
            or not job.celery_task_id
            or job.updated >= _stale_cutoff(stale_after_s)
        ):
            return None
        stamp = f"{now:%Y-%m-%d %H:%M:%S}"
        steps = pipeline_steps(job).filter(status="running")
        if job.attempts >= 2 or job.cancel_requested:
            status = "cancelled" if job.cancel_requested else "failed"
            reason = "cancelled (its worker was lost)" if job.cancel_requested else LOST_TWICE
            Job.objects.filter(pk=job.pk).update(
                status=status, error_message="" if status == "cancelled" else reason, finished=now, updated=now,
                eta_s=None, log=job.log + f"{stamp} {reason}\n",
            )
            steps.update(status=status, error_message="" if status == "cancelled" else reason, finished=now, updated=now)
            return status
        Job.objects.filter(pk=job.pk).update(
            status="queued", celery_task_id=uuid.uuid4().hex, updated=now, stage="re-queued", eta_s=None,
            log=job.log + f"{stamp} worker lost (no heartbeat for {settings.CDI_JOB_STALE_S:g} s): re-queued once\n",
        )
        steps.update(status="queued", updated=now, stage="re-queued")
        transaction.on_commit(lambda: enqueue_or_fail(job_id))
    return "requeued"


def sweep_stale_jobs(*, stale_after_s: float | None = None) -> dict[int, str]:
    """Recover every running job whose heartbeat is stale; return {job id: "requeued"|"failed"|...}."""
    ids = list(
        Job.objects.filter(status="running", updated__lt=_stale_cutoff(stale_after_s))
        .exclude(celery_task_id="")
        .values_list("pk", flat=True)
    )
    done: dict[int, str] = {}
    for job_id in ids:
        outcome = recover_job(job_id, stale_after_s=stale_after_s)
        if outcome:
            done[job_id] = outcome
    return done


def recover_if_stale(job: Job) -> Job:
    """Cheap check used when the API reads a job: recover it if its heartbeat is stale."""
    if job.status == "running" and job.celery_task_id and job.updated < _stale_cutoff():
        if recover_job(job.pk):
            job.refresh_from_db()
    return job
