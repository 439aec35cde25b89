"""Align one complex object onto another: shift, twin (conjugate flip), phase ramp, global phase.

A phasing solution is defined only up to a translation, the twin image conj(obj(-r)), a global
phase and (since the pattern's centre is uncertain) a linear phase ramp; these functions remove
those ambiguities before objects are compared or averaged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from skimage.registration import phase_cross_correlation

from reconstruction.errors import InvalidDataError
from reconstruction.fourier import fft_nd


@dataclass
class Alignment:
    """How ``moving`` was mapped onto ``reference``: shift (px), twin, ramp (rad/px), scale."""

    shift: tuple[float, ...]
    twin: bool
    ramp: tuple[float, ...]
    scale: complex


def twin_of(obj: np.ndarray) -> np.ndarray:
    """Return the twin image conj(obj(-r)) of a centred object (inversion about index N // 2)."""
    out = np.conj(np.flip(obj))
    for axis, n in enumerate(obj.shape):
        if n % 2 == 0:  # index i -> N - i keeps N // 2 in place
            out = np.roll(out, 1, axis=axis)
    return out


def fourier_shift(obj: np.ndarray, shift) -> np.ndarray:
    """Shift an array circularly by ``shift`` pixels per axis (sub-pixel, via Fourier phases)."""
    shift = np.asarray(shift, dtype=float)
    if np.allclose(shift, np.round(shift)):
        return np.roll(obj, tuple(int(round(s)) for s in shift), axis=tuple(range(obj.ndim)))
    spectrum = fft_nd(obj, norm="backward")
    phase = np.zeros(obj.shape)
    for axis, (n, s) in enumerate(zip(obj.shape, shift)):
        shape = [1] * obj.ndim
        shape[axis] = n
        phase = phase + (np.fft.fftfreq(n) * s).reshape(shape)
    out = fft_nd(spectrum * np.exp(-2j * np.pi * phase), inverse=True, norm="backward")
    return out if np.iscomplexobj(obj) else out.real


def _grid(shape: tuple[int, ...]) -> list[np.ndarray]:
    return [g - n // 2 for g, n in zip(np.indices(shape, dtype=float), shape)]


def fit_phase_ramp(
    obj: np.ndarray, reference: np.ndarray, *, weight: np.ndarray | None = None
) -> tuple[float, ...]:
    """Linear phase ramp g (rad/pixel per axis) such that obj * exp(-i g.r) best matches reference.

    Coarse estimate from the peak of the Fourier transform of obj * conj(reference), refined by a
    weighted least-squares fit of the residual phase (weights |obj||reference|, or ``weight``);
    a refinement step is kept only if it raises the coherent sum |sum(obj conj(ref) e^{-i g.r})|,
    since the wrapped residual of an object with a large phase spread (a 2D logo, a strained
    crystal) can pull the fit off the ramp.
    """
    prod = obj * np.conj(reference)
    if weight is not None:
        prod = prod * weight
    spectrum = np.abs(fft_nd(prod, norm="backward"))
    peak = np.unravel_index(np.argmax(spectrum), spectrum.shape)
    ramp = np.array(
        [2 * np.pi * np.fft.fftfreq(n)[p] for n, p in zip(obj.shape, peak)], dtype=float
    )
    grid = _grid(obj.shape)
    w = np.abs(prod).ravel()
    if w.sum() == 0:
        return tuple(0.0 for _ in obj.shape)
    design = np.stack([np.ones(obj.size)] + [g.ravel() for g in grid], axis=1)
    sw = np.sqrt(w)

    def deramped(values: np.ndarray) -> np.ndarray:
        return prod * np.exp(-1j * sum(r * g for r, g in zip(values, grid)))

    coherence = abs(np.sum(deramped(ramp)))
    # sub-bin position of the spectrum's peak: a parabola through it and its two neighbours
    refined = ramp.copy()
    for axis, (n, p) in enumerate(zip(obj.shape, peak)):
        around = [
            spectrum[tuple((p + d) % n if a == axis else q for a, q in enumerate(peak))]
            for d in (-1, 0, 1)
        ]
        curvature = around[0] - 2 * around[1] + around[2]
        if curvature < 0:
            refined[axis] += 2 * np.pi / n * 0.5 * (around[0] - around[2]) / curvature
    refined_coherence = abs(np.sum(deramped(refined)))
    if refined_coherence > coherence:
        ramp, coherence = refined, refined_coherence
    for _ in range(3):
        residual = np.angle(deramped(ramp))
        coef, *_ = np.linalg.lstsq(design * sw[:, None], residual.ravel() * sw, rcond=None)
        candidate = ramp + coef[1:]
        candidate_coherence = abs(np.sum(deramped(candidate)))
        if candidate_coherence <= coherence:
            break
        ramp, coherence = candidate, candidate_coherence
    return tuple(float(r) for r in ramp)


def apply_phase_ramp(obj: np.ndarray, ramp) -> np.ndarray:
    """Return obj * exp(-i ramp . r), r measured from the box centre (index N // 2), in pixels."""
    grid = _grid(obj.shape)
    return obj * np.exp(-1j * sum(r * g for r, g in zip(ramp, grid)))


def _align_one(
    moving: np.ndarray, reference: np.ndarray, *, ramp: bool
) -> tuple[np.ndarray, Alignment]:
    shift, _, _ = phase_cross_correlation(
        np.abs(reference), np.abs(moving), upsample_factor=20, normalization=None
    )
    out = fourier_shift(moving, shift)
    g: tuple[float, ...] = tuple(0.0 for _ in moving.shape)
    if ramp:
        g = fit_phase_ramp(out, reference)
        out = apply_phase_ramp(out, g)
    norm = np.vdot(out, out)
    scale = complex(np.vdot(out, reference) / norm) if norm else 1.0 + 0j
    out = out * scale
    return out, Alignment(tuple(float(s) for s in shift), False, g, scale)


def align_to(
    moving: np.ndarray, reference: np.ndarray, *, twin: bool = True, ramp: bool = True
) -> tuple[np.ndarray, Alignment]:
    """Align ``moving`` onto ``reference`` (same shape, complex), return (aligned, Alignment).

    Tries the object and (if ``twin``) its twin; for each: sub-pixel shift by cross-correlation
    of amplitudes (1/20 pixel), phase ramp fit (if ``ramp``), then the complex scale (global
    phase and amplitude) by least squares. Keeps the candidate closest to ``reference``.
    """
    moving = np.asarray(moving, dtype=np.complex128)
    reference = np.asarray(reference, dtype=np.complex128)
    candidates = [(moving, False)] + ([(twin_of(moving), True)] if twin else [])
    best = None
    for candidate, is_twin in candidates:
        out, how = _align_one(candidate, reference, ramp=ramp)
        err = float(np.linalg.norm(out - reference))
        if best is None or err < best[0]:
            how.twin = is_twin
            best = (err, out, how)
    return best[1], best[2]


def align_to_reference(
    obj: np.ndarray, reference: np.ndarray, *, support: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """Align ``obj`` onto ``reference`` (see ``align_to``) and say what was done.

    Parameters
    ----------
    obj, reference : (Z, Y, X) or (Y, X) complex, same shape, centred.
    support : bool, same shape, the support of ``obj``; it is moved with the object.

    Returns
    -------
    ``(aligned, aligned_support, info)``: aligned complex128 object; its support (bool, or
    None); info with ``shift_px`` (per axis, axis 0 first, the shift applied to ``obj``),
    ``twin`` (the conjugate-flipped twin was used), ``phase_offset_rad`` (global phase added),
    ``ramp_rad_per_px`` (phase ramp removed, per axis), ``scale`` (amplitude factor) and
    ``rel_error`` ||aligned - reference|| / ||reference||.
    """
    obj, reference = np.asarray(obj), np.asarray(reference)
    if obj.shape != reference.shape:
        raise InvalidDataError(f"cannot align an object of shape {obj.shape} onto one of shape {reference.shape}")
    aligned, how = align_to(obj, reference)
    moved = None
    if support is not None:
        mask = np.asarray(support, dtype=np.float64)
        if mask.shape != obj.shape:
            raise InvalidDataError(f"the support has shape {mask.shape} but the object has {obj.shape}")
        if how.twin:
            mask = twin_of(mask).real
        moved = np.real(fourier_shift(mask, how.shift)) > 0.5
    ref_norm = float(np.linalg.norm(reference))
    info = {
        "shift_px": [float(s) for s in how.shift],
        "twin": bool(how.twin),
        "phase_offset_rad": float(np.angle(how.scale)),
        "ramp_rad_per_px": [float(r) for r in how.ramp],
        "scale": float(abs(how.scale)),
        "rel_error": float(np.linalg.norm(aligned - reference) / ref_norm) if ref_norm else float("nan"),
    }
    return aligned, moved, info
