"""Diffractometer geometry of Bragg CDI scans and the lab frame of their reconstructions.

- ``scan_geometry(metadata, shape, diffractometer=None)``: the scan's ``ScanGeometry`` (known
  diffractometers: ``DIFFRACTOMETERS``, recognised from the file's instrument name).
- ``reciprocal_basis(geometry)``: q steps (1/m, lab frame) of the data's three axes;
  ``real_space_basis(b, shape)``: the object's voxel steps (m); ``plane_spacing_m``.
- ``to_lab_frame(obj, basis_m)``: the object resampled on an orthogonal lab grid (z, y, x).
"""

from reconstruction.geometry.diffractometer import (
    APS_34IDC,
    DIFFRACTOMETERS,
    ESRF_ID01,
    Diffractometer,
    ScanGeometry,
    axis_vector,
    plane_spacing_m,
    real_space_basis,
    reciprocal_basis,
    rotation,
)
from reconstruction.geometry.from_metadata import identify_diffractometer, scan_geometry
from reconstruction.geometry.lab_frame import (
    LAB_AXES,
    LabFrameObject,
    lab_grid_basis,
    lab_grid_points,
    to_lab_frame,
)

__all__ = [
    "APS_34IDC",
    "DIFFRACTOMETERS",
    "ESRF_ID01",
    "LAB_AXES",
    "Diffractometer",
    "LabFrameObject",
    "ScanGeometry",
    "axis_vector",
    "identify_diffractometer",
    "lab_grid_basis",
    "lab_grid_points",
    "plane_spacing_m",
    "real_space_basis",
    "reciprocal_basis",
    "rotation",
    "scan_geometry",
    "to_lab_frame",
]
