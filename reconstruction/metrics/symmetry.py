"""Centrosymmetry of a shape: how far an object's amplitude is from its own inversion.

A diffraction pattern cannot tell an object from its twin conj(rho(-r)); a network that cannot
choose between them predicts their average, whose amplitude is nearly centrosymmetric even when
the crystal's is not (a tetrahedron, a truncated one). Comparing the two values shows that.
"""

from __future__ import annotations

import numpy as np

from reconstruction.errors import InvalidDataError


def centrosymmetry(amplitude: np.ndarray) -> float:
    """Overlap of an amplitude with its inversion about the best centre, 0-1 (1 = centrosymmetric).

    ``amplitude``: a 2D or 3D array (the modulus is taken of a complex one), the object inside
    at most half the box along each axis (oversampling >= 2, as phasing needs), so that the
    circular correlation does not wrap. Returns max over inversion centres c of
    sum a(r) a(2c - r) / sum a(r)^2, whole and half voxels; independent of where the object
    sits in the box and of its scale.
    """
    a = np.abs(np.asarray(amplitude)).astype(np.float64)
    if a.ndim not in (2, 3):
        raise InvalidDataError(f"centrosymmetry needs a 2D or 3D array, got shape {a.shape}")
    energy = float(np.sum(a * a))
    if not np.isfinite(energy) or energy <= 0.0:
        raise InvalidDataError("centrosymmetry needs a finite, non-zero amplitude")
    inverted = a[(slice(None, None, -1),) * a.ndim]
    axes = tuple(range(a.ndim))
    spectrum = np.fft.rfftn(a, axes=axes) * np.conj(np.fft.rfftn(inverted, axes=axes))
    overlap = np.fft.irfftn(spectrum, s=a.shape, axes=axes)
    return float(min(1.0, overlap.max() / energy))
