"""Which grid a result page draws the object on: the data's (rocking frame, detector row,
column: sheared for Bragg scans) or, where the diffractometer geometry is known, an orthogonal
lab grid (``reconstruction.geometry.to_lab_frame``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from webapp.viewer.units import GridScales


@dataclass
class ObjectView:
    """An object as a page draws it: the array, its support, voxel size (m per axis), the
    ``frame_info`` entry and, where the geometry is known, (voxel basis of this grid in m,
    G direction in the lab) for the strain along G."""

    obj: np.ndarray
    support: np.ndarray | None
    voxel_size_m: tuple[float | None, ...] | None
    frame: dict[str, Any]
    strain_geometry: tuple[np.ndarray, np.ndarray] | None = None


def frame_info(grid: GridScales, *, shown: bool) -> dict[str, Any]:
    """The ``frame`` entry of an object bundle: ``available``, ``shown`` ("lab" or "data") and a
    ``note`` for the page."""
    info = grid.lab_info
    if grid.lab_basis_m is None or info is None:
        return {"available": False, "shown": "data", "note": grid.lab_note}
    geometry = (f"{info['diffractometer_title']}, 2θ = {info['two_theta_deg']:.2f}°, "
                f"data grid up to {info['max_shear_deg']:.1f}° from orthogonal")  # fmt: skip
    if shown:
        g = ", ".join(f"{v:+.2f}" for v in info["q_unit_lab"])
        return {"available": True, "shown": "lab",
                "note": f"z along the beam, y up; G along ({g}) in (x, y, z); {geometry}"}  # fmt: skip
    return {"available": True, "shown": "data", "note": geometry}


def shown_object(obj: np.ndarray, support: np.ndarray | None, grid: GridScales, *, lab: bool) -> ObjectView:
    """The object as the page draws it: on the lab grid when ``lab`` is asked and possible, else
    as phased; with the strain geometry of that grid when the diffractometer is known."""
    from reconstruction.geometry import lab_grid_basis, to_lab_frame

    frame = frame_info(grid, shown=lab)
    direction = None if grid.lab_info is None else np.asarray(grid.lab_info["q_unit_lab"])
    if frame["shown"] != "lab":
        geometry = None if direction is None or np.ndim(obj) != 3 else (np.asarray(grid.lab_basis_m), direction)
        return ObjectView(obj, support, grid.voxel_size_m, frame, geometry)
    moved = to_lab_frame(obj, grid.lab_basis_m, support=support)
    voxel = moved.voxel_size_m
    return ObjectView(moved.obj, moved.support, (voxel, voxel, voxel), frame, (lab_grid_basis(voxel), direction))
