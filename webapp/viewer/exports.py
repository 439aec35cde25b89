"""What the result page's downloads hold: the NPZ arrays and the VTK file of a result, from the
library's export fields (``reconstruction.geometry.workflow.bragg_fields``); no Django here."""

from __future__ import annotations

from typing import Any

import numpy as np

from webapp.viewer.frames import shown_object
from webapp.viewer.units import GridScales


def result_arrays(record: Any, grid: GridScales) -> dict[str, np.ndarray]:
    """The NPZ download: ``obj`` (complex64, centred), ``support``, ``algorithm``,
    ``voxel_size_m`` (m per axis, NaN where unknown); where the data give |G|, ``g_norm_per_m``
    and ``displacement_m``; where they give the diffractometer geometry, ``lab_obj``,
    ``lab_support``, ``lab_voxel_size_m``, ``lab_basis_m`` (the data grid's voxel steps, columns,
    lab x, y, z), ``g_direction_lab`` and, with |G|, ``strain`` (on the data's grid)."""
    from reconstruction.geometry.workflow import bragg_fields

    obj = np.asarray(record.obj, dtype=np.complex64)
    support = np.asarray(record.support, dtype=bool) if record.support is not None else np.ones(obj.shape, bool)
    voxel = grid.voxel_size_m or (None,) * obj.ndim
    arrays: dict[str, np.ndarray] = {
        "obj": obj, "support": support, "algorithm": np.array(record.algorithm or ""),
        "voxel_size_m": np.array([np.nan if v is None else v for v in voxel]),
    }  # fmt: skip
    data_view = shown_object(obj, support, grid, lab=False)
    fields = bragg_fields(obj, support, g_norm_per_m=grid.g_norm_per_m, strain_geometry=data_view.strain_geometry)
    if grid.g_norm_per_m is not None:
        arrays["g_norm_per_m"] = np.array(grid.g_norm_per_m)
    arrays.update({k: fields[k] for k in ("displacement_m", "strain") if k in fields})
    if grid.lab_basis_m is not None:
        lab = shown_object(obj, support, grid, lab=True)
        arrays.update(lab_obj=lab.obj, lab_support=lab.support, lab_voxel_size_m=np.array(lab.voxel_size_m[0]),
                      lab_basis_m=np.asarray(grid.lab_basis_m), g_direction_lab=lab.strain_geometry[1])  # fmt: skip
    return arrays


def result_vtk(record: Any, grid: GridScales, *, title: str) -> bytes:
    """The VTK download (ParaView): amplitude (max 1), phase (rad), support and, where the data
    allow, displacement_pm and strain_pct; on the orthogonal lab grid (nm) when the geometry is
    known, else on the data's grid (nm per axis where known, else voxels: a Bragg scan's shear
    is then not corrected). ``title`` gets the grid and unit appended."""
    from reconstruction.geometry.workflow import bragg_fields, vtk_fields
    from reconstruction.io.vtk import vtk_bytes

    obj = np.asarray(record.obj, dtype=np.complex64)
    support = np.asarray(record.support, dtype=bool) if record.support is not None else np.ones(obj.shape, bool)
    view = shown_object(obj, support, grid, lab=grid.lab_basis_m is not None)
    fields = bragg_fields(view.obj, view.support, g_norm_per_m=grid.g_norm_per_m, strain_geometry=view.strain_geometry)
    sizes = view.voxel_size_m or (None,) * obj.ndim
    known = all(v is not None for v in sizes)
    spacing: float | tuple[float, ...] = tuple(v * 1e9 for v in sizes) if known else 1.0
    if obj.ndim == 2 and known:
        spacing = (1.0, *spacing)
    frame = "lab frame, nm" if view.frame["shown"] == "lab" else "data grid, nm" if known else "data grid, voxels"
    return vtk_bytes(vtk_fields(fields), spacing=spacing, title=f"{title} ({frame})")
