"""Smooth random fields and phase helpers."""

from __future__ import annotations

import math

import numpy as np
import scipy.fft


def correlated_field(
    shape: tuple[int, ...], lengths: tuple[float, ...], rng: np.random.Generator
) -> np.ndarray:
    """Return a zero-mean, unit-variance Gaussian random field of ``shape``, float32.

    White noise filtered in Fourier space by a Gaussian whose real-space standard deviations are
    ``lengths`` (voxels, one per axis): the field's correlation falls as exp(-d^2 / (4 L^2)).
    The field is periodic over ``shape``.
    """
    noise = rng.standard_normal(shape, dtype=np.float32)
    spectrum = scipy.fft.rfftn(noise, workers=1)
    transfer = None
    for axis, (n, length) in enumerate(zip(shape, lengths, strict=True)):
        f = scipy.fft.rfftfreq(n) if axis == len(shape) - 1 else scipy.fft.fftfreq(n)
        g = np.exp(-2.0 * math.pi**2 * (f * length) ** 2).astype(np.float32)
        g = g.reshape([-1 if k == axis else 1 for k in range(len(shape))])
        transfer = g if transfer is None else transfer * g
    field = scipy.fft.irfftn(spectrum * transfer, s=shape, workers=1)
    field -= field.mean()
    std = field.std()
    return (field / std if std > 0 else field).astype(np.float32)


def wrap_phase(phase: np.ndarray) -> np.ndarray:
    """Return ``phase`` (rad) wrapped into (-pi, pi]."""
    two_pi = 2.0 * math.pi
    return (phase - two_pi * np.ceil((phase - math.pi) / two_pi)).astype(np.float32)
