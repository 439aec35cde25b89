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


SHOWN_ABOVE = 0.1  # displacement and strain where the amplitude reaches 10 % of its maximum


def bragg_fields(
    obj: np.ndarray,
    support: np.ndarray | None,
    *,
    g_norm_per_m: float | None = None,
    strain_geometry: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Scalar fields of a Bragg object for export (float32, the object's grid): ``amplitude``
    (max 1), ``phase`` (rad), ``support`` (0/1) and, with |G|, ``displacement_m`` (u along G,
    ``displacement_field``) and, with ``strain_geometry`` (voxel basis of this grid in m, G
    direction in the lab), ``strain`` (ε along G, ``strain_along_g``); both NaN outside the
    support where the amplitude is below ``SHOWN_ABOVE`` of its maximum (as the viewer shows)."""
    from reconstruction.metrics import displacement_field, strain_along_g

    amplitude = np.abs(obj)
    top = float(amplitude.max()) or 1.0
    support = np.ones(obj.shape, bool) if support is None else np.asarray(support, bool)
    region = support & (amplitude >= SHOWN_ABOVE * top)
    fields = {"amplitude": (amplitude / top).astype(np.float32), "phase": np.angle(obj).astype(np.float32),
              "support": support.astype(np.float32)}  # fmt: skip
    if g_norm_per_m is not None and region.any():
        fields["displacement_m"] = displacement_field(obj, g_norm_per_m, support=region).astype(np.float32)
        if strain_geometry is not None and obj.ndim == 3:
            basis, direction = strain_geometry
            fields["strain"] = strain_along_g(obj, g_norm_per_m, direction, basis, support=region).astype(np.float32)
    return fields


def vtk_fields(fields: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``bragg_fields`` in a VTK file's units: displacement in pm, strain in %."""
    scale = {"displacement_m": ("displacement_pm", 1e12), "strain": ("strain_pct", 100.0)}
    return {scale.get(k, (k, 1.0))[0]: v * scale.get(k, (k, 1.0))[1] for k, v in fields.items()}


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
    (``.npz``: obj, voxel_size_m, basis_m, q_unit_lab, axes and ``bragg_fields``; ``.vtk``:
    the same fields in pm and %, spacing in nm) and return a JSON summary."""
    from reconstruction.geometry.lab_frame import lab_grid_basis
    from reconstruction.io import read_result
    from reconstruction.io.atomic import atomic_path
    from reconstruction.io.voxel import bragg_vector_norm_per_m
    from reconstruction.io.vtk import write_vtk
    from reconstruction.io.workflow import load_prepared_on_grid

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
    fields = bragg_fields(lab.obj, lab.support, g_norm_per_m=g_norm,
                          strain_geometry=(lab_grid_basis(lab.voxel_size_m), np.array(info["q_unit_lab"])))  # fmt: skip
    if suffix == ".npz":
        arrays = {"obj": lab.obj, **fields, "voxel_size_m": np.array(lab.voxel_size_m), "basis_m": basis,
                  "q_unit_lab": np.array(info["q_unit_lab"]), "axes": np.array(lab.axes)}  # fmt: skip
        arrays["support"] = fields["support"] > 0.5
        with atomic_path(out_path) as tmp, open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)
    else:
        write_vtk(out_path, vtk_fields(fields), spacing=lab.voxel_size_m * 1e9,
                  title=f"{Path(result_path).name} in the lab frame (nm)")  # fmt: skip
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


__all__ = ["bragg_fields", "crystal_extent_nm", "lab_basis_m", "lab_frame_file", "vtk_fields"]
