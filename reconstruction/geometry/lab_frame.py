"""Resample a Bragg CDI reconstruction from the data's sheared voxel grid onto an orthogonal
laboratory grid, so that its shape, facets and angles are the crystal's own.

The object phased from a rocking scan sits on the dual of the data's q grid: voxel ``n`` (index
relative to the box centre ``N // 2``) is at ``r = A n`` with ``A = real_space_basis(...)``. Each
point of the orthogonal lab grid is traced back to fractional indices ``A⁻¹ r`` and the complex
object is interpolated there (trilinear, zero outside the box).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from reconstruction.errors import InvalidDataError

LAB_AXES = ("z (along the beam)", "y (up)", "x")
SLAB_POINTS = 1 << 21


@dataclass
class LabFrameObject:
    """An object on an orthogonal lab grid: array axes (z, y, x) of the lab frame, centred."""

    obj: np.ndarray  # complex64
    voxel_size_m: float
    basis_m: np.ndarray  # the source object's voxel steps (columns, m, lab frame (x, y, z))
    support: np.ndarray | None = None
    axes: tuple[str, ...] = LAB_AXES


def lab_grid_basis(voxel_size_m: float) -> np.ndarray:
    """Voxel steps (3×3, columns for array axes z, y, x; m, lab (x, y, z)) of a lab grid."""
    return voxel_size_m * np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])


def lab_grid_points(
    shape: tuple[int, int, int], voxel_size_m: float, *, z_range: tuple[int, int] | None = None
) -> np.ndarray:
    """(3, Z·Y·X) lab positions (m, as x, y, z rows) of an orthogonal grid with array axes
    (z, y, x), centred on index N // 2; ``z_range`` (start, stop): only those z planes."""
    iz, iy, ix = (np.arange(n, dtype=np.float64) - n // 2 for n in shape)
    if z_range is not None:
        iz = iz[z_range[0]:z_range[1]]
    z, y, x = np.meshgrid(iz, iy, ix, indexing="ij")
    return voxel_size_m * np.stack([x.ravel(), y.ravel(), z.ravel()])


def to_lab_frame(
    obj: np.ndarray,
    basis_m: np.ndarray,
    *,
    voxel_size_m: float | None = None,
    shape: tuple[int, int, int] | None = None,
    support: np.ndarray | None = None,
) -> LabFrameObject:
    """Resample the complex 3D ``obj`` (voxel steps ``basis_m``: columns, m, lab (x, y, z)) onto
    an orthogonal lab grid of ``shape`` (default the object's) with cubic voxels of
    ``voxel_size_m`` (default the smallest plane spacing of the source grid, so no axis is
    sampled more coarsely than the data allow). Trilinear on the real and imaginary parts;
    ``support`` (bool, same grid) is carried along (a lab voxel is in it when the interpolated
    indicator is ≥ 0.5)."""
    obj = np.asarray(obj)
    a = np.asarray(basis_m, dtype=np.float64)
    if obj.ndim != 3 or a.shape != (3, 3):
        raise InvalidDataError("lab-frame resampling needs a 3D object and a 3×3 voxel basis")
    if not np.all(np.isfinite(a)) or abs(np.linalg.det(a)) <= 0:
        raise InvalidDataError("the voxel basis is degenerate or not finite")
    if voxel_size_m is None:
        # plane spacing along j = |det A| / |a_k × a_l|: the thinnest slab of one voxel
        cross = [np.linalg.norm(np.cross(a[:, (j + 1) % 3], a[:, (j + 2) % 3])) for j in range(3)]
        voxel_size_m = abs(float(np.linalg.det(a))) / max(cross)
    if not (math.isfinite(voxel_size_m) and voxel_size_m > 0):
        raise InvalidDataError(f"voxel size must be > 0 m, got {voxel_size_m}")
    out_shape = tuple(int(n) for n in (shape or obj.shape))
    if len(out_shape) != 3 or min(out_shape) < 1:
        raise InvalidDataError(f"the lab grid must be 3D, got shape {out_shape}")
    centre = np.array([n // 2 for n in obj.shape], dtype=np.float64)[:, None]
    inverse = np.linalg.inv(a)
    volumes = [obj.real.astype(np.float32), obj.imag.astype(np.float32)]
    if support is not None:
        volumes.append(np.asarray(support, dtype=np.float32))
    outputs = [np.empty(out_shape, np.float32) for _ in volumes]
    # slabs of lab z-planes keep the coordinate arrays small (≈ 2 M points at a time)
    step = max(1, SLAB_POINTS // (out_shape[1] * out_shape[2]))
    for z0 in range(0, out_shape[0], step):
        z1 = min(out_shape[0], z0 + step)
        points = lab_grid_points(out_shape, voxel_size_m, z_range=(z0, z1))
        coords = inverse @ points + centre
        for values, out in zip(volumes, outputs):
            out[z0:z1] = ndimage.map_coordinates(
                values, coords, order=1, mode="constant", cval=0.0, prefilter=False
            ).reshape((z1 - z0, *out_shape[1:]))
    lab = (outputs[0] + 1j * outputs[1]).astype(np.complex64)
    lab_support = outputs[2] >= 0.5 if support is not None else None
    return LabFrameObject(lab, float(voxel_size_m), a, lab_support)


__all__ = ["LAB_AXES", "LabFrameObject", "lab_grid_basis", "lab_grid_points", "to_lab_frame"]
