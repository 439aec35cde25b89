"""Diffractometer geometry of a Bragg CDI rocking scan: which q each voxel of the data measured.

A 3D Bragg scan is a stack of detector frames taken while one sample circle rocks the crystal.
Its voxels are not on an orthogonal grid: the q step between frames (the rocking direction,
perpendicular to Q) and the q steps between detector pixels (perpendicular to the exit beam)
meet at an angle that differs from 90° by about the Bragg angle. This module computes the three
q steps in the laboratory frame (``reciprocal_basis``) and the dual real-space steps of the
reconstructed object's voxels (``real_space_basis``); ``reconstruction.geometry.lab_frame``
resamples the object onto an orthogonal grid with them.

Conventions (those of xrayutilities, used by cohere and the beamlines' own tools): the lab frame
has z along the incident beam and y up; an axis is written ``"y+"`` (right-handed rotation about
+y) or ``"x-"`` (about -x); circles are listed outermost first, so a lab vector is
``R_outer · … · R_inner · v``. Detector pixel directions are given at all detector angles zero,
where the detector faces the beam at the sample-detector distance. Array axes of the data are
(rocking frame, detector row, detector column).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from reconstruction.errors import InvalidDataError

_AXES = {"x": (1.0, 0.0, 0.0), "y": (0.0, 1.0, 0.0), "z": (0.0, 0.0, 1.0)}
_AXIS_RE = re.compile(r"^([xyz])([+-])$")


def axis_vector(spec: str) -> np.ndarray:
    """Unit vector (lab frame) of an axis written ``"x+"``, ``"y-"`` …"""
    m = _AXIS_RE.match(spec.strip().lower())
    if m is None:
        raise InvalidDataError(f"bad axis {spec!r}: expected one of x+, x-, y+, y-, z+, z-")
    v = np.array(_AXES[m.group(1)])
    return v if m.group(2) == "+" else -v


def rotation(spec: str, angle_deg: float) -> np.ndarray:
    """3×3 right-handed rotation by ``angle_deg`` (degrees) about the axis ``spec`` (``"y+"`` …)."""
    u = axis_vector(spec)
    a = math.radians(float(angle_deg))
    k = np.array([[0, -u[2], u[1]], [u[2], 0, -u[0]], [-u[1], u[0], 0]])
    return np.eye(3) + math.sin(a) * k + (1 - math.cos(a)) * (k @ k)


@dataclass(frozen=True)
class Diffractometer:
    """Circles and detector orientation of one beamline's diffractometer (see module docstring)."""

    name: str
    title: str
    sample_circles: tuple[tuple[str, str], ...]  # (positioner name, axis), outermost first
    detector_circles: tuple[tuple[str, str], ...]
    pixel_row: str  # lab direction of increasing detector row (array axis -2) at zero angles
    pixel_col: str  # lab direction of increasing detector column (array axis -1)
    incident: str = "z+"
    instrument_names: tuple[str, ...] = ()  # fragments of /instrument_1/name that identify it


# From the beamlines' configurations in cohere-ui (xrayutilities notation; cohere reads frames
# transposed, so its first pixel direction is our column and its second our row).
APS_34IDC = Diffractometer(
    name="aps-34idc",
    title="APS 34-ID-C",
    sample_circles=(("theta", "y+"), ("chi", "z-"), ("phi", "y+")),
    detector_circles=(("delta", "y+"), ("gamma", "x-")),
    pixel_row="y-",
    pixel_col="x+",
    instrument_names=("34-id-c", "34idc", "34-idc"),
)
ESRF_ID01 = Diffractometer(
    name="esrf-id01",
    title="ESRF ID01",
    sample_circles=(("mu", "y-"), ("eta", "x-"), ("phi", "y-")),
    detector_circles=(("nu", "y-"), ("delta", "x-")),
    pixel_row="y-",
    pixel_col="x-",
    instrument_names=("id01",),
)
DIFFRACTOMETERS: dict[str, Diffractometer] = {d.name: d for d in (APS_34IDC, ESRF_ID01)}

# Other names the same circle goes by in files (spec mnemonics, NeXus names).
CIRCLE_ALIASES = {"theta": ("theta", "th", "theta_start"), "eta": ("eta", "eta_start")}


@dataclass(frozen=True)
class ScanGeometry:
    """Everything that fixes the q of each voxel of a (rocking, row, column) data array.

    Lengths in m, angles in degrees; ``angles_deg`` holds every circle of the diffractometer at
    the reference frame (the rocking circle at the array's centre frame); ``rocking_step_deg``
    is signed (the change of the rocking circle from one frame to the next).
    """

    diffractometer: Diffractometer
    wavelength_m: float
    distance_m: float
    pixel_row_m: float
    pixel_col_m: float
    rocking_circle: str
    rocking_step_deg: float
    angles_deg: Mapping[str, float] = field(default_factory=dict)

    def _stack(self, circles, upto: str | None = None) -> np.ndarray:
        """Product of the rotations of ``circles`` (outermost first), stopping before ``upto``."""
        r = np.eye(3)
        for name, axis in circles:
            if name == upto:
                break
            r = r @ rotation(axis, self.angles_deg[name])
        return r

    def detector_rotation(self) -> np.ndarray:
        """Rotation taking the detector at zero angles to its position (lab frame)."""
        return self._stack(self.diffractometer.detector_circles)

    def scattering_vector_per_m(self) -> np.ndarray:
        """Q = k_f − k_i (1/m, lab frame) at the detector's reference pixel."""
        k = 2 * math.pi / self.wavelength_m
        e_i = axis_vector(self.diffractometer.incident)
        return k * (self.detector_rotation() @ e_i - e_i)

    def two_theta_deg(self) -> float:
        """Scattering angle 2θ (degrees) at the detector's reference pixel."""
        e_i = axis_vector(self.diffractometer.incident)
        c = float(np.clip((self.detector_rotation() @ e_i) @ e_i, -1.0, 1.0))
        return math.degrees(math.acos(c))

    def rocking_axis(self) -> np.ndarray:
        """Unit vector (lab frame) of the rocking circle's axis, carried by the outer circles."""
        d = self.diffractometer
        axis = dict(d.sample_circles)[self.rocking_circle]
        return self._stack(d.sample_circles, upto=self.rocking_circle) @ axis_vector(axis)


def reciprocal_basis(geometry: ScanGeometry) -> np.ndarray:
    """3×3 matrix whose columns are the q steps (1/m, lab frame) of one index along the data's
    axes 0 (rocking frame), 1 (detector row) and 2 (detector column), at the reference pixel.

    Rocking the sample by +Δω moves the q a fixed pixel measures, in the sample's reference
    orientation, by −Δω · (axis × Q); a pixel step is k·p/D along the pixel direction carried
    by the detector circles (perpendicular to the exit beam at the reference pixel).
    """
    k = 2 * math.pi / geometry.wavelength_m
    d = geometry.diffractometer
    rot = geometry.detector_rotation()
    q = geometry.scattering_vector_per_m()
    b_rock = -math.radians(geometry.rocking_step_deg) * np.cross(geometry.rocking_axis(), q)
    b_row = k * geometry.pixel_row_m / geometry.distance_m * (rot @ axis_vector(d.pixel_row))
    b_col = k * geometry.pixel_col_m / geometry.distance_m * (rot @ axis_vector(d.pixel_col))
    return np.stack([b_rock, b_row, b_col], axis=1)


def real_space_basis(reciprocal: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """3×3 matrix whose columns are the real-space steps (m, lab frame) of one voxel along the
    object's axes 0, 1, 2, for an object phased from data of ``shape`` with q steps
    ``reciprocal``: the dual basis, a_j · b_i = 2π δ_ij / N_j."""
    b = np.asarray(reciprocal, dtype=np.float64)
    if b.shape != (3, 3) or len(shape) != 3:
        raise InvalidDataError("a real-space basis needs a 3×3 q basis and a 3D shape")
    det = float(np.linalg.det(b))
    scale = float(np.prod(np.linalg.norm(b, axis=0)))
    if not (math.isfinite(det) and scale > 0) or abs(det) < 1e-12 * scale:
        raise InvalidDataError("the q steps of the three axes are coplanar: no 3D geometry")
    return 2 * math.pi * np.linalg.inv(b).T / np.asarray(shape, dtype=np.float64)


def plane_spacing_m(reciprocal: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Distance (m) between successive planes of voxels along each axis, 2π / (N_j |b_j|): the
    voxel size of the orthogonal-frame approximation (``reconstruction.io.voxel``)."""
    norms = np.linalg.norm(np.asarray(reciprocal, dtype=np.float64), axis=0)
    return 2 * math.pi / (np.asarray(shape, dtype=np.float64) * norms)


__all__ = [
    "APS_34IDC",
    "DIFFRACTOMETERS",
    "ESRF_ID01",
    "Diffractometer",
    "ScanGeometry",
    "axis_vector",
    "plane_spacing_m",
    "real_space_basis",
    "reciprocal_basis",
    "rotation",
]
