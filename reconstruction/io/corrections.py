"""Detector corrections: dark-field subtraction and flat-field (white-field) normalisation."""

from __future__ import annotations

import numpy as np

from reconstruction.errors import InvalidDataError
from reconstruction.io.types import Provenance

FLAT_MIN_FRACTION = 0.1  # flat below this fraction of its median: gap / dead pixel, masked
DARK_MIN_EXCESS = 1.0  # a dark pixel this far above the dark median (and 10 robust sigma) is hot


def crop_to_frame(
    field: np.ndarray, frame_shape: tuple[int, int], *, what: str, provenance: Provenance
) -> np.ndarray:
    """Return the (Y, X) correction image cropped from the origin to the frame shape."""
    field = np.asarray(field, dtype=np.float64)
    while field.ndim > 2 and field.shape[0] == 1:
        field = field[0]
    if field.ndim != 2:
        raise InvalidDataError(f"the {what} must be one 2D image, got shape {field.shape}")
    if field.shape[0] < frame_shape[0] or field.shape[1] < frame_shape[1]:
        raise InvalidDataError(
            f"the {what} {field.shape} is smaller than the frames {frame_shape}; it cannot be applied"
        )
    if field.shape != tuple(frame_shape):
        provenance.add_step(
            f"crop_{what.replace(' ', '_')}",
            from_shape=list(field.shape),
            to_shape=list(frame_shape),
            origin=[0, 0],
        )
        field = field[: frame_shape[0], : frame_shape[1]]
    return field


def apply_dark_flat(
    intensity: np.ndarray,
    mask: np.ndarray,
    *,
    dark: np.ndarray | None,
    flat: np.ndarray | None,
    provenance: Provenance,
) -> tuple[np.ndarray, np.ndarray]:
    """Subtract the dark field and divide by the normalised flat field, frame by frame.

    Parameters
    ----------
    intensity : (Z, Y, X) or (Y, X) float32 counts
    mask : same shape, bool, True = excluded
    dark, flat : (Y', X') images with Y' >= Y, X' >= X (cropped from the origin), or None

    Pixels whose flat is <= 0, non-finite or below 10 % of its median, and pixels whose dark is
    far above the dark median (hot), are masked. Negative results are clipped to 0.
    """
    frame = intensity.shape[-2:]
    out = intensity.astype(np.float32, copy=True)
    mask = mask.copy()
    if dark is not None:
        dark = crop_to_frame(dark, frame, what="dark field", provenance=provenance)
        finite = np.isfinite(dark)
        med = float(np.median(dark[finite])) if finite.any() else 0.0
        mad = float(np.median(np.abs(dark[finite] - med))) if finite.any() else 0.0
        limit = med + max(DARK_MIN_EXCESS, 10 * 1.4826 * mad)
        hot = ~finite | (dark > limit)
        out -= np.where(hot, 0.0, dark).astype(np.float32)
        mask |= hot
        provenance.add_step(
            "subtract_dark", dark_median=med, hot_limit=limit, hot_pixels=int(hot.sum())
        )
        if hot.any():
            provenance.warnings.append(
                f"masked {int(hot.sum())} hot pixels of the dark field (dark > {limit:.3g})"
            )
    if flat is not None:
        flat = crop_to_frame(flat, frame, what="flat field", provenance=provenance)
        finite = np.isfinite(flat) & (flat > 0)
        if not finite.any():
            raise InvalidDataError("the flat field has no positive pixel; it cannot be applied")
        norm = float(np.median(flat[finite]))
        bad = ~finite | (flat < FLAT_MIN_FRACTION * norm)
        gain = np.where(bad, 1.0, flat / norm).astype(np.float32)
        out /= gain
        mask |= bad
        provenance.add_step(
            "divide_flat",
            flat_median=norm,
            masked_pixels=int(bad.sum()),
            min_fraction=FLAT_MIN_FRACTION,
        )
        if bad.any():
            provenance.warnings.append(
                f"masked {int(bad.sum())} pixels with flat field <= 0 or < {FLAT_MIN_FRACTION:g} x median"
            )
    negative = (out < 0) & ~mask
    if negative.any():
        provenance.warnings.append(
            f"clipped {int(negative.sum())} negative values to 0 after the dark subtraction"
        )
        provenance.add_step("clip_negative", count=int(negative.sum()))
    out[(out < 0) | mask] = 0.0
    return out, mask
