"""Build the scan geometry of a 3D Bragg dataset from its acquisition metadata."""

from __future__ import annotations

import math

import numpy as np

from reconstruction.errors import InvalidDataError
from reconstruction.geometry.diffractometer import (
    CIRCLE_ALIASES,
    DIFFRACTOMETERS,
    Diffractometer,
    ScanGeometry,
)
from reconstruction.io.types import Metadata


def identify_diffractometer(metadata: Metadata) -> Diffractometer | None:
    """The known diffractometer whose name the file's ``/instrument_1/name`` contains, or None."""
    name = str((metadata.extra or {}).get("instrument_name", "")).lower().replace(" ", "")
    for d in DIFFRACTOMETERS.values():
        if any(fragment in name for fragment in d.instrument_names):
            return d
    return None


def _resolve(diffractometer: str | Diffractometer | None, metadata: Metadata) -> Diffractometer:
    if isinstance(diffractometer, Diffractometer):
        return diffractometer
    if diffractometer:
        key = str(diffractometer).lower()
        if key not in DIFFRACTOMETERS:
            known = ", ".join(sorted(DIFFRACTOMETERS))
            raise InvalidDataError(f"unknown diffractometer {diffractometer!r}; known: {known}")
        return DIFFRACTOMETERS[key]
    found = identify_diffractometer(metadata)
    if found is None:
        instrument = (metadata.extra or {}).get("instrument_name") or "not stated in the file"
        known = ", ".join(sorted(DIFFRACTOMETERS))
        raise InvalidDataError(
            f"unknown diffractometer (instrument: {instrument}); name one of: {known}"
        )
    return found


def _circle_of(d: Diffractometer, axis_name: str | None) -> str | None:
    names = [c for c, _ in d.sample_circles]
    key = (axis_name or "").lower()
    for c in names:
        if key == c or key in CIRCLE_ALIASES.get(c, ()):
            return c
    return None


def _positioner(positioners: dict, circle: str) -> float | None:
    """The circle's angle (deg) among the positioners, under its name or an alias; None when
    absent or not a finite number (a hand-edited file may hold anything there)."""
    for key in CIRCLE_ALIASES.get(circle, (circle,)):
        try:
            value = float(positioners.get(key))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
        if math.isfinite(value) and abs(value) <= 3600:
            return value
    return None


def scan_geometry(
    metadata: Metadata,
    shape: tuple[int, ...],
    *,
    diffractometer: str | Diffractometer | None = None,
) -> ScanGeometry:
    """Return the ``ScanGeometry`` of (prepared) 3D Bragg data of ``shape`` from its metadata.

    The diffractometer is named or recognised from ``/instrument_1/name``; the rocking circle is
    the metadata's rocking axis, at the centre frame's angle with the mean signed step; the other
    circles come from the positioners. Raises ``InvalidDataError`` saying what is missing.
    """
    if len(shape) != 3:
        raise InvalidDataError("the lab frame is defined for 3D Bragg data only")
    d = _resolve(diffractometer, metadata)
    missing = [
        label
        for label, value in (
            ("wavelength", metadata.wavelength_m),
            ("detector distance", metadata.distance_m),
            ("row pixel size", metadata.y_pixel_size_m),
            ("column pixel size", metadata.x_pixel_size_m),
        )
        if not value or not math.isfinite(value) or value <= 0
    ]
    angles = metadata.rocking_angles_deg
    circle = _circle_of(d, metadata.rocking_axis)
    if circle is None:
        missing.append(f"a rocking circle of {d.title} (the file rocks {metadata.rocking_axis!r})")
    elif angles is None or np.size(angles) != shape[0] or np.size(angles) < 2:
        missing.append(f"{shape[0]} rocking angles")
    if missing:
        raise InvalidDataError(f"no lab frame for this scan: missing {', '.join(missing)}")
    angles = np.asarray(angles, dtype=np.float64)
    step = float(np.mean(np.diff(angles)))
    if not math.isfinite(step) or step == 0:
        raise InvalidDataError("no lab frame for this scan: the rocking angles do not change")
    positioners = (metadata.extra or {}).get("positioners_deg")
    positioners = positioners if isinstance(positioners, dict) else {}
    values = {circle: float(angles[shape[0] // 2])}
    outer = [c for c, _ in d.sample_circles][: [c for c, _ in d.sample_circles].index(circle)]
    absent = []
    for name in outer + [c for c, _ in d.detector_circles]:
        value = _positioner(positioners, name)
        if value is None:
            absent.append(name)
        else:
            values[name] = value
    if absent:
        raise InvalidDataError(
            f"no lab frame for this scan: positioner(s) {', '.join(absent)} of {d.title} missing"
        )
    return ScanGeometry(
        diffractometer=d,
        wavelength_m=float(metadata.wavelength_m),
        distance_m=float(metadata.distance_m),
        pixel_row_m=float(metadata.y_pixel_size_m),
        pixel_col_m=float(metadata.x_pixel_size_m),
        rocking_circle=circle,
        rocking_step_deg=step,
        angles_deg=values,
    )


__all__ = ["identify_diffractometer", "scan_geometry"]
