"""Which grid a result page draws the object on: the data's (rocking frame, detector row,
column: sheared for Bragg scans) or, where the diffractometer geometry is known, an orthogonal
lab grid (``reconstruction.geometry.to_lab_frame``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from webapp.viewer.units import GridScales


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


def shown_object(
    obj: np.ndarray, support: np.ndarray | None, grid: GridScales, *, lab: bool
) -> tuple[np.ndarray, np.ndarray | None, tuple[float | None, ...] | None, dict[str, Any]]:
    """(object, support, voxel size per axis in m, ``frame_info``) as the page draws them: on
    the lab grid when ``lab`` is asked and possible, else as phased."""
    from reconstruction.geometry import to_lab_frame

    frame = frame_info(grid, shown=lab)
    if frame["shown"] != "lab":
        return obj, support, grid.voxel_size_m, frame
    moved = to_lab_frame(obj, grid.lab_basis_m, support=support)
    voxel = moved.voxel_size_m
    return moved.obj, moved.support, (voxel, voxel, voxel), frame
