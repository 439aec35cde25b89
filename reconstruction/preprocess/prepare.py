"""``prepare``: threshold, centre on the peak, bin to a target oversampling, crop/pad to a shape."""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import numpy as np

from reconstruction.errors import ConfigError, InvalidDataError, NotAVolumeError
from reconstruction.io.types import DiffractionData
from reconstruction.preprocess.binning import bin_masked, crop_pad
from reconstruction.preprocess.oversampling import estimate_oversampling
from reconstruction.preprocess.peak import find_peak, resolve_peak_method


def _per_axis(value, ndim: int, *, what: str, cast) -> tuple:
    if isinstance(value, (int, float, np.integer, np.floating)):
        return tuple(cast(value) for _ in range(ndim))
    if isinstance(value, Sequence) and len(value) == ndim:
        return tuple(cast(v) for v in value)
    raise ConfigError(f"{what} must be a number or one value per axis ({ndim}), got {value!r}")


# "full" keeps the whole measured pattern, up to this many pixels per axis (a 1024^2 iteration
# costs milliseconds; a 256^3 one about 0.1 s on a laptop CPU)
FULL_MAX = {2: 1024, 3: 256}


def bin_factors(oversampling: Sequence[float], target: Sequence[float] | None) -> tuple[int, ...]:
    """Binning factor per axis: floor(oversampling / target), at least 1 (NaN or no target -> 1)."""
    if target is None:
        return tuple(1 for _ in oversampling)
    out = []
    for os_, t in zip(oversampling, target):
        out.append(max(1, math.floor(os_ / t)) if np.isfinite(os_) else 1)
    return tuple(out)


def fft_size(n: int) -> int:
    """Smallest even number >= ``n`` (pixels) with no prime factor above 5 (fast FFT lengths)."""
    size = max(2, int(n) + (int(n) % 2))
    while True:
        rest = size
        for p in (2, 3, 5):
            while rest % p == 0:
                rest //= p
        if rest == 1:
            return size
        size += 2


def full_shape(extent: Sequence[int], factors: Sequence[int]) -> tuple[int, ...]:
    """The "full" output shape: the binned extent per axis rounded up to an FFT length, at most
    ``FULL_MAX`` pixels per axis (the measured pattern is then cropped around its peak)."""
    cap = FULL_MAX.get(len(extent), 256)
    return tuple(min(fft_size(math.ceil(n / f)), cap) for n, f in zip(extent, factors))


def prepare(
    data: DiffractionData,
    *,
    shape: int | Sequence[int] | str = 64,
    oversampling: float | Sequence[float] | None = 3.0,
    threshold: float = 0.0,
    peak: str = "auto",
) -> DiffractionData:
    """Return the data centred on its peak, binned towards ``oversampling`` and of ``shape``.

    Parameters
    ----------
    data : DiffractionData, intensity (Z, Y, X) or (Y, X)
    shape : output shape, one int for every axis (64 -> 64³ in 3D, 64² in 2D), per axis, or
        "full": the whole (binned) measured pattern, see ``full_shape``
    oversampling : target linear oversampling per axis; the bin factor per axis is
        floor(estimated / target), at least 1; None: no binning
    threshold : counts below this are set to 0 (like cohere's ``intensity_threshold``)
    peak : "auto", "max", "com" or "friedel", see ``find_peak``

    Returns
    -------
    DiffractionData
        intensity ``shape`` float32 with the peak at index N // 2 per axis, mask of the same
        shape (pixels outside the measured area are masked), pixel sizes and rocking angles
        updated, every step in the provenance, ``metadata.extra`` holding
        ``oversampling_before``, ``oversampling_after``, ``bin_factors`` and ``peak_position``.
    """
    if data.intensity.ndim not in (2, 3):
        raise InvalidDataError(f"expected a 2D or 3D intensity, got shape {data.intensity.shape}")
    if data.metadata.extra.get("frame_stack"):
        raise NotAVolumeError(
            f"cannot prepare a stack of 2D frames: {data.metadata.extra['frame_stack']}"
        )
    ndim = data.intensity.ndim
    full = isinstance(shape, str)
    if full and shape != "full":
        raise ConfigError(f"shape must be a size in pixels or 'full', got {shape!r}")
    target_shape = None if full else _per_axis(shape, ndim, what="shape", cast=int)
    if target_shape is not None and min(target_shape) < 8:
        raise ConfigError(f"the output shape must be at least 8 per axis, got {target_shape}")
    target_os = None
    if oversampling is not None:
        target_os = _per_axis(oversampling, ndim, what="oversampling", cast=float)
        if min(target_os) <= 0 or not all(np.isfinite(target_os)):
            raise ConfigError(f"the target oversampling must be positive, got {target_os}")
    if threshold < 0 or not np.isfinite(threshold):
        raise ConfigError(f"the threshold must be >= 0 counts, got {threshold}")

    provenance = copy.deepcopy(data.provenance)
    metadata = copy.deepcopy(data.metadata)
    mask = np.asarray(data.mask, dtype=bool)
    intensity = np.where(mask, 0.0, data.intensity).astype(np.float32)

    if threshold > 0:
        low = (intensity > 0) & (intensity < threshold)
        intensity[low] = 0.0
        provenance.add_step("threshold", counts=float(threshold), zeroed=int(low.sum()))

    os_before = estimate_oversampling(intensity, mask)
    factors = bin_factors(os_before, target_os)
    if target_shape is None:
        target_shape = full_shape(intensity.shape, factors)
    method = resolve_peak_method(intensity, mask) if peak == "auto" else peak
    position = find_peak(intensity, mask, method=method)
    provenance.add_step("find_peak", method=method, asked=peak, position=list(position))
    provenance.add_step(
        "estimate_oversampling",
        stage="before",
        oversampling=list(os_before),
        shape=list(intensity.shape),
    )

    box = tuple(s * f for s, f in zip(target_shape, factors))
    start = [p - (s // 2) * f - f // 2 for p, s, f in zip(position, target_shape, factors)]
    out, out_mask, padded = crop_pad(intensity, mask, start=tuple(start), shape=box)
    binned, binned_mask = bin_masked(out, out_mask, factors)
    if method == "max" and any(f > 1 for f in factors):
        # the brightest binned pixel may sit one bin off the centre: shift the box once
        where = np.unravel_index(int(np.argmax(np.where(binned_mask, 0, binned))), binned.shape)
        shift = [int(w) - s // 2 for w, s in zip(where, target_shape)]
        if any(shift):
            start = [st + d * f for st, d, f in zip(start, shift, factors)]
            out, out_mask, padded = crop_pad(intensity, mask, start=tuple(start), shape=box)
            binned, binned_mask = bin_masked(out, out_mask, factors)
    provenance.add_step(
        "crop_centred",
        start=[int(s) for s in start],
        box=list(box),
        padded_pixels_masked=int(padded),
    )
    if any(f > 1 for f in factors):
        provenance.add_step(
            "bin",
            factors=list(factors),
            rule="sum; masked only if all sub-pixels "
            "masked; rescaled by sub-pixels / unmasked sub-pixels",
        )
    os_after = estimate_oversampling(binned, binned_mask)
    provenance.add_step(
        "estimate_oversampling",
        stage="after",
        oversampling=list(os_after),
        shape=list(binned.shape),
    )
    provenance.add_step(
        "prepare",
        shape=list(target_shape),
        shape_rule="full" if full else "given",
        oversampling_target=None if target_os is None else list(target_os),
        threshold=float(threshold),
        peak=method,
    )
    if not np.any(binned[~binned_mask] > 0):
        raise InvalidDataError("no positive intensity is left in the prepared box")

    if factors[-1] > 1 and metadata.x_pixel_size_m:
        metadata.x_pixel_size_m *= factors[-1]
    if factors[-2] > 1 and metadata.y_pixel_size_m:
        metadata.y_pixel_size_m *= factors[-2]
    if ndim == 3 and metadata.rocking_angles_deg is not None:
        metadata.rocking_angles_deg = _resample_angles(
            np.asarray(metadata.rocking_angles_deg, dtype=np.float64), start[0], box[0], factors[0]
        )
    metadata.extra.update(
        oversampling_before=list(os_before),
        oversampling_after=list(os_after),
        bin_factors=list(factors),
        peak_position=list(position),
    )
    return DiffractionData(
        intensity=binned, mask=binned_mask, metadata=metadata, provenance=provenance
    )


def _resample_angles(angles: np.ndarray, start: int, length: int, factor: int) -> np.ndarray:
    """Angles of the cropped (linearly extrapolated where padded) and binned (mean) frames."""
    n = angles.size
    step = float(np.median(np.diff(angles))) if n > 1 else 0.0
    idx = np.arange(start, start + length)
    inside = np.clip(idx, 0, n - 1)
    values = angles[inside] + (idx - inside) * step
    return values.reshape(-1, factor).mean(axis=1)
