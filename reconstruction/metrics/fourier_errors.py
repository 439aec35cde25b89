"""Agreement between an object and measured intensities: chi2, free chi2, Poisson LLK.

The object's far field uses the project's convention (``reconstruction.fourier.farfield``);
the amplitude scale between the object and the data is fitted by least squares first, so
objects in any units can be compared with photon counts.
"""

from __future__ import annotations

import numpy as np

from reconstruction.errors import InvalidDataError
from reconstruction.fourier import blur_intensity, fft_nd


def free_pixel_mask(mask: np.ndarray, *, fraction: float = 0.05, seed: int = 0) -> np.ndarray:
    """Pick a seeded random ``fraction`` of the unmasked pixels to hold out (True = free).

    Parameters
    ----------
    mask : (Z, Y, X) or (Y, X) bool, True = excluded pixel (never chosen as free).
    fraction : share of the unmasked pixels to hold out, in [0, 0.5].
    seed : random seed; the same mask and seed always give the same free pixels.
    """
    mask = np.asarray(mask, dtype=bool)
    if not 0.0 <= fraction <= 0.5:
        raise InvalidDataError(f"the free-pixel fraction must be in [0, 0.5], got {fraction}")
    usable = np.flatnonzero(~mask.ravel())
    n_free = int(round(fraction * usable.size))
    free = np.zeros(mask.size, dtype=bool)
    if n_free:
        rng = np.random.default_rng(seed)
        free[rng.choice(usable, size=n_free, replace=False)] = True
    return free.reshape(mask.shape)


def poisson_llk(calc: np.ndarray, meas: np.ndarray) -> float:
    """Mean Poisson deviance per pixel, sum(Ic - Im - Im log(Ic / Im)) / n (0 for a perfect fit).

    ``calc`` and ``meas`` are 1D photon counts; it is about 0.5 per pixel for a model that fits
    Poisson-noisy data as well as the truth does.
    """
    if calc.size == 0:
        return float("nan")
    calc = np.maximum(calc, 1e-12, dtype=np.float64)
    meas = np.maximum(meas, 0.0, dtype=np.float64)
    counted = meas > 0  # the log term vanishes where nothing was measured
    m = meas[counted]
    log_term = float(np.sum(m * np.log(calc[counted] / m)))
    return float((np.sum(calc) - np.sum(meas) - log_term) / calc.size)


def fourier_errors(
    obj: np.ndarray,
    intensity: np.ndarray,
    mask: np.ndarray | None = None,
    free_mask: np.ndarray | None = None,
    psf: np.ndarray | None = None,
) -> dict[str, float]:
    """Fourier-space agreement of a centred object with measured intensities.

    Parameters
    ----------
    obj : (Z, Y, X) or (Y, X) complex, centred object on the grid of ``intensity``.
    intensity : same shape, float, measured photon counts (centred pattern).
    mask : same shape, bool, True = excluded pixel (ignored everywhere), or None.
    free_mask : same shape, bool, True = held-out pixel (only in the ``*_free`` values), or None.
    psf : same shape, the centred, normalised point-spread function of a partially coherent
        model (``reconstruction.phasing.coherence``): the calculated intensity is |F|² ⊗ psf.

    Returns
    -------
    dict with ``chi2`` = sum (s|F| - sqrt(I))^2 / sum I over the unmasked, non-free pixels,
    ``chi2_free`` the same over the free pixels (NaN without any), ``llk`` / ``llk_free`` the
    mean Poisson deviance per pixel (see ``poisson_llk``), ``scale`` s (fitted amplitude scale,
    least squares on the non-free pixels), ``n_pixels`` and ``n_free``.
    """
    obj = np.asarray(obj)
    intensity = np.asarray(intensity, dtype=np.float64)
    if obj.shape != intensity.shape:
        raise InvalidDataError(
            f"the object has shape {obj.shape} but the intensity has shape {intensity.shape}"
        )
    mask = np.zeros(obj.shape, bool) if mask is None else np.asarray(mask, bool)
    free = np.zeros(obj.shape, bool) if free_mask is None else np.asarray(free_mask, bool) & ~mask
    used = ~mask & ~free
    # |F| does not depend on where the object sits in its box: the object's ifftshift is skipped
    calc = np.fft.fftshift(np.abs(fft_nd(obj.astype(np.complex128, copy=False))))
    if psf is not None:
        if np.shape(psf) != obj.shape:
            raise InvalidDataError(f"the PSF has shape {np.shape(psf)}, the object {obj.shape}")
        calc = np.sqrt(blur_intensity(calc**2, psf))
    meas = np.sqrt(np.maximum(intensity, 0.0))
    picked = {"": (calc[used], meas[used]), "_free": (calc[free], meas[free])}
    c_used, m_used = picked[""]
    denom = float(np.sum(c_used * c_used))
    scale = float(np.sum(c_used * m_used) / denom) if denom > 0 else 0.0
    out: dict[str, float] = {"scale": scale}
    for name, (c, m) in picked.items():
        c = scale * c
        total = float(np.sum(m * m))
        out[f"chi2{name}"] = float(np.sum((c - m) ** 2) / total) if total > 0 else float("nan")
        out[f"llk{name}"] = poisson_llk(c**2, m**2)
    out["n_pixels"] = int(used.sum())
    out["n_free"] = int(free.sum())
    return out
