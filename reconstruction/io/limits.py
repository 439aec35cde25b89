"""Size limits applied before any array is read from a file."""

from __future__ import annotations

import math
import os

from reconstruction.errors import ConfigError, DataTooLargeError

DEFAULT_MAX_BYTES = 4 * 1024**3  # 4 GiB
MAX_BYTES_ENV = "CDI_MAX_DATASET_BYTES"


def resolve_max_bytes(max_bytes: int | None = None) -> int:
    """Return the limit in bytes: ``max_bytes`` if given, else ``$CDI_MAX_DATASET_BYTES``, else 4 GiB."""
    if max_bytes is not None:
        value = max_bytes
    else:
        raw = os.environ.get(MAX_BYTES_ENV, "").strip()
        if not raw:
            return DEFAULT_MAX_BYTES
        try:
            value = int(float(raw))
        except ValueError as exc:
            raise ConfigError(
                f"{MAX_BYTES_ENV}={raw!r} is not a number of bytes (e.g. 4294967296)"
            ) from exc
    if value <= 0:
        raise ConfigError(f"the dataset size limit must be a positive number of bytes, got {value}")
    return int(value)


def check_size(shape: tuple[int, ...], itemsize: int, *, what: str, max_bytes: int) -> int:
    """Raise ``DataTooLargeError`` if an array of ``shape`` would exceed ``max_bytes`` in memory.

    The in-memory size counts at least 4 bytes per element (the float32 copy we make).
    Returns the size in bytes.
    """
    n = math.prod(int(s) for s in shape)
    nbytes = n * max(int(itemsize), 4)
    if nbytes > max_bytes:
        raise DataTooLargeError(
            f"{what} has shape {tuple(int(s) for s in shape)} ({nbytes / 1024**2:.1f} MiB in memory), "
            f"more than the limit of {max_bytes / 1024**2:.1f} MiB; crop it first or raise the "
            f"limit with max_bytes / ${MAX_BYTES_ENV}"
        )
    return nbytes
