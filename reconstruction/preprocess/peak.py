"""Locate the diffraction peak (Bragg peak or zero frequency) of a pattern."""

from __future__ import annotations

import numpy as np

from reconstruction.errors import ConfigError

PEAK_METHODS = ("auto", "max", "com", "friedel")
# "friedel" searches a crop of at most this many pixels per axis around the brightest pixel
_FRIEDEL_CROP = {2: 512, 3: 128}


def find_peak(
    intensity: np.ndarray, mask: np.ndarray | None = None, *, method: str = "max"
) -> tuple[int, ...]:
    """Return the integer index of the peak of ``intensity`` ignoring masked pixels.

    Parameters
    ----------
    intensity : (Z, Y, X) or (Y, X) float, counts
    mask : same shape, bool, True = excluded; or None
    method : "max" (the brightest unmasked pixel), "com" (centre of mass of the unmasked
        pixels above 10 % of the maximum, rounded), "friedel" (the centre of point symmetry
        I(c + q) = I(c - q) of the unmasked pixels: the zero frequency of forward-scattering
        data, see ``friedel_centre``) or "auto" (see ``resolve_peak_method``)
    """
    values = np.where(mask, 0.0, intensity) if mask is not None else np.asarray(intensity)
    if method == "auto":
        method = resolve_peak_method(intensity, mask)
    if method == "max":
        return tuple(int(i) for i in np.unravel_index(int(np.argmax(values)), values.shape))
    if method == "friedel":
        return friedel_centre(intensity, mask)
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
    raise ConfigError(f"unknown peak method {method!r}: use one of {', '.join(PEAK_METHODS)}")


def resolve_peak_method(intensity: np.ndarray, mask: np.ndarray | None) -> str:
    """The method "auto" stands for: "friedel" if the mask touches the brightest pixel, else "max".

    "Touches": a masked pixel within 2 pixels of the brightest unmasked one. A beamstop hides
    the zero frequency of a forward-scattering pattern, and the brightest pixel left is at its
    edge, not at the centre (on the ESRF logo 9 pixels off, which moves the object by a phase
    ramp of 0.11 rad per pixel and crops 9 measured rows). A Bragg peak is not hidden, and its
    brightest pixel is its centre.
    """
    if mask is None or not np.any(mask):
        return "max"
    values = np.where(mask, 0.0, intensity)
    peak = np.unravel_index(int(np.argmax(values)), values.shape)
    near = tuple(slice(max(p - 2, 0), p + 3) for p in peak)
    return "friedel" if bool(np.any(np.asarray(mask)[near])) else "max"


def friedel_centre(intensity: np.ndarray, mask: np.ndarray | None = None) -> tuple[int, ...]:
    """Integer index c of the centre of point symmetry of the unmasked pixels (pixels).

    Maximises the mean of a(c + q) a(c - q) over pairs of unmasked pixels, a = sqrt(I), with the
    pairs' count at least half its largest value, for c within a crop of up to 512² / 128³
    pixels around the brightest pixel: for forward scattering |F(q)| = |F(-q)| (Friedel's law),
    so this finds the zero frequency even where a beamstop masks it. Half-integer centres
    round down.
    """
    values = np.asarray(intensity, dtype=np.float64)
    valid = np.ones(values.shape, bool) if mask is None else ~np.asarray(mask, dtype=bool)
    amp = np.sqrt(np.where(valid, np.clip(values, 0.0, None), 0.0))
    peak = np.unravel_index(int(np.argmax(amp)), amp.shape)
    crop_size = _FRIEDEL_CROP.get(values.ndim, 128)
    lo = [min(max(p - crop_size // 2, 0), max(n - crop_size, 0)) for p, n in zip(peak, values.shape)]
    crop = tuple(slice(a, a + crop_size) for a in lo)
    amp, weight = amp[crop], valid[crop].astype(np.float64)
    padded = tuple(2 * n for n in amp.shape)
    axes = tuple(range(amp.ndim))

    def self_convolution(x: np.ndarray) -> np.ndarray:
        spectrum = np.fft.rfftn(x, s=padded, axes=axes)
        return np.fft.irfftn(spectrum * spectrum, s=padded, axes=axes)

    pairs = self_convolution(weight)
    products = self_convolution(amp)
    enough = pairs >= 0.5 * pairs.max()
    score = np.where(enough, products / np.maximum(pairs, 1e-12), -np.inf)
    twice = np.unravel_index(int(np.argmax(score)), score.shape)  # index sum 2c within the crop
    return tuple(int(a + k // 2) for a, k in zip(lo, twice))
