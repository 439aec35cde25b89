"""voxel_size_m against hand calculations (detector axes, rocking axis, simulated, unknown)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from reconstruction.errors import InvalidDataError
from reconstruction.io import Metadata
from reconstruction.io.voxel import voxel_size_m


def _meta(**kw) -> Metadata:
    base = {"wavelength_m": 1.0e-10, "distance_m": 2.0, "x_pixel_size_m": 55e-6, "y_pixel_size_m": 75e-6}
    return Metadata(**{**base, **kw})


def test_detector_axes_are_lambda_d_over_n_p():
    # 1 Å, 2 m, 55 µm over 64 pixels: 1e-10 * 2 / (64 * 55e-6) = 56.818 nm; 75 µm over 32: 83.333 nm
    vy, vx = voxel_size_m(_meta(), (32, 64))
    assert vx == pytest.approx(56.818e-9, rel=1e-4)
    assert vy == pytest.approx(83.333e-9, rel=1e-4)


def test_rocking_axis_needs_the_bragg_angle():
    meta = _meta(rocking_angles_deg=np.linspace(10.0, 10.0 + 0.01 * 63, 64), rocking_axis="theta")
    assert voxel_size_m(meta, (64, 64, 64))[0] is None
    # 1e-10 / (2 * 64 * radians(0.01) * sin(radians(15))) = 17.29 nm
    vz = voxel_size_m(meta, (64, 64, 64), bragg_angle_deg=15.0)[0]
    assert vz == pytest.approx(1e-10 / (2 * 64 * math.radians(0.01) * math.sin(math.radians(15.0))), rel=1e-9)
    assert vz == pytest.approx(17.29e-9, rel=1e-3)
    meta.extra["bragg_angle_deg"] = 15.0
    assert voxel_size_m(meta, (64, 64, 64))[0] == pytest.approx(vz)


def test_simulated_voxel_size_wins_and_missing_metadata_gives_none():
    assert voxel_size_m(Metadata(extra={"voxel_size_m": 5e-9}), (16, 16, 16)) == (5e-9, 5e-9, 5e-9)
    assert voxel_size_m(Metadata(), (16, 16)) == (None, None)
    assert voxel_size_m(_meta(distance_m=None), (8, 8, 8)) == (None, None, None)


def test_a_bad_shape_is_refused():
    with pytest.raises(InvalidDataError, match="2D or 3D grid"):
        voxel_size_m(_meta(), (5,))
