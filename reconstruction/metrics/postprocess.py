"""Post-processing of reconstructed objects: phase ramp, phase offset, centring, unwrapping,
displacement field."""

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


def displacement_field(obj: np.ndarray, g_norm_per_m: float, *, support: np.ndarray | None = None) -> np.ndarray:
    """Return the displacement along the Bragg vector, u = −φ / |G| (m), inside ``support`` (NaN outside).

    obj : 2D/3D complex Bragg CDI object; g_norm_per_m : |G| (1/m, see
    ``reconstruction.io.voxel.bragg_vector_norm_per_m``); support : bool, default 10 % of the
    maximum amplitude. The scattered amplitude is ∫ρ e^{−i q·r} and this project's far field
    is the forward FFT (``reconstruction.fourier``), so a crystal displaced by u(r) gives the
    object |ρ| exp(−i G·u): u = −φ / |G| (bcdi's ``invert_phase``; a test diffracts a 1D atomic
    lattice to check the sign). The phase is unwrapped inside the support and its
    amplitude-weighted mean set to 0: a rigid shift of the crystal is not measured. The twin
    (conjugate) solution gives −u; a linear phase ramp is a uniform strain and is kept (remove it
    first with ``remove_phase_ramp`` if it only reflects the peak's position).
    """
    if not (np.isfinite(g_norm_per_m) and g_norm_per_m > 0):
        raise ValueError(f"|G| must be a positive number of 1/m, got {g_norm_per_m}")
    sup = _support_or_threshold(obj, support)
    phase = unwrap_phase(obj, support=sup)
    amp = np.abs(obj)[sup]
    if amp.sum() > 0:
        phase = phase - np.sum(amp * phase[sup]) / amp.sum()
    return -phase / g_norm_per_m


def strain_along_g(
    obj: np.ndarray,
    g_norm_per_m: float,
    g_direction: np.ndarray,
    basis_m: np.ndarray,
    *,
    support: np.ndarray | None = None,
) -> np.ndarray:
    """Return the strain along the Bragg vector, ε = Ĝ·∇u (dimensionless), of a 3D object.

    obj : complex Bragg CDI object; g_norm_per_m : |G| (1/m); g_direction : G in the lab frame
    (any length, (x, y, z)); basis_m : the object's voxel steps (3×3, columns for array axes 0,
    1, 2, m, lab (x, y, z); ``reconstruction.geometry``: sheared for the data's grid, diagonal
    for a lab grid). u is ``displacement_field`` (unwrapped inside ``support``); its gradient is
    taken along the array axes by central differences and turned into Ĝ·∇u = (A⁻¹Ĝ)·∂u/∂n, so
    no resampling is needed. NaN outside the support and on its rim (a difference needs both
    neighbours inside). A linear phase ramp is a uniform strain: remove it first when it only
    reflects where the peak was centred.
    """
    if np.ndim(obj) != 3:
        raise ValueError("strain along G needs a 3D object")
    a = np.asarray(basis_m, dtype=np.float64)
    g = np.asarray(g_direction, dtype=np.float64)
    if a.shape != (3, 3) or g.shape != (3,) or not np.linalg.norm(g) > 0:
        raise ValueError("strain along G needs a 3×3 voxel basis and a non-zero G direction")
    u = displacement_field(obj, g_norm_per_m, support=support)
    coefficients = np.linalg.solve(a, g / np.linalg.norm(g))
    gradients = np.gradient(u)
    return sum(c * d for c, d in zip(coefficients, gradients))
