"""Crop, pad and bin intensities together with their masks."""

from __future__ import annotations

import numpy as np


def crop_pad(
    intensity: np.ndarray, mask: np.ndarray, *, start: tuple[int, ...], shape: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray, int]:
    """Return the box ``[start, start + shape)`` of the arrays; outside pixels are 0 and masked.

    Returns (intensity, mask, number of padded pixels).
    """
    out = np.zeros(shape, dtype=np.float32)
    out_mask = np.ones(shape, dtype=bool)
    src, dst = [], []
    for s, n, size in zip(start, shape, intensity.shape):
        lo, hi = max(s, 0), min(s + n, size)
        if hi <= lo:
            return out, out_mask, int(out.size)
        src.append(slice(lo, hi))
        dst.append(slice(lo - s, hi - s))
    out[tuple(dst)] = intensity[tuple(src)]
    out_mask[tuple(dst)] = mask[tuple(src)]
    padded = int(out.size - np.prod([d.stop - d.start for d in dst]))
    return out, out_mask, padded


def bin_masked(
    intensity: np.ndarray, mask: np.ndarray, factors: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Sum ``factors`` pixels per axis; a binned pixel is masked only if all its sub-pixels are.

    The sum over unmasked sub-pixels is rescaled by (sub-pixels / unmasked sub-pixels).
    Shapes must be multiples of the factors. Returns float32 intensity and bool mask.
    """
    if all(f == 1 for f in factors):
        return intensity.astype(np.float32), mask.copy()
    new_shape = tuple(n // f for n, f in zip(intensity.shape, factors))
    split = tuple(x for pair in zip(new_shape, factors) for x in pair)
    sum_axes = tuple(range(1, 2 * len(factors), 2))
    good = ~mask
    total = np.where(good, intensity, 0.0).astype(np.float64).reshape(split).sum(axis=sum_axes)
    count = good.reshape(split).sum(axis=sum_axes)
    per_bin = int(np.prod(factors))
    binned = np.where(count > 0, total * per_bin / np.maximum(count, 1), 0.0)
    return binned.astype(np.float32), count == 0
