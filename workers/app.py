"""The Celery app: Redis broker, ``gpu``, ``cpu`` and ``io`` queues, at-least-once delivery.

Run a GPU host with ``celery -A workers.app worker -Q gpu -c 1``, a CPU host with ``-Q cpu``
(simulate jobs), and a small worker on ``-Q io`` for upload validation, so that checking an
uploaded file never waits behind a long job. The prefork pool is used so that each child
process initialises its own CUDA; torch and the library are imported lazily inside the tasks,
never in the parent process. ``CDI_WORKER_MEMORY_LIMIT_MB`` caps each pool child's address
space (``workers.limits``; set on the ``io`` worker).
"""

from __future__ import annotations

import logging
import os

from celery import Celery, bootsteps
from celery.signals import worker_process_init, worker_ready
from kombu import Exchange, Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")

from django.conf import settings

logger = logging.getLogger(__name__)

#: "gpu": network and phasing jobs; "cpu": simulate jobs; "io": upload validation (short).
QUEUE_NAMES = ("cpu", "gpu", "io")

app = Celery("cdi", include=["workers.tasks"])
app.conf.update(
    broker_url=settings.REDIS_URL,
    broker_connection_retry_on_startup=True,
    broker_connection_timeout=5,
    # At-least-once: a message is acknowledged only when its task has finished, and put back
    # when the child process running it dies. Redis redelivers an unacknowledged message after
    # ``visibility_timeout``, which must exceed the longest job (see CDI_TIME_LIMITS_S).
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    broker_transport_options={"visibility_timeout": settings.CDI_VISIBILITY_TIMEOUT_S},
    task_publish_retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1},
    task_queues=[Queue(name, Exchange(name, type="direct"), routing_key=name) for name in QUEUE_NAMES],
    task_default_queue="cpu",
    task_default_exchange="cpu",
    task_default_routing_key="cpu",
    task_ignore_result=True,
    task_store_errors_even_if_ignored=False,
    worker_pool="prefork",
    worker_max_tasks_per_child=50,
    worker_send_task_events=False,
    worker_hijack_root_logger=False,
    timezone="UTC",
)


def _sweep(reason: str) -> None:
    """Run the stale-job sweeper, logging (never raising) any error."""
    from workers.sweeper import sweep_stale_jobs

    try:
        touched = sweep_stale_jobs()
    except Exception:
        logger.exception("stale-job sweep (%s) failed", reason)
        return
    if touched:
        logger.warning("stale-job sweep (%s): %s", reason, touched)


class StaleJobSweeper(bootsteps.StartStopStep):
    """Every ``CDI_SWEEP_INTERVAL_S`` the worker's parent fails or re-queues jobs whose heartbeat stopped."""

    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker, **kwargs) -> None:
        self.tref = None

    def start(self, worker) -> None:
        self.tref = worker.timer.call_repeatedly(settings.CDI_SWEEP_INTERVAL_S, _sweep, ("periodic",), priority=10)

    def stop(self, worker) -> None:
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None


app.steps["worker"].add(StaleJobSweeper)


@worker_ready.connect
def _sweep_at_startup(**kwargs) -> None:
    """A worker starting after a crash recovers the jobs the dead worker left 'running'."""
    _sweep("worker start")


@worker_process_init.connect
def _cap_memory(**kwargs) -> None:
    """Each pool child caps its address space when ``CDI_WORKER_MEMORY_LIMIT_MB`` is set."""
    from workers.limits import apply_memory_limit, memory_limit_mb

    apply_memory_limit(memory_limit_mb())
