"""Per-process memory cap for worker children (``CDI_WORKER_MEMORY_LIMIT_MB``).

The upload-validation worker parses files nobody has checked yet. The reader refuses datasets
whose declared size exceeds ``CDI_MAX_DATASET_BYTES`` before reading them, but several
validations at once, or a file just under that limit, could still take all the host's memory
and get the whole container killed. With a cap on the address space of each pool child, such a
read raises ``MemoryError`` in that child instead, and the task answers with a readable refusal.
"""

from __future__ import annotations

import logging
import os

from reconstruction.errors import ConfigError

logger = logging.getLogger(__name__)

MEMORY_LIMIT_ENV = "CDI_WORKER_MEMORY_LIMIT_MB"


def memory_limit_mb(environ: dict[str, str] | None = None) -> int | None:
    """The cap in MiB from ``$CDI_WORKER_MEMORY_LIMIT_MB`` (unset, empty or 0: no cap)."""
    raw = (os.environ if environ is None else environ).get(MEMORY_LIMIT_ENV, "").strip()
    if not raw:
        return None
    try:
        value = int(float(raw))
    except ValueError as exc:
        raise ConfigError(f"{MEMORY_LIMIT_ENV}={raw!r} is not a number of MiB (e.g. 6144)") from exc
    if value < 0:
        raise ConfigError(f"{MEMORY_LIMIT_ENV} must be >= 0 MiB, got {value}")
    return value or None


def apply_memory_limit(limit_mb: int | None) -> None:
    """Cap this process's address space at ``limit_mb`` MiB (RLIMIT_AS); None leaves it alone."""
    if limit_mb is None:
        return
    try:
        import resource  # POSIX only

        limit = int(limit_mb) * 1024 * 1024
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, AttributeError, ValueError, OSError) as exc:  # no RLIMIT_AS here
        logger.warning("worker process %d: cannot cap its memory (%s); running uncapped",
                       os.getpid(), exc)
        return
    logger.info("worker process %d: address space capped at %d MiB", os.getpid(), limit >> 20)
