"""Celery tasks: one task runs any job by id; the Job row is the truth, the message only carries the id."""

from __future__ import annotations

from django.conf import settings

from workers.app import app


@app.task(name="cdi.run_job", bind=True, acks_late=True, reject_on_worker_lost=True)
def run_job(self, job_id: int) -> str:  # noqa: ANN001
    """Run job ``job_id`` (safe to deliver twice: a finished or superseded job is skipped)."""
    from workers.runner import execute

    return execute(job_id, task_id=self.request.id)


@app.task(name="cdi.sweep_stale_jobs")
def sweep_stale_jobs_task() -> dict[int, str]:
    """Recover jobs whose worker died (also run by every worker at start and periodically)."""
    from workers.sweeper import sweep_stale_jobs

    return sweep_stale_jobs()


def time_limits_s(kind: str) -> tuple[float, float]:
    """Soft and hard time limits of a job kind in seconds (soft: the job fails cleanly)."""
    soft = float(settings.CDI_TIME_LIMITS_S.get(kind, 3600))
    return soft, soft + 60.0


def enqueue_job(job_id: int) -> None:
    """Send the message of a queued job to its kind's queue, with the job's task id and time limits."""
    from webapp.core.models import Job
    from webapp.core.schemas import QUEUES

    job = Job.objects.only("pk", "kind", "celery_task_id", "status").get(pk=job_id)
    if job.status != "queued":
        return
    soft, hard = time_limits_s(job.kind)
    run_job.apply_async(
        args=[job.pk],
        task_id=job.celery_task_id or None,
        queue=QUEUES.get(job.kind, "cpu"),
        soft_time_limit=soft,
        time_limit=hard,
        retry=True,
    )
