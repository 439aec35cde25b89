"""Post-processing of reconstructed objects: phase ramp, phase offset, centring, unwrapping."""

from __future__ import annotations

import numpy as np
from skimage.restoration import unwrap_phase as _unwrap

from reconstruction.metrics.alignment import apply_phase_ramp, fit_phase_ramp


def _support_or_threshold(obj: np.ndarray, support: np.ndarray | None, threshold: float = 0.1):
    if support is not None:
        return np.asarray(support, bool)
    amp = np.abs(obj)
    return amp > threshold * amp.max()


def remove_phase_ramp(obj: np.ndarray, *, support: np.ndarray | None = None) -> np.ndarray:
    """Remove the linear phase ramp (rad/pixel) fitted inside ``support`` (default 10 % of max)."""
    sup = _support_or_threshold(obj, support)
    amp = np.abs(obj) * sup
    ramp = fit_phase_ramp(obj * sup, amp.astype(np.complex128))
    return apply_phase_ramp(obj, ramp).astype(obj.dtype)


def zero_phase_offset(obj: np.ndarray, *, support: np.ndarray | None = None) -> np.ndarray:
    """Multiply by a global phase so that the amplitude-weighted mean phase in the support is 0."""
    sup = _support_or_threshold(obj, support)
    total = np.sum(obj[sup])
    if total == 0:
        return obj
    return (obj * np.exp(-1j * np.angle(total))).astype(obj.dtype)


def centre_object(obj: np.ndarray, *, support: np.ndarray | None = None):
    """Roll the object (integer pixels) so its amplitude centre of mass sits at index N // 2.

    Returns (centred object, the integer roll per axis); rolling keeps |farfield(obj)|.
    """
    sup = _support_or_threshold(obj, support)
    amp = np.abs(obj) * sup
    total = amp.sum()
    if total == 0:
        return obj, tuple(0 for _ in obj.shape)
    roll = []
    for axis, n in enumerate(obj.shape):
        # circular centre of mass, robust to objects that wrap around the box edge
        angle = 2 * np.pi * np.arange(n) / n
        profile = amp.sum(axis=tuple(a for a in range(obj.ndim) if a != axis))
        com = (np.angle(np.sum(profile * np.exp(1j * angle))) % (2 * np.pi)) * n / (2 * np.pi)
        roll.append(int(round(n // 2 - com)))
    return np.roll(obj, tuple(roll), axis=tuple(range(obj.ndim))), tuple(roll)


def unwrap_phase(obj: np.ndarray, *, support: np.ndarray | None = None) -> np.ndarray:
    """Return the unwrapped phase (rad) of a 2D/3D object inside ``support`` (NaN outside)."""
    sup = _support_or_threshold(obj, support)
    phase = np.ma.masked_array(np.angle(obj), mask=~sup)
    out = _unwrap(phase)
    return np.where(sup, np.ma.getdata(out), np.nan)
