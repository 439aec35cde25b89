"""Turn a raw numeric array (+ optional mask) into a clean float32 intensity and a bool mask.

Every correction is counted and recorded in the provenance: sentinel / saturation values of
integer detectors are masked, NaN/Inf are masked, negative values are clipped to 0, masked
pixels are set to 0. Complex, non-numeric, all-zero or wrongly shaped data are refused.
"""

from __future__ import annotations

import numpy as np

from reconstruction.errors import InvalidDataError
from reconstruction.io.types import Provenance

MIN_AXIS = 4  # an axis shorter than this cannot be an image axis

# CXI 1.6 mask bits that exclude a pixel (see docs/data.md). Other bits are informational
# (peak mask, resolution limit, noisy, artefact corrected, has signal, ...) and keep the pixel.
CXI_EXCLUDE_BITS = {
    0x00000001: "invalid",
    0x00000002: "saturated",
    0x00000004: "hot",
    0x00000008: "dead",
    0x00000010: "shadowed",
    0x00000040: "ignore",
    0x00000080: "bad",
    0x00000200: "missing",
}
CXI_EXCLUDE_MASK = sum(CXI_EXCLUDE_BITS)


def mask_from_cxi(mask: np.ndarray) -> np.ndarray:
    """Return a bool mask (True = excluded) from a CXI bit mask or a 0/1 / bool mask."""
    if mask.dtype == bool:
        return mask.copy()
    if np.issubdtype(mask.dtype, np.integer):
        return (mask.astype(np.int64) & CXI_EXCLUDE_MASK) != 0
    if np.issubdtype(mask.dtype, np.floating):
        return mask != 0  # NaN counts as excluded too
    raise InvalidDataError(f"a mask must be integer or boolean, got dtype {mask.dtype}")


def check_array_dtype(dtype: np.dtype, *, what: str) -> None:
    """Refuse dtypes that cannot be an intensity (complex, bool, strings, compound)."""
    if np.issubdtype(dtype, np.complexfloating):
        raise InvalidDataError(
            f"{what} is complex ({dtype}); measured intensities are real. A complex array is a "
            "reconstructed object: read it with load_object (or `info`), not as diffraction data"
        )
    if dtype == bool or not (np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)):
        raise InvalidDataError(f"{what} has dtype {dtype}, not a numeric intensity type")


def squeeze_shape(shape: tuple[int, ...], *, what: str) -> tuple[int, ...]:
    """Return the 2D/3D shape after dropping leading singleton axes, or raise InvalidDataError."""
    shape = tuple(int(s) for s in shape)
    squeezed = shape
    while len(squeezed) > 2 and squeezed[0] == 1:
        squeezed = squeezed[1:]
    if len(squeezed) not in (2, 3):
        if len(shape) == 4:
            hint = (
                "a 4D array is only accepted with a leading axis of length 1; this looks like "
                "several volumes (or frames per angle): select one with --path / dataset_path"
            )
        else:
            hint = "a diffraction pattern is 2D (Y, X) or a 3D volume (Z, Y, X)"
        raise InvalidDataError(f"expected a 2D or 3D intensity array, got shape {shape}: {hint}")
    if min(squeezed) < MIN_AXIS:
        raise InvalidDataError(
            f"{what} has shape {shape}: an axis shorter than {MIN_AXIS} pixels cannot be an image axis"
        )
    return squeezed


def sanitize_intensity(
    raw: np.ndarray,
    mask: np.ndarray | None,
    provenance: Provenance,
    *,
    what: str = "the data",
) -> tuple[np.ndarray, np.ndarray]:
    """Validate and clean a raw intensity array.

    Parameters
    ----------
    raw : (Z, Y, X) or (Y, X) numeric, possibly with leading axes of length 1
    mask : bool, same shape as ``raw`` (or its last two axes), True = excluded; or None
    provenance : receives the steps and warnings

    Returns
    -------
    intensity : float32, >= 0, finite, masked pixels set to 0
    mask : bool, same shape, True = excluded
    """
    raw = np.asarray(raw)
    check_array_dtype(raw.dtype, what=what)
    shape = squeeze_shape(raw.shape, what=what)
    if shape != raw.shape:
        provenance.add_step("squeeze", from_shape=list(raw.shape), to_shape=list(shape))
    data = raw.reshape(shape)
    bad = _broadcast_mask(mask, raw.shape, shape)

    if np.issubdtype(data.dtype, np.integer):
        info = np.iinfo(data.dtype)
        if np.issubdtype(data.dtype, np.signedinteger):
            sentinel = (data < 0) | (data == info.max)
            label = "negative or maximum-value (sentinel) integer pixels"
        else:
            sentinel = data == info.max
            if data.dtype.itemsize >= 4:
                sentinel |= data >= 2**31
            label = "saturation / gap sentinel pixels (maximum value, or >= 2**31)"
        n = int(np.count_nonzero(sentinel & ~bad))
        if n:
            provenance.warnings.append(f"masked {n} {label}")
            provenance.add_step("mask_sentinels", count=n)
        bad |= sentinel
        out = data.astype(np.float32)
    else:
        values = data.astype(np.float64, copy=False)
        nonfinite = ~np.isfinite(values) | (
            np.abs(np.nan_to_num(values)) > np.finfo(np.float32).max
        )
        n = int(np.count_nonzero(nonfinite & ~bad))
        if n:
            provenance.warnings.append(f"masked {n} NaN/Inf pixels")
            provenance.add_step("mask_nonfinite", count=n)
        bad |= nonfinite
        out = np.where(nonfinite, 0.0, values).astype(np.float32)
        _mask_missing_zeros(out, bad, provenance)
        negative = (out < 0) & ~bad
        n = int(np.count_nonzero(negative))
        if n:
            provenance.warnings.append(
                f"clipped {n} negative values to 0 (most negative {float(out[negative].min()):.4g})"
            )
            provenance.add_step("clip_negative", count=n)
            out[negative] = 0.0

    out[bad] = 0.0
    if np.issubdtype(data.dtype, np.integer) and float(out.max()) <= 1.0:
        provenance.warnings.append(
            "every value is 0 or 1: this looks like a mask or a support, not measured intensities "
            "(a support is given to phase as --support FILE, or in the web app as support_dataset)"
        )
    if not np.any(out > 0):
        raise InvalidDataError(
            f"{what} has no positive unmasked intensity (all zero or all masked): nothing to phase"
        )
    return np.ascontiguousarray(out, dtype=np.float32), np.ascontiguousarray(bad)


def _broadcast_mask(mask: np.ndarray | None, raw_shape: tuple, shape: tuple) -> np.ndarray:
    if mask is None:
        return np.zeros(shape, dtype=bool)
    mask = np.asarray(mask, dtype=bool)
    squeezed = mask.reshape(squeeze_like(mask.shape))
    if mask.shape == raw_shape or squeezed.shape == shape:
        return squeezed.reshape(shape).copy()
    if squeezed.shape == shape[-2:]:
        return np.broadcast_to(squeezed, shape).copy()
    raise InvalidDataError(
        f"the mask has shape {tuple(mask.shape)} but the data has shape {tuple(raw_shape)}; "
        "a mask must match the data or one of its frames"
    )


def squeeze_like(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Drop leading axes of length 1 while more than two axes remain."""
    shape = tuple(shape)
    while len(shape) > 2 and shape[0] == 1:
        shape = shape[1:]
    return shape


def _mask_missing_zeros(out: np.ndarray, bad: np.ndarray, provenance: Provenance) -> None:
    """In a processed (non-integer) float pattern, exact zeros mean 'not measured': mask them."""
    nonzero = out[(out != 0) & ~bad]
    if nonzero.size == 0:
        return
    sample = nonzero[:: max(1, nonzero.size // 100_000)]
    fractional = np.mean(sample != np.round(sample))
    if fractional < 0.1:
        return
    zeros = (out == 0) & ~bad
    n = int(np.count_nonzero(zeros))
    if n:
        bad |= zeros
        provenance.warnings.append(
            f"masked {n} pixels that are exactly 0 in a processed (non-integer) pattern: "
            "taken as beamstop / unmeasured"
        )
        provenance.add_step(
            "mask_exact_zeros", count=n, fractional_values=round(float(fractional), 3)
        )
