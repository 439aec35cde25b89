"""Celery tasks: one task runs any job by id; the Job row is the truth, the message only carries the id."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING

from django.conf import settings

from workers.app import app

if TYPE_CHECKING:
    import redis


@app.task(name="cdi.run_job", bind=True, acks_late=True, reject_on_worker_lost=True)
def run_job(self, job_id: int) -> str:
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


# ---------------------------------------------------------------- upload validation (queue "io")
VALIDATION_QUEUE = "io"


class ValidationNoAnswer(Exception):
    """No worker answered an upload's validation in time, or the queue (Redis) is unreachable."""


def inspect_upload_answer(path: str) -> dict:
    """Check a file with the library: {"info": jsonable inspect_file dict} or {"error": its message}."""
    from reconstruction.errors import ReconstructionError
    from reconstruction.io.jsonable import jsonable
    from reconstruction.io.workflow import inspect_file

    try:
        return {"info": jsonable(dict(inspect_file(path)))}
    except ReconstructionError as exc:
        return {"error": str(exc)}
    except MemoryError:
        return {"error": f"{path}: reading this file needs more memory than the server allows"}


def _reply_connection(read_timeout_s: float = 10.0) -> redis.Redis:
    """A Redis client on the broker (where validation answers are pushed).

    ``read_timeout_s`` must exceed any blocking read made on it: redis-py (8.x) otherwise uses
    the connect timeout for reads too, and a ``BLPOP`` waiting longer fails as "unreachable".
    """
    import redis

    return redis.Redis.from_url(
        app.conf.broker_url, socket_connect_timeout=5, socket_timeout=read_timeout_s
    )


@app.task(name="cdi.inspect_upload", acks_late=False, ignore_result=True)
def inspect_upload(path: str, reply_key: str, reply_ttl_s: float = 600.0) -> dict:
    """Validate an uploaded file in this worker and push the answer to Redis list ``reply_key``."""
    from celery.exceptions import SoftTimeLimitExceeded

    try:
        answer = inspect_upload_answer(path)
    except SoftTimeLimitExceeded:
        answer = {"error": f"{path}: reading this file took too long; it was refused"}
    client = _reply_connection()
    with client.pipeline() as pipe:
        pipe.rpush(reply_key, json.dumps(answer))
        pipe.expire(reply_key, max(1, int(reply_ttl_s)))
        pipe.execute()
    return answer


def inspect_in_worker(path: str, *, timeout_s: float) -> dict:
    """Validate ``path`` on the ``io`` queue; wait at most ``timeout_s`` seconds for the answer.

    Returns ``inspect_upload_answer``'s dict; raises ``ValidationNoAnswer`` when no worker
    answered in time (the message expires, so a late worker skips it) or Redis is unreachable.
    """
    from kombu.exceptions import OperationalError
    from redis.exceptions import RedisError

    reply_key = f"cdi:inspect:{uuid.uuid4().hex}"
    # The worker stops parsing a few seconds before the request gives up, so a file that is
    # merely slow to read is refused with a message instead of a "no answer".
    soft = max(1.0, timeout_s - 5.0) if timeout_s > 10 else max(0.5, 0.8 * timeout_s)
    try:
        inspect_upload.apply_async(
            args=[path, reply_key, timeout_s + 60.0],
            queue=VALIDATION_QUEUE,
            expires=timeout_s,
            soft_time_limit=soft,
            time_limit=soft + 5.0,
            retry=True,
        )
        client = _reply_connection(read_timeout_s=timeout_s + 10.0)
        try:
            popped = client.blpop([reply_key], timeout=max(timeout_s, 0.01))
        finally:
            client.delete(reply_key)
            client.close()
    except (OperationalError, RedisError, ConnectionError, OSError) as exc:
        raise ValidationNoAnswer(f"the validation queue (Redis) is unreachable ({exc}); try again later") from exc
    if popped is None:
        raise ValidationNoAnswer(
            f"no worker checked the file within {timeout_s:g} s (the validation queue is busy or no worker "
            f"listens on the '{VALIDATION_QUEUE}' queue); nothing was stored, try again later"
        )
    return json.loads(popped[1])
