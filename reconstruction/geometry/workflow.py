"""The lab frame of a result file, as used by the CLI (``labframe``) and the web viewer."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from reconstruction.errors import InvalidDataError
from reconstruction.geometry.diffractometer import real_space_basis, reciprocal_basis
from reconstruction.geometry.from_metadata import scan_geometry
from reconstruction.geometry.lab_frame import LabFrameObject, to_lab_frame
from reconstruction.io.types import Metadata


def lab_basis_m(
    metadata: Metadata, shape: tuple[int, ...], *, diffractometer: str | None = None
) -> tuple[np.ndarray, dict[str, Any]]:
    """The object's voxel steps (3×3, columns, m, lab (x, y, z)) for data of ``shape`` with
    ``metadata``, and a JSON description of the geometry; ``InvalidDataError`` saying what is
    missing when the file does not fix it."""
    geometry = scan_geometry(metadata, tuple(shape), diffractometer=diffractometer)
    b = reciprocal_basis(geometry)
    a = real_space_basis(b, tuple(shape))
    unit = a / np.linalg.norm(a, axis=0)
    angles = {
        f"{i}{j}": math.degrees(math.acos(float(np.clip(abs(unit[:, i] @ unit[:, j]), 0, 1))))
        for i, j in ((0, 1), (0, 2), (1, 2))
    }
    q = geometry.scattering_vector_per_m()
    info = {
        "diffractometer": geometry.diffractometer.name,
        "diffractometer_title": geometry.diffractometer.title,
        "two_theta_deg": geometry.two_theta_deg(),
        "rocking_circle": geometry.rocking_circle,
        "rocking_step_deg": geometry.rocking_step_deg,
        "angles_deg": dict(geometry.angles_deg),
        "q_unit_lab": (q / np.linalg.norm(q)).tolist(),
        "voxel_steps_nm": (a * 1e9).T.tolist(),
        "axis_angles_deg": angles,
        "max_shear_deg": max(abs(90 - v) for v in angles.values()),
    }
    return a, info


def crystal_extent_nm(lab: LabFrameObject, threshold: float = 0.3) -> list[float] | None:
    """Size (nm) along lab z, y, x of the voxels above ``threshold`` of the maximum amplitude."""
    amplitude = np.abs(lab.obj)
    peak = float(amplitude.max())
    if peak <= 0:
        return None
    idx = np.nonzero(amplitude >= threshold * peak)
    return [float((i.max() - i.min() + 1) * lab.voxel_size_m * 1e9) for i in idx]


def lab_frame_file(
    result_path: str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    data_path: str | os.PathLike,
    diffractometer: str | None = None,
    voxel_size_m: float | None = None,
) -> dict[str, Any]:
    """Resample the object of a 3D result file onto an orthogonal lab grid using the geometry of
    the data it was phased from (``data_path``: the raw or prepared file); write ``out_path``
    (``.npz``: obj, support, amplitude, phase, voxel_size_m, basis_m, q_unit_lab and, where |G|
    is known, displacement_m and strain (ε along G); ``.vtk``: amplitude, phase, support,
    displacement_pm, strain_pct, spacing in nm)
    and return a JSON summary."""
    from reconstruction.geometry.lab_frame import lab_grid_basis
    from reconstruction.io import read_result
    from reconstruction.io.voxel import bragg_vector_norm_per_m
    from reconstruction.io.vtk import write_vtk
    from reconstruction.io.workflow import load_prepared_on_grid
    from reconstruction.metrics import displacement_field, strain_along_g

    suffix = Path(out_path).suffix.lower()
    if suffix not in (".npz", ".vtk"):
        raise InvalidDataError(f"the output must end in .npz or .vtk, got {Path(out_path).name!r}")
    record = read_result(str(result_path))
    obj = np.asarray(record.obj)
    if obj.ndim != 3:
        raise InvalidDataError("the lab frame applies to 3D Bragg results only")
    data = load_prepared_on_grid(data_path, shape=obj.shape, provenance=record.provenance)
    if tuple(data.shape) != obj.shape:
        raise InvalidDataError(f"the data's grid {data.shape} is not the result's {obj.shape}")
    basis, info = lab_basis_m(data.metadata, obj.shape, diffractometer=diffractometer)
    support = None if record.support is None else np.asarray(record.support, dtype=bool)
    lab = to_lab_frame(obj, basis, voxel_size_m=voxel_size_m, support=support)
    g_norm = bragg_vector_norm_per_m(data.metadata)
    region = lab.support if lab.support is not None else np.abs(lab.obj) > 0.1 * np.abs(lab.obj).max()
    displacement = strain = None
    if g_norm is not None and region.any():
        displacement = displacement_field(lab.obj, g_norm, support=region).astype(np.float32)
        strain = strain_along_g(lab.obj, g_norm, np.array(info["q_unit_lab"]), lab_grid_basis(lab.voxel_size_m),
                                support=region).astype(np.float32)  # fmt: skip
    if suffix == ".npz":
        arrays = {"obj": lab.obj, "amplitude": np.abs(lab.obj).astype(np.float32),
                  "phase": np.angle(lab.obj).astype(np.float32), "voxel_size_m": np.array(lab.voxel_size_m),
                  "basis_m": basis, "q_unit_lab": np.array(info["q_unit_lab"]), "axes": np.array(lab.axes)}  # fmt: skip
        if lab.support is not None:
            arrays["support"] = lab.support
        if displacement is not None:
            arrays["displacement_m"] = displacement
            arrays["strain"] = strain
        from reconstruction.io.atomic import atomic_path

        with atomic_path(out_path) as tmp, open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)
    else:
        fields = {"amplitude": np.abs(lab.obj), "phase": np.angle(lab.obj)}
        if lab.support is not None:
            fields["support"] = lab.support.astype(np.float32)
        if displacement is not None:
            fields["displacement_pm"] = displacement * 1e12
            fields["strain_pct"] = strain * 100
        write_vtk(out_path, fields, spacing=lab.voxel_size_m * 1e9, title=f"{Path(result_path).name} in the lab frame (nm)")
    return {
        "result_path": str(result_path),
        "out_path": str(out_path),
        "shape": list(lab.obj.shape),
        "axes": list(lab.axes),
        "voxel_size_nm": lab.voxel_size_m * 1e9,
        "crystal_extent_nm": crystal_extent_nm(lab),
        "g_norm_per_nm": None if g_norm is None else g_norm * 1e-9,
        **info,
    }


__all__ = ["crystal_extent_nm", "lab_basis_m", "lab_frame_file"]
