"""Locate the diffraction peak (Bragg peak or zero frequency) of a pattern."""

from __future__ import annotations

import numpy as np

from reconstruction.errors import ConfigError


def find_peak(
    intensity: np.ndarray, mask: np.ndarray | None = None, *, method: str = "max"
) -> tuple[int, ...]:
    """Return the integer index of the peak of ``intensity`` ignoring masked pixels.

    Parameters
    ----------
    intensity : (Z, Y, X) or (Y, X) float, counts
    mask : same shape, bool, True = excluded; or None
    method : "max" (the brightest unmasked pixel) or "com" (centre of mass of the unmasked
        pixels above 10 % of the maximum, rounded)
    """
    values = np.where(mask, 0.0, intensity) if mask is not None else np.asarray(intensity)
    if method == "max":
        return tuple(int(i) for i in np.unravel_index(int(np.argmax(values)), values.shape))
    if method == "com":
        top = float(values.max())
        weights = np.where(values >= 0.1 * top, values, 0.0).astype(np.float64)
        total = weights.sum()
        if total <= 0:
            return tuple(s // 2 for s in values.shape)
        centre = []
        for axis in range(values.ndim):
            others = tuple(a for a in range(values.ndim) if a != axis)
            profile = weights.sum(axis=others)
            centre.append(round(float(np.dot(profile, np.arange(profile.size)) / total)))
        return tuple(centre)
    raise ConfigError(f"unknown peak method {method!r}: use 'max' or 'com'")
