"""Arrays for the browser: plotly.js typed-array specs and 8-bit quantised volumes.

plotly.js (>= 2.28) decodes ``{"dtype": "f4", "bdata": <base64>, "shape": "n, m"}`` wherever it
takes an array; unlike plain JSON it carries NaN. Volumes that the page slices itself are sent
as uint8 codes (0 = NaN, 1..255 = lo..hi) and decoded by ``frontend/static/viewer/common.js``.
"""

from __future__ import annotations

import base64
import math
import warnings
from typing import Any

import numpy as np

from reconstruction.errors import InvalidDataError

MAX_SLICE_SIDE = 96  # volumes larger than this per axis are binned before sending


def typed_array(values: np.ndarray, dtype: str = "f4") -> dict[str, Any]:
    """Return a plotly.js typed-array spec of ``values`` (1D or 2D) cast to ``dtype``.

    dtype is a plotly.js code: "f4", "f8", "i1", "u1", "i2", "u2", "i4", "u4".
    """
    arr = np.ascontiguousarray(np.asarray(values), dtype=np.dtype(dtype).newbyteorder("<"))
    spec: dict[str, Any] = {"dtype": dtype, "bdata": base64.b64encode(arr.tobytes()).decode()}
    if arr.ndim == 2:
        spec["shape"] = f"{arr.shape[0]}, {arr.shape[1]}"
    elif arr.ndim != 1:
        raise InvalidDataError(f"typed arrays are 1D or 2D, got shape {arr.shape}")
    return spec


def decode_typed_array(spec: dict[str, Any]) -> np.ndarray:
    """Inverse of ``typed_array`` (used by tests and the NPZ export)."""
    arr = np.frombuffer(base64.b64decode(spec["bdata"]), dtype=np.dtype(spec["dtype"]).newbyteorder("<"))
    if "shape" in spec:
        arr = arr.reshape([int(s) for s in str(spec["shape"]).split(",")])
    return arr


def encode_volume(values: np.ndarray, *, lo: float, hi: float) -> dict[str, Any]:
    """Quantise a real volume to uint8 for the browser: 0 = NaN, 1..255 = lo..hi (clipped).

    Parameters
    ----------
    values : (Z, Y, X) or (Y, X) float, NaN where nothing is to be drawn.
    lo, hi : value range mapped to codes 1 and 255 (same units as ``values``).

    Returns a dict with ``shape``, ``lo``, ``hi`` and ``bdata`` (base64 of C-ordered uint8).
    Resolution is (hi - lo) / 254.
    """
    vals = np.asarray(values, dtype=np.float64)
    span = hi - lo if hi > lo else 1.0
    codes = np.clip(np.rint((np.nan_to_num(vals, nan=lo) - lo) / span * 254.0) + 1, 1, 255)
    codes = np.where(np.isnan(vals), 0, codes).astype(np.uint8)
    return {
        "shape": list(vals.shape),
        "lo": float(lo),
        "hi": float(hi),
        "bdata": base64.b64encode(np.ascontiguousarray(codes).tobytes()).decode(),
    }


def decode_volume(spec: dict[str, Any]) -> np.ndarray:
    """Inverse of ``encode_volume``: float32 array with NaN where the code is 0."""
    codes = np.frombuffer(base64.b64decode(spec["bdata"]), dtype=np.uint8).reshape(spec["shape"])
    vals = spec["lo"] + (codes.astype(np.float32) - 1) / 254.0 * (spec["hi"] - spec["lo"])
    return np.where(codes == 0, np.nan, vals).astype(np.float32)


def bin_volume(values: np.ndarray, *, max_side: int = MAX_SLICE_SIDE, reduce: str = "mean") -> tuple[np.ndarray, int]:
    """Bin a volume by the smallest integer factor that brings every axis to <= ``max_side``.

    Returns ``(binned, factor)``; trailing voxels that do not fill a bin are dropped.
    ``reduce`` is "mean" or "max"; NaN propagates with "mean" only where a whole bin is NaN.
    """
    factor = max(1, math.ceil(max(values.shape) / max_side))
    if factor == 1:
        return values, 1
    cut = tuple(slice(0, (n // factor) * factor) for n in values.shape)
    v = values[cut]
    shape: list[int] = []
    for n in v.shape:
        shape += [n // factor, factor]
    v = v.reshape(shape)
    axes = tuple(range(1, 2 * values.ndim, 2))
    if reduce == "max":
        return np.nanmax(v, axis=axes) if np.isnan(v).any() else v.max(axis=axes), factor
    if not np.isnan(v).any():
        return v.mean(axis=axes), factor
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN bins stay NaN (masked)
        return np.nanmean(v, axis=axes), factor
