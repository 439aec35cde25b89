"""Displacement model of the simulated crystals: the phase Q . u(r) of a strained fcc crystal.

``r`` is the position (voxels) from the crystal's centroid, ``Q`` the Bragg vector (unit
direction ``q``, ``|Q| = 2 pi / d``). With voxels of size ``v``, a displacement of ``u`` voxels
gives the phase ``k q . u`` with ``k = 2 pi v / d`` (rad per voxel of displacement). ``u`` is
the sum of

1. homogeneous strain ``u = eps . r`` (``eps`` symmetric: compression, tension, shear), so
   ``Q . u = k (eps q) . r``: a phase ramp, i.e. a shifted Bragg peak;
2. surface relaxation ``u = alpha r |r| / R``: radial strain growing linearly from 0 at the
   centre to about ``2 alpha`` at the surface (``R`` = half the crystal's extent);
3. a smooth random field: the component of ``u`` along ``q`` is ``a f(r)`` with ``f`` a
   Gaussian-correlated field (max |f| = 1 inside) of correlation length ``L``; ``a = eta L``
   gives strains of order ``eta``;
4. point defects (vacancy/interstitial-like): ``u = A r_hat / r^2`` around a point ``c``, capped
   inside a core of radius ``CORE_RADIUS`` voxels; ``A`` is given by the phase ``phi_c`` it
   reaches on the core's surface along ``q``: ``Q . u = phi_c r_c^2 (q . r_hat) / r^2``;
5. dislocation-like vortices: around a line through ``c`` with direction ``t``, a dislocation's
   displacement winds by its Burgers vector ``b``; for a reflection with ``Q . b = 2 pi m``
   the phase winds by ``2 pi m``: ``Q . u = m atan2(w . e2, w . e1)``, ``w`` the offset from
   ``c`` and ``(e1, e2, t)`` orthonormal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

CORE_RADIUS = 1.5


@dataclass(frozen=True)
class PointDefect:
    """A point defect at ``position_vox`` (lab offset from the centre, (3,)) with core phase (rad)."""

    position_vox: tuple[float, float, float]
    core_phase: float


@dataclass(frozen=True)
class Dislocation:
    """A phase vortex around the line through ``position_vox`` along unit ``line``; winding m."""

    position_vox: tuple[float, float, float]
    line: tuple[float, float, float]
    winding: float


@dataclass(frozen=True)
class Displacement:
    """The parameters of u(r) (see the module docstring); lengths in voxels."""

    k_rad_per_vox: float
    q: tuple[float, float, float]
    strain: tuple[tuple[float, float, float], ...] = ((0.0,) * 3,) * 3
    relaxation: float = 0.0
    radius_vox: float = 1.0
    random_amplitude_vox: float = 0.0
    defects: tuple[PointDefect, ...] = field(default_factory=tuple)
    dislocations: tuple[Dislocation, ...] = field(default_factory=tuple)


def displacement_phase(
    lab: tuple[np.ndarray, np.ndarray, np.ndarray],
    model: Displacement,
    *,
    random_field: np.ndarray | None = None,
) -> np.ndarray:
    """Return the unwrapped phase ``Q . u`` (rad) at lab offsets ``lab`` (voxels, broadcastable).

    ``random_field`` is ``f`` of term 3 on the same grid (max |f| = 1 inside), or None.
    """
    z, y, x = lab
    k = model.k_rad_per_vox
    q = np.asarray(model.q, dtype=float)
    eq = np.asarray(model.strain, dtype=float) @ q
    phase = k * (eq[0] * z + eq[1] * y + eq[2] * x)
    if model.relaxation:
        radius = np.sqrt(z * z + y * y + x * x)
        q_dot_r = q[0] * z + q[1] * y + q[2] * x
        phase = phase + k * model.relaxation * q_dot_r * radius / model.radius_vox
    if random_field is not None and model.random_amplitude_vox:
        phase = phase + k * model.random_amplitude_vox * random_field
    for defect in model.defects:
        dz, dy, dx = (
            z - defect.position_vox[0],
            y - defect.position_vox[1],
            x - defect.position_vox[2],
        )
        r2 = np.maximum(dz * dz + dy * dy + dx * dx, CORE_RADIUS**2)
        q_dot_rhat = (q[0] * dz + q[1] * dy + q[2] * dx) / np.sqrt(r2)
        phase = phase + defect.core_phase * CORE_RADIUS**2 * q_dot_rhat / r2
    for line in model.dislocations:
        t = np.asarray(line.line, dtype=float)
        e1 = np.cross(t, [1.0, 0.0, 0.0] if abs(t[0]) < 0.9 else [0.0, 1.0, 0.0])
        e1 /= np.linalg.norm(e1)
        e2 = np.cross(t, e1)
        dz, dy, dx = (z - line.position_vox[0], y - line.position_vox[1], x - line.position_vox[2])
        along_1 = e1[0] * dz + e1[1] * dy + e1[2] * dx
        along_2 = e2[0] * dz + e2[1] * dy + e2[2] * dx
        phase = phase + line.winding * np.arctan2(along_2, along_1)
    return phase


def phase_per_voxel(*, strain_max: float, phase_at_max_strain: float, extent_vox: float) -> float:
    """Return k (rad per voxel of displacement) so that ``strain_max`` over ``extent_vox`` gives
    ``phase_at_max_strain`` rad; the voxel size is then ``k d / (2 pi)`` metres."""
    if strain_max <= 0 or extent_vox <= 0:
        return 0.0
    return phase_at_max_strain / (strain_max * extent_vox)


def voxel_size_m(k_rad_per_vox: float, d_spacing_m: float) -> float:
    """Return the voxel size (m) for which 1 voxel of displacement gives ``k`` rad at spacing d."""
    return k_rad_per_vox * d_spacing_m / (2 * math.pi)
