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


def test_the_bragg_angle_of_two_perpendicular_detector_arms():
    from reconstruction.io.voxel import bragg_angle_from_detector_arms

    # APS 34-ID-C scan 54: delta 32.174, gamma 12.6346 deg -> 2θ ≈ 34.3 deg (data/real/README.md)
    assert bragg_angle_from_detector_arms(32.174, 12.6346) == pytest.approx(34.316 / 2, abs=0.01)
    assert bragg_angle_from_detector_arms(40.0, 0.0) == pytest.approx(20.0)  # one arm only: 2θ = arm
    assert bragg_angle_from_detector_arms(0.0, 0.0) is None  # the direct beam, no Bragg peak


def test_a_real_rocking_scan_gets_its_bragg_angle_and_every_voxel_size_from_its_positioners(real_data):
    from reconstruction.io import load_data

    data = load_data(str(real_data / "aps34idc_Au_S0054_rocking_scan.cxi"))
    assert data.metadata.extra["bragg_angle_deg"] == pytest.approx(17.158, abs=1e-3)
    assert "delta" in data.metadata.extra["bragg_angle_from"]
    sizes = voxel_size_m(data.metadata, data.intensity.shape)
    # detector: λD/(Np) = 1.3776e-10 * 0.5 / (256 * 55e-6); rocking: λ / (2 N Δω sin θ_B), Δω = 0.005°
    assert sizes[1] == pytest.approx(1.3776e-10 * 0.5 / (256 * 55e-6), rel=1e-3)
    formula = 1.3776e-10 / (2 * 201 * math.radians(0.005) * math.sin(math.radians(17.158)))
    # with the 34-ID-C geometry the exact plane spacing 2π / (N |Δq|): theta rocks about the
    # vertical, and the gamma arm tilts Q out of the horizontal plane, so |Δq| = |Q| Δω cos(tilt)
    from reconstruction.geometry import scan_geometry

    q = scan_geometry(data.metadata, data.intensity.shape).scattering_vector_per_m()
    cos_tilt = math.sqrt(1 - (q[1] / (q @ q) ** 0.5) ** 2)
    assert sizes[0] == pytest.approx(formula / cos_tilt, rel=2e-3)  # 14.33 nm, not 13.31
    assert voxel_size_m(data.metadata, data.intensity.shape, bragg_angle_deg=17.158)[0] == pytest.approx(formula, rel=1e-3)


def test_a_two_theta_positioner_is_read_in_radians_or_degrees(tmp_path):
    import h5py

    from reconstruction.io import load_data

    for units, value in (("deg", 40.0), ("rad", math.radians(40.0))):
        path = tmp_path / f"scan_{units}.cxi"
        with h5py.File(path, "w") as f:
            f["cxi_version"] = 150
            det = f.create_group("entry_1/instrument_1/detector_1")
            det["data"] = np.random.default_rng(0).poisson(5.0, (8, 16, 16)).astype(np.int32)
            det["distance"] = 1.0
            pos = f.create_group("entry_1/instrument_1/positioners")
            pos["two_theta"] = value
            pos["two_theta"].attrs["units"] = units
        assert load_data(str(path)).metadata.extra["bragg_angle_deg"] == pytest.approx(20.0)


def test_the_bragg_vector_of_a_known_reflection_is_two_pi_over_d():
    from reconstruction.io.voxel import bragg_vector_norm_per_m

    d = 4.0782e-10 / math.sqrt(3)  # Au(111)
    wavelength = 1.3776e-10
    theta = math.degrees(math.asin(wavelength / (2 * d)))
    meta = _meta(wavelength_m=wavelength, extra={"bragg_angle_deg": theta})
    assert bragg_vector_norm_per_m(meta) == pytest.approx(2 * math.pi / d, rel=1e-9)
    assert bragg_vector_norm_per_m(_meta(), bragg_angle_deg=theta) == pytest.approx(4 * math.pi * math.sin(math.radians(theta)) / 1e-10)
    assert bragg_vector_norm_per_m(_meta()) is None  # no Bragg angle
    assert bragg_vector_norm_per_m(Metadata(extra={"bragg_angle_deg": theta})) is None  # no wavelength


def test_the_real_gold_scan_is_a_gold_111_reflection(real_data):
    from reconstruction.io import load_data
    from reconstruction.io.voxel import bragg_vector_norm_per_m

    data = load_data(str(real_data / "aps34idc_Au_S0054_rocking_scan.cxi"))
    d = 2 * math.pi / bragg_vector_norm_per_m(data.metadata)
    assert d == pytest.approx(4.0782e-10 / math.sqrt(3), rel=0.02)  # 0.2335 nm from 2θ = 34.3°
