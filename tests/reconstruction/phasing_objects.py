"""Known test objects for the phasing and metrics tests (faceted crystal with a smooth phase)."""

from __future__ import annotations

import numpy as np
import torch

from reconstruction.fourier import intensity_of


def faceted_crystal(n: int = 32, size: float = 12.0, *, seed: int = 0, ndim: int = 3) -> np.ndarray:
    """A centred convex crystal (14 random facets, ``size`` px across) of amplitude 1.

    The phase is smooth, strain-like, reaching about +-pi inside and zero outside.
    """
    g = (np.indices((n,) * ndim) - n // 2).astype(float)
    rng = np.random.default_rng(seed)
    normals = rng.normal(size=(14, ndim))
    normals /= np.linalg.norm(normals, axis=1)[:, None]
    inside = np.ones((n,) * ndim, bool)
    for v in normals:
        inside &= np.tensordot(v, g, axes=1) <= size / 2
    phase = np.pi * np.sin(g[0] / 5 + 0.3) * np.cos(g[1] / 6 - 0.4)
    return (inside * np.exp(1j * phase * inside)).astype(np.complex64)


def counts(obj: np.ndarray, photons: float, *, seed: int | None = 0) -> np.ndarray:
    """Far-field intensity of ``obj`` with ``photons`` in total; Poisson noise unless seed is None."""
    intensity = intensity_of(obj).astype(np.float64)
    intensity *= photons / intensity.sum()
    if seed is None:
        return intensity.astype(np.float32)
    return np.random.default_rng(seed).poisson(intensity).astype(np.float32)


def random_engine_batch(shape=(12, 10, 14), batch: int = 3, seed: int = 0):
    """Random Engine inputs (unshifted layout) for comparing two code paths iterate by iterate:
    (amplitude, weight with ~10 % unconstrained pixels, free pixels among those, one support
    per run (~30 % of the box), complex starting objects (batch, *shape))."""
    gen = torch.Generator().manual_seed(seed)
    amplitude = torch.rand(shape, generator=gen) * 10
    weight = (torch.rand(shape, generator=gen) > 0.1).float()
    free = (1 - weight) * (torch.rand(shape, generator=gen) > 0.5).float()
    support = (torch.rand((batch,) + shape, generator=gen) > 0.7).float()
    psi = torch.randn((batch,) + shape, dtype=torch.complex64, generator=gen)
    return amplitude, weight, free, support, psi
