"""Phase-retrieval transfer function (PRTF) of an ensemble of runs, and Fourier spectral weight."""

from __future__ import annotations

from typing import Any

import numpy as np

from reconstruction.errors import InvalidDataError
from reconstruction.fourier import farfield


def radial_frequency(shape: tuple[int, ...]) -> np.ndarray:
    """Spatial frequency |k| (cycles per pixel) of each pixel of a centred pattern of ``shape``."""
    grids = np.meshgrid(*[(np.arange(n) - n // 2) / n for n in shape], indexing="ij")
    return np.sqrt(sum(g**2 for g in grids))


def shell_average(
    values: np.ndarray, *, mask: np.ndarray | None = None, n_bins: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Average ``values`` (centred pattern) in frequency shells; return (freq, mean) per shell.

    freq : (n_bins,) shell centres in cycles per pixel, up to 0.5; empty shells give NaN.
    """
    return _shell_means(radial_frequency(values.shape), values, mask, 0.5, n_bins)


def _shell_means(
    radius: np.ndarray, values: np.ndarray, mask: np.ndarray | None, r_max: float, n_bins: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``values`` in ``n_bins`` (default half the largest side) equal shells of
    ``radius`` from 0 to ``r_max`` over the pixels not in ``mask``; (shell centres, means), NaN
    for empty shells; pixels at ``r_max`` and beyond are left out."""
    use = np.ones(values.shape, bool) if mask is None else ~np.asarray(mask, bool)
    n_bins = n_bins or max(values.shape) // 2
    edges = np.linspace(0.0, r_max, n_bins + 1)
    index = np.digitize(radius[use], edges) - 1
    inside = index < n_bins
    sums = np.bincount(index[inside], weights=values[use][inside], minlength=n_bins)[:n_bins]
    counts = np.bincount(index[inside], minlength=n_bins)[:n_bins]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return 0.5 * (edges[1:] + edges[:-1]), mean


def prtf(
    objs,
    intensity: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    n_bins: int | None = None,
    object_pixel_size_m: float | None = None,
    q_basis_per_m: np.ndarray | None = None,
) -> dict[str, Any]:
    """PRTF of aligned runs: shell average of |<s_r F_r>| / sqrt(I_meas), and its 1/e resolution.

    Parameters
    ----------
    objs : (R, ...) complex, R >= 1 reconstructions already aligned on each other (shift, twin,
        global phase, ramp: ``reconstruction.metrics.alignment.align_to``).
    intensity : (...) float, measured photon counts (centred); mask True = excluded.
    object_pixel_size_m : real-space pixel size (m), to also give frequencies in 1/m.
    q_basis_per_m : (ndim, ndim) q step per pixel along each axis (columns, 1/m; for a Bragg
        scan ``reconstruction.geometry.reciprocal_basis``, else the diagonal of 2π / (N d)): the
        PRTF is then also averaged in shells of the true |q|.

    Returns
    -------
    dict with ``freq`` (cycles per pixel), ``prtf`` per shell, ``cross_freq`` (first frequency
    where the PRTF falls below 1/e, NaN if never), ``resolution_pixel`` (half-period, pixels),
    and ``freq_m`` / ``resolution_m`` when ``object_pixel_size_m`` is given; with
    ``q_basis_per_m``, ``q_per_m`` (shell centres of |q|), ``prtf_q`` and ``resolution_q_m``
    (half-period π / q at the 1/e crossing, NaN if never).
    """
    objs = np.asarray(objs)
    intensity = np.asarray(intensity, np.float64)
    if objs.shape[1:] != intensity.shape:
        raise InvalidDataError(f"runs of shape {objs.shape[1:]} vs intensity {intensity.shape}")
    meas = np.sqrt(np.maximum(intensity, 0.0))
    mask = np.zeros(intensity.shape, bool) if mask is None else np.asarray(mask, bool)
    use = ~mask & (meas > 0)
    total = np.zeros(intensity.shape, np.complex128)
    for obj in objs:
        field = farfield(obj.astype(np.complex128))
        amp = np.abs(field[use])
        scale = np.sum(amp * meas[use]) / max(np.sum(amp**2), 1e-30)
        total += scale * field
    ratio = np.where(use, np.abs(total / len(objs)) / np.where(use, meas, 1.0), 0.0)
    freq, curve = shell_average(ratio, mask=~use, n_bins=n_bins)
    below = np.flatnonzero(np.nan_to_num(curve, nan=1.0) < np.exp(-1))
    cross = float(freq[below[0]]) if below.size else float("nan")
    out: dict[str, Any] = {}
    if q_basis_per_m is not None:
        q, curve_q = q_shell_average(ratio, np.asarray(q_basis_per_m, np.float64), mask=~use, n_bins=n_bins)
        below_q = np.flatnonzero(np.nan_to_num(curve_q, nan=1.0) < np.exp(-1))
        out.update(q_per_m=q, prtf_q=curve_q,
                   resolution_q_m=float(np.pi / q[below_q[0]]) if below_q.size else float("nan"))
    out.update({
        "freq": freq,
        "prtf": curve,
        "cross_freq": cross,
        "resolution_pixel": 1.0 / (2.0 * cross) if below.size else float("nan"),
    })
    if object_pixel_size_m:
        out["freq_m"] = freq / object_pixel_size_m
        out["resolution_m"] = out["resolution_pixel"] * object_pixel_size_m
    return out


def q_shell_average(
    values: np.ndarray, q_basis_per_m: np.ndarray, *, mask: np.ndarray | None = None,
    n_bins: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Average ``values`` (centred pattern) in shells of the true |q| = |B m| (1/m), m the pixel
    offset from N // 2 and B the q steps (columns): (shell centres, means), shells from 0 to the
    radius of the largest sphere inside the sampled box (a sheared box's nearest face)."""
    b = np.asarray(q_basis_per_m, np.float64)
    shape = values.shape
    if b.shape != (len(shape), len(shape)):
        raise InvalidDataError(f"q basis {b.shape} does not match a pattern of shape {shape}")
    m = np.stack(np.meshgrid(*(np.arange(n) - n // 2 for n in shape), indexing="ij")).reshape(len(shape), -1)
    q = np.linalg.norm(b @ m, axis=0).reshape(shape)
    # distance from the centre to the face of the box across axis j: (N_j / 2) / |row j of B⁻¹|
    inverse = np.linalg.inv(b)
    q_max = min((n / 2) / float(np.linalg.norm(inverse[j])) for j, n in enumerate(shape))
    return _shell_means(q, values, mask, q_max, n_bins)


def object_pixel_size_m(metadata, n: int) -> float | None:
    """Real-space pixel size (m) lambda * D / (n * p) of an n-pixel detector box, or None.

    Uses ``metadata.wavelength_m``, ``distance_m`` and the detector pixel size (the mean of x
    and y); None when any is missing. For a rocking-curve axis this is only indicative.
    """
    sizes = [p for p in (metadata.x_pixel_size_m, metadata.y_pixel_size_m) if p]
    if not (metadata.wavelength_m and metadata.distance_m and sizes):
        return None
    return metadata.wavelength_m * metadata.distance_m / (n * float(np.mean(sizes)))


def spectral_weight(
    intensity: np.ndarray, *, mask: np.ndarray | None = None, n_bins: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Fraction of the measured intensity in each frequency shell: (freq, weight), sum 1."""
    intensity = np.asarray(intensity, np.float64)
    use = np.ones(intensity.shape, bool) if mask is None else ~np.asarray(mask, bool)
    n_bins = n_bins or max(intensity.shape) // 2
    edges = np.linspace(0.0, 0.5, n_bins + 1)
    freq = radial_frequency(intensity.shape)[use]
    sums = np.histogram(freq, bins=edges, weights=intensity[use])[0]
    total = sums.sum()
    return 0.5 * (edges[1:] + edges[:-1]), sums / total if total > 0 else sums
