"""Real-space voxel size of a reconstruction from the acquisition metadata of its data.

An object phased from an ``(…, N_y, N_x)`` diffraction array has, along each detector axis,
the voxel size ``λ·D / (N·p)`` (wavelength λ, sample-detector distance D, detector pixel p
after binning). Along the rocking axis of a 3D Bragg scan (axis 0) the reciprocal-space step
is ``|Q|·Δω = (4π sin θ_B / λ)·Δω``, so the voxel size is ``λ / (2 N Δω sin θ_B)``; it needs
the Bragg angle θ_B, which raw files seldom state (then it is unknown). Where the file names a
known diffractometer and its angles (``reconstruction.geometry``), the rocking axis gets the
exact spacing of its voxel planes instead, 2π / (N |Δq|), which the formula overestimates when
the rocking axis is not perpendicular to Q (APS 34-ID-C's gamma arm). Either way these are
plane spacings: the grid itself stays sheared (``reconstruction.geometry.to_lab_frame``).
Simulated data carry their (isotropic) voxel size in ``metadata.extra["voxel_size_m"]``.

The same metadata give the length of the Bragg vector, ``|G| = 4π sin θ_B / λ``, which turns a
Bragg CDI phase into the displacement along G (``reconstruction.metrics.displacement_field``).
"""

from __future__ import annotations

import math

import numpy as np

from reconstruction.errors import InvalidDataError
from reconstruction.io.types import Metadata


def _positive(value: object) -> float | None:
    """``value`` as a finite float > 0, else None."""
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) and out > 0 else None


def voxel_size_m(
    metadata: Metadata, shape: tuple[int, ...], *, bragg_angle_deg: float | None = None
) -> tuple[float | None, ...]:
    """Return the real-space voxel size (m) per axis of an object on a ``shape`` grid.

    Parameters
    ----------
    metadata : acquisition metadata of the (prepared) diffraction data on that grid, SI units.
    shape : (Z, Y, X) or (Y, X), the grid of the diffraction array (= the object's grid).
    bragg_angle_deg : θ_B (degrees, half the scattering angle) for the rocking axis of a 3D
        scan; default ``metadata.extra["bragg_angle_deg"]`` when present.

    Returns
    -------
    One value per axis (axis 0 first), None where the metadata does not determine it:
    detector axes ``λ·D / (N·p)``; the rocking axis ``λ / (2 N Δω sin θ_B)`` with Δω the mean
    rocking step (rad); all axes ``metadata.extra["voxel_size_m"]`` for simulated data.
    """
    shape = tuple(int(n) for n in shape)
    if len(shape) not in (2, 3) or min(shape) < 1:
        raise InvalidDataError(f"expected a 2D or 3D grid shape, got {shape}")
    extra = metadata.extra or {}
    simulated = _positive(extra.get("voxel_size_m"))
    if simulated is not None:
        return tuple(simulated for _ in shape)
    wavelength, distance = _positive(metadata.wavelength_m), _positive(metadata.distance_m)
    pixels = (_positive(metadata.y_pixel_size_m), _positive(metadata.x_pixel_size_m))
    detector = tuple(
        wavelength * distance / (n * p) if wavelength and distance and p else None
        for n, p in zip(shape[-2:], pixels)
    )
    if len(shape) == 2:
        return detector
    if bragg_angle_deg is None:
        exact = _geometry_rocking_spacing_m(metadata, shape)
        if exact is not None:
            return (exact, *detector)
    return (_rocking_voxel_m(metadata, shape[0], wavelength, bragg_angle_deg), *detector)


def _geometry_rocking_spacing_m(metadata: Metadata, shape: tuple[int, ...]) -> float | None:
    """Plane spacing (m) along the rocking axis from the diffractometer geometry, or None when
    the file does not give a known diffractometer with its angles."""
    from reconstruction.geometry import plane_spacing_m, reciprocal_basis, scan_geometry

    try:
        geometry = scan_geometry(metadata, shape)
    except InvalidDataError:
        return None
    return float(plane_spacing_m(reciprocal_basis(geometry), shape)[0])


def _rocking_voxel_m(
    metadata: Metadata, n: int, wavelength: float | None, bragg_angle_deg: float | None
) -> float | None:
    """λ / (2 N Δω sin θ_B) (m), or None without wavelength, rocking angles or Bragg angle."""
    theta = _positive(bragg_angle_deg if bragg_angle_deg is not None else (metadata.extra or {}).get("bragg_angle_deg"))
    angles = metadata.rocking_angles_deg
    if wavelength is None or theta is None or angles is None or np.size(angles) < 2:
        return None
    step = _positive(abs(float(np.mean(np.diff(np.asarray(angles, dtype=np.float64))))))
    if step is None:
        return None
    return wavelength / (2 * n * math.radians(step) * math.sin(math.radians(theta)))


def bragg_angle_from_detector_arms(arm_a_deg: float, arm_b_deg: float) -> float | None:
    """Bragg angle θ_B (deg) of a detector on two perpendicular arms (e.g. APS 34-ID-C's delta
    and gamma, ESRF ID01's nu and delta): cos 2θ = cos a · cos b; None outside 0 < 2θ < 180°."""
    cos_2theta = math.cos(math.radians(arm_a_deg)) * math.cos(math.radians(arm_b_deg))
    two_theta = math.degrees(math.acos(max(-1.0, min(1.0, cos_2theta))))
    return two_theta / 2.0 if 0.0 < two_theta < 180.0 else None


def bragg_vector_norm_per_m(metadata: Metadata, *, bragg_angle_deg: float | None = None) -> float | None:
    """Return |G| = 4π sin θ_B / λ (1/m) of the measured reflection, or None when the wavelength
    or the Bragg angle (``bragg_angle_deg``, default ``metadata.extra["bragg_angle_deg"]``) is
    unknown. Its lattice spacing is d = 2π / |G|."""
    wavelength = _positive(metadata.wavelength_m)
    theta = _positive(bragg_angle_deg if bragg_angle_deg is not None else (metadata.extra or {}).get("bragg_angle_deg"))
    if wavelength is None or theta is None or theta >= 90:
        return None
    return 4 * math.pi * math.sin(math.radians(theta)) / wavelength


__all__ = ["bragg_angle_from_detector_arms", "bragg_vector_norm_per_m", "voxel_size_m"]

