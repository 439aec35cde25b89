"""``load_support``: the support of an object (where it may be non-zero) from a file."""

from __future__ import annotations

import os

import numpy as np

from reconstruction.errors import AmbiguousDataError, InvalidDataError, UnreadableFileError
from reconstruction.io.edf import read_edf
from reconstruction.io.limits import resolve_max_bytes
from reconstruction.io.load import sniff_format
from reconstruction.io.numpy_files import read_npy
from reconstruction.io.objects import load_object


def load_support(
    path: str | os.PathLike, *, threshold: float = 0.1, max_bytes: int | None = None
) -> tuple[np.ndarray, str]:
    """Read a support (bool, centred like the object) from a file.

    Accepts a 0/1 image (EDF as ESRF ships them, ``.npy``) and reconstructed objects (our
    result files, PyNX, cohere, ``.npz``): an object's own support when it has one, else its
    amplitude above ``threshold`` of the maximum; a real image that is not 0/1 (an amplitude) is
    thresholded likewise. Returns (support, how it was read).
    """
    name = os.fspath(path)
    limit = resolve_max_bytes(max_bytes)
    fmt = sniff_format(path)
    if fmt == "edf":
        array, _header = read_edf(path, max_bytes=limit)
    elif fmt == "npy":
        array = read_npy(path, max_bytes=limit)
    else:
        try:
            obj = load_object(path, max_bytes=limit)
        except (UnreadableFileError, AmbiguousDataError) as exc:
            raise type(exc)(
                f"{name} is neither a 0/1 support image (EDF, .npy) nor an object file with a "
                f"support: {exc}"
            ) from exc
        if obj.support is not None and obj.support.any():
            return np.asarray(obj.support, bool), f"the support of the object in {name}"
        array = obj.obj
    return support_from_array(array, threshold=threshold, name=name)


def support_from_array(
    array: np.ndarray, *, threshold: float = 0.1, name: str = "the support"
) -> tuple[np.ndarray, str]:
    """Support from a 0/1 image (non-zero pixels) or an amplitude / complex object (above
    ``threshold`` of its maximum modulus); returns (support bool, how it was read)."""
    array = np.asarray(array)
    while array.ndim > 2 and array.shape[0] == 1:
        array = array[0]
    if array.ndim not in (2, 3):
        raise InvalidDataError(
            f"{name}: a support must be a 2D or 3D image, got shape {array.shape}"
        )
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise InvalidDataError(f"{name}: a support must be numeric, got dtype {array.dtype}")
    modulus = np.abs(array).astype(np.float64) if array.dtype != bool else array.astype(np.float64)
    if not np.isfinite(modulus).all():
        raise InvalidDataError(f"{name}: the support image holds NaN or infinite values")
    values = np.unique(modulus)
    if values.size <= 2 and not np.iscomplexobj(array) and values[0] == 0:
        support, how = modulus > 0, f"the non-zero pixels of {name}"
    else:
        if not 0 < threshold < 1:
            raise InvalidDataError(f"the support threshold must be in (0, 1), got {threshold}")
        support = modulus > threshold * modulus.max()
        how = f"{name} above {threshold:g} of its maximum"
    if not support.any():
        raise InvalidDataError(f"{name}: the support is empty (no non-zero pixel)")
    if support.all():
        raise InvalidDataError(
            f"{name}: the support covers the whole box; it must leave the object's surroundings "
            "empty (a 0/1 image with 1 inside the object)"
        )
    return support, how


def check_support_grid(support: np.ndarray, shape: tuple[int, ...], source: str) -> None:
    """Raise ``InvalidDataError`` unless the support read from ``source`` has the data's shape."""
    if tuple(support.shape) != tuple(shape):
        raise InvalidDataError(
            f"the support in {source} has shape {tuple(support.shape)} but the data to phase has "
            f"shape {tuple(shape)}: give a support on the prepared grid, or phase the raw file "
            "with a support of the raw frame's shape (phased then at full resolution)"
        )


__all__ = ["check_support_grid", "load_support", "support_from_array"]
