"""Diffractometer geometry and the lab frame: checked against xrayutilities and against a
crystal phased in its own frame."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from reconstruction.errors import InvalidDataError
from reconstruction.geometry import (
    APS_34IDC,
    ESRF_ID01,
    ScanGeometry,
    plane_spacing_m,
    real_space_basis,
    reciprocal_basis,
    rotation,
    scan_geometry,
    to_lab_frame,
)
from reconstruction.io.types import Metadata
from reconstruction.io.voxel import bragg_angle_from_detector_arms

APS_FILE = Path(__file__).resolve().parents[2].parent / "shared/data/real/aps34idc_Au_S0054_rocking_scan.cxi"
WAVELENGTH = 1.3776022e-10

# q steps (columns: rocking frame, detector row, detector column; rows: lab x, y, z; 1e7 / m)
# computed by xrayutilities 1.8.0 (QConversion + init_area + area + transformSample2Lab, as
# cohere-ui does for these beamlines) for one 0.005° step, 55 µm pixels at 0.5 m, 9 keV.
XRAYUTILITIES = [
    (
        APS_34IDC, "theta", {"theta": 0.22, "chi": 90.0, "phi": -5.0, "delta": 32.174, "gamma": 12.6346},
        [[6.927076016e-02, 5.842097863e-02, 4.246465666e-01],
         [2.213847240e-13, -4.895625056e-01, -6.035660531e-06],
         [2.068126537e-01, 9.286436831e-02, -2.671769863e-01]],
    ),
    (
        ESRF_ID01, "eta", {"mu": 0.3, "eta": 15.2, "phi": 10.0, "nu": 4.0, "delta": 31.0},
        [[-1.073358269e-03, -1.802323821e-02, -5.004815607e-01],
         [5.754680180e-02, -4.300596236e-01, -1.421185440e-05],
         [2.049944557e-01, 2.577443144e-01, -3.502079023e-02]],
    ),
    (
        ESRF_ID01, "phi", {"mu": 2.0, "eta": 15.2, "phi": 10.0, "nu": 4.0, "delta": 31.0},
        [[-1.947469415e-03, -1.802323821e-02, -5.004815607e-01],
         [6.763775138e-03, -4.300596236e-01, -1.421185430e-05],
         [2.484199563e-02, 2.577443144e-01, -3.502079023e-02]],
    ),
]


def _geometry(d=APS_34IDC, circle="theta", angles=None, step=0.005) -> ScanGeometry:
    angles = angles or {"theta": 0.22, "chi": 90.0, "phi": -5.0, "delta": 32.174, "gamma": 12.6346}
    return ScanGeometry(d, WAVELENGTH, 0.5, 55e-6, 55e-6, circle, step, angles)


def test_rotations_are_right_handed_about_their_axis():
    assert np.allclose(rotation("z+", 90) @ [1, 0, 0], [0, 1, 0])
    assert np.allclose(rotation("z-", 90) @ [1, 0, 0], [0, -1, 0])
    assert np.allclose(rotation("x+", 90) @ [0, 1, 0], [0, 0, 1])
    with pytest.raises(InvalidDataError, match="bad axis"):
        rotation("w+", 1)


@pytest.mark.parametrize("d,circle,angles,expected", XRAYUTILITIES, ids=["34idc-theta", "id01-eta", "id01-phi"])
def test_q_steps_agree_with_xrayutilities(d, circle, angles, expected):
    mine = reciprocal_basis(_geometry(d, circle, angles))
    ref = np.array(expected) * 1e7
    # xrayutilities differences one pixel / one step; the analytic derivative differs at 1e-4
    assert np.allclose(mine, ref, rtol=0, atol=2e-4 * np.linalg.norm(ref, axis=0).max())


def test_scattering_angle_and_q_follow_the_detector_arms():
    g = _geometry()
    two_theta = g.two_theta_deg()
    assert two_theta == pytest.approx(2 * bragg_angle_from_detector_arms(32.174, 12.6346), abs=1e-9)
    assert two_theta == pytest.approx(34.31625944, abs=1e-6)  # the spec file's #G4 two-theta
    q = np.linalg.norm(g.scattering_vector_per_m())
    assert q == pytest.approx(4 * math.pi * math.sin(math.radians(two_theta / 2)) / WAVELENGTH, rel=1e-12)


def test_coplanar_scan_is_sheared_by_the_bragg_angle():
    """Detector in the horizontal plane, rocking about the vertical: the rocking q step (⟂ Q) and
    the in-plane pixel step (⟂ k_f) meet at 90° − θ_B, the textbook shear of a Bragg scan."""
    theta_b = 20.0
    g = _geometry(angles={"theta": theta_b, "chi": 0.0, "phi": 0.0, "delta": 2 * theta_b, "gamma": 0.0})
    b = reciprocal_basis(g)
    cos = abs(b[:, 0] @ b[:, 2]) / (np.linalg.norm(b[:, 0]) * np.linalg.norm(b[:, 2]))
    assert math.degrees(math.acos(cos)) == pytest.approx(90 - theta_b, abs=1e-9)
    assert abs(b[:, 0] @ b[:, 1]) < 1e-9 * np.linalg.norm(b[:, 0]) * np.linalg.norm(b[:, 1])
    # |b_rock| = |Q| Δω when the rocking axis is perpendicular to Q
    q = np.linalg.norm(g.scattering_vector_per_m())
    assert np.linalg.norm(b[:, 0]) == pytest.approx(q * math.radians(0.005), rel=1e-12)


def test_real_space_basis_is_dual_and_plane_spacing_is_the_orthogonal_approximation():
    shape = (40, 64, 48)
    b = reciprocal_basis(_geometry())
    a = real_space_basis(b, shape)
    assert np.allclose(a.T @ b, 2 * math.pi * np.diag(1 / np.array(shape)), atol=1e-12)
    spacing = plane_spacing_m(b, shape)
    # detector axes: λ D / (N p); the planes of constant index j are |a_j · b̂_j| apart
    assert spacing[1] == pytest.approx(WAVELENGTH * 0.5 / (64 * 55e-6), rel=1e-12)
    assert spacing[2] == pytest.approx(WAVELENGTH * 0.5 / (48 * 55e-6), rel=1e-12)
    for j in range(3):
        assert abs(a[:, j] @ b[:, j]) / np.linalg.norm(b[:, j]) == pytest.approx(spacing[j], rel=1e-12)


def test_scan_geometry_reads_the_real_aps_scan():
    if not APS_FILE.is_file():
        pytest.skip("real APS data not present")
    from reconstruction.io.load import load_data

    data = load_data(APS_FILE)
    g = scan_geometry(data.metadata, data.intensity.shape)
    assert g.diffractometer is APS_34IDC
    assert g.rocking_circle == "theta"
    assert g.rocking_step_deg == pytest.approx(0.005, rel=1e-3)
    assert g.angles_deg["theta"] == pytest.approx(data.metadata.rocking_angles_deg[100])
    assert g.two_theta_deg() == pytest.approx(34.31626, abs=1e-4)


def test_scan_geometry_says_what_is_missing():
    meta = Metadata(wavelength_m=WAVELENGTH, distance_m=0.5, x_pixel_size_m=55e-6,
                    rocking_angles_deg=np.linspace(0, 1, 8), rocking_axis="theta",
                    extra={"instrument_name": "APS 34-ID-C", "positioners_deg": {"delta": 30.0}})
    with pytest.raises(InvalidDataError, match="row pixel size"):
        scan_geometry(meta, (8, 16, 16))
    meta.y_pixel_size_m = 55e-6
    with pytest.raises(InvalidDataError, match="gamma"):
        scan_geometry(meta, (8, 16, 16))
    meta.extra["instrument_name"] = "somewhere else"
    with pytest.raises(InvalidDataError, match="unknown diffractometer"):
        scan_geometry(meta, (8, 16, 16))
    meta.extra["positioners_deg"]["gamma"] = 10.0
    assert scan_geometry(meta, (8, 16, 16), diffractometer="aps-34idc").rocking_step_deg > 0
    with pytest.raises(InvalidDataError, match="known: aps-34idc, esrf-id01"):
        scan_geometry(meta, (8, 16, 16), diffractometer="p10")


def _blob(points: np.ndarray, radii: np.ndarray, rot: np.ndarray) -> np.ndarray:
    """A smooth, strained ellipsoidal crystal at lab points (3, n) in m: complex values."""
    p = rot.T @ points
    r = np.sqrt(((p / radii[:, None]) ** 2).sum(axis=0))
    amp = 0.5 * (1 - np.tanh((r - 1) / 0.12))
    phase = 1.2 * p[0] / radii[0] * p[1] / radii[1]
    return amp * np.exp(1j * phase)


def test_a_crystal_phased_on_the_sheared_grid_comes_back_in_its_own_shape():
    """A crystal defined in the lab, its diffraction sampled where the detector and the rocking
    scan sample it (a direct Fourier sum), transformed back on the data's grid, then resampled
    to the lab: it must match the crystal itself; with the rocking direction reversed (the
    usual sign mistake) it must not."""
    from reconstruction.fourier import backpropagate
    from reconstruction.geometry import lab_grid_points

    shape = (16, 16, 16)
    b = reciprocal_basis(_geometry(step=0.0115))  # rocking planes as far apart as the pixels'
    voxel = float(plane_spacing_m(b, shape).min())
    radii = np.array([4.2, 1.6, 1.6]) * voxel  # a needle, tilted: its mirror image points elsewhere
    rot = rotation("y+", 35) @ rotation("x+", 20)
    h = voxel / 2.5  # fine lab sampling of the crystal for the Fourier sum
    ax = np.arange(-11, 12) * h
    pts = np.stack([g.ravel() for g in np.meshgrid(ax, ax, ax, indexing="ij")])
    rho = _blob(pts, radii, rot)
    keep = np.abs(rho) > 1e-4
    pts, rho = pts[:, keep], rho[keep]
    m = np.stack(np.meshgrid(*(np.arange(k) - k // 2 for k in shape), indexing="ij")).reshape(3, -1)
    q = b @ m
    field = np.concatenate(
        [np.exp(-1j * (q[:, i:i + 512].T @ pts)) @ rho for i in range(0, q.shape[1], 512)]
    ).reshape(shape)
    obj = backpropagate(field)
    truth = _blob(lab_grid_points(shape, voxel), radii, rot).reshape(shape)

    def overlap(x, y):
        return abs(np.vdot(x, y)) / (np.linalg.norm(x) * np.linalg.norm(y))

    lab = to_lab_frame(obj, real_space_basis(b, shape), voxel_size_m=voxel)
    assert overlap(lab.obj, truth) > 0.96  # trilinear resampling of a thin crystal: 0.969
    wrong = to_lab_frame(obj, real_space_basis(b * [[-1, 1, 1]], shape), voxel_size_m=voxel)
    assert overlap(wrong.obj, truth) < 0.8


def test_vtk_files_read_back(tmp_path):
    from reconstruction.io.vtk import read_vtk, write_vtk

    rng = np.random.default_rng(0)
    fields = {"amplitude": rng.random((3, 4, 5)).astype(np.float32),
              "displacement_pm": np.full((3, 4, 5), np.nan, np.float32)}
    write_vtk(tmp_path / "a.vtk", fields, spacing=19.5)
    back, spacing = read_vtk(tmp_path / "a.vtk")
    assert spacing == 19.5
    assert np.array_equal(back["amplitude"], fields["amplitude"])
    assert np.isnan(back["displacement_pm"]).all()
    header = (tmp_path / "a.vtk").read_bytes()[:200].decode("ascii", "replace")
    assert "DIMENSIONS 5 4 3" in header and "ORIGIN -39 -39 -19.5" in header
    with pytest.raises(InvalidDataError, match="same shape"):
        write_vtk(tmp_path / "b.vtk", {"a": np.zeros((2, 2, 2)), "b": np.zeros((2, 2, 3))}, spacing=1)


def test_a_sphere_on_the_real_aps_grid_is_round_in_the_lab(tmp_path):
    """A result whose object is a lab-frame sphere sampled on the APS scan's sheared grid: the
    ``labframe`` command gives it back round, as NPZ and as VTK."""
    if not APS_FILE.is_file():
        pytest.skip("real APS data not present")
    from reconstruction.cli import main
    from reconstruction.geometry.workflow import lab_basis_m
    from reconstruction.io import write_result
    from reconstruction.io.types import ResultRecord
    from reconstruction.io.vtk import read_vtk
    from reconstruction.io.workflow import load_prepared_on_grid

    shape = (64, 64, 64)
    data = load_prepared_on_grid(APS_FILE, shape=shape)
    basis, info = lab_basis_m(data.metadata, shape)
    assert info["diffractometer"] == "aps-34idc" and 13 < info["max_shear_deg"] < 15
    n = np.stack(np.meshgrid(*(np.arange(k) - k // 2 for k in shape), indexing="ij")).reshape(3, -1)
    radius = 160e-9
    r = np.linalg.norm(basis @ n, axis=0).reshape(shape)
    obj = (0.5 * (1 - np.tanh((r - radius) / 15e-9)) * np.exp(0.3j)).astype(np.complex64)
    support = r < radius + 30e-9
    write_result(tmp_path / "result.cxi", ResultRecord(obj=obj, support=support, intensity=data.intensity,
                                                       mask=data.mask, algorithm="test"))  # fmt: skip
    out = tmp_path / "lab.npz"
    assert main(["labframe", str(tmp_path / "result.cxi"), "--data", str(APS_FILE), "--out", str(out)]) == 0
    with np.load(out) as f:
        assert f["obj"].shape == shape and f["voxel_size_m"] == pytest.approx(19.568e-9, rel=1e-3)
        amplitude, displacement, strain = f["amplitude"], f["displacement_m"], f["strain"]
        voxel = float(f["voxel_size_m"])
    extent = [(np.ptp(i) + 1) * voxel for i in np.nonzero(amplitude >= 0.3 * amplitude.max())]
    assert np.allclose(extent, 2 * radius, rtol=0.15)  # round: ~320 nm along z, y and x
    assert np.nanmax(np.abs(displacement)) < 1e-12  # a flat phase: no displacement, no strain
    assert np.isfinite(strain).any() and np.nanmax(np.abs(strain)) < 1e-6
    assert main(["labframe", str(tmp_path / "result.cxi"), "--data", str(APS_FILE), "--out",
                 str(tmp_path / "lab.vtk")]) == 0  # fmt: skip
    fields, spacing = read_vtk(tmp_path / "lab.vtk")
    assert set(fields) == {"amplitude", "phase", "support", "displacement_pm", "strain_pct"}
    assert spacing == pytest.approx(19.568, rel=1e-3)
    assert main(["labframe", str(tmp_path / "result.cxi"), "--data", str(APS_FILE), "--out",
                 str(tmp_path / "lab.txt")]) == 2  # fmt: skip


def test_strain_along_g_on_the_sheared_grid_matches_the_crystal_and_its_lab_frame_copy():
    """A crystal whose displacement along G is u(r) = ε0 (r·Ĝ) + c ((r·ê)²) has strain
    ε = Ĝ·∇u = ε0 + 2c (r·ê)(ê·Ĝ): computed on the APS scan's sheared grid (no resampling) and
    on the lab grid after ``to_lab_frame``, it must match the formula inside the crystal."""
    from reconstruction.geometry import lab_grid_basis, lab_grid_points
    from reconstruction.metrics import strain_along_g

    shape = (40, 40, 40)
    g = _geometry(step=0.0115)
    b = reciprocal_basis(g)
    a = real_space_basis(b, shape)
    q = g.scattering_vector_per_m()
    g_norm, g_hat = float(np.linalg.norm(q)), q / np.linalg.norm(q)
    e = np.array([1.0, 0.0, 0.0])
    eps0, c = 3e-4, 2e3  # c in 1/m: a few 1e-4 of strain across the crystal
    voxel = float(plane_spacing_m(b, shape).min())
    radius = 11 * voxel

    def crystal(points):
        r = np.linalg.norm(points, axis=0)
        u = eps0 * (g_hat @ points) + c * (e @ points) ** 2
        return (0.5 * (1 - np.tanh((r - radius) / (0.5 * voxel)))) * np.exp(-1j * g_norm * u), r

    def expected(points):
        return eps0 + 2 * c * (e @ points) * (e @ g_hat)

    n = np.stack(np.meshgrid(*(np.arange(k) - k // 2 for k in shape), indexing="ij")).reshape(3, -1)
    pts = a @ n
    obj, r = crystal(pts)
    obj, r = obj.reshape(shape), r.reshape(shape)
    inner = r < radius - 2 * voxel
    eps = strain_along_g(obj, g_norm, q, a, support=r < radius)
    assert np.isfinite(eps[inner]).all() and np.isnan(eps[r > radius]).all()
    np.testing.assert_allclose(eps[inner], expected(pts).reshape(shape)[inner], atol=3e-6)

    lab = to_lab_frame(obj, a, voxel_size_m=voxel, support=r < radius)
    lab_pts = lab_grid_points(shape, voxel)
    lab_r = np.linalg.norm(lab_pts, axis=0).reshape(shape)
    eps_lab = strain_along_g(lab.obj, g_norm, q, lab_grid_basis(voxel), support=lab.support)
    lab_inner = lab_r < radius - 3 * voxel
    np.testing.assert_allclose(eps_lab[lab_inner], expected(lab_pts).reshape(shape)[lab_inner], atol=3e-5)
    with pytest.raises(ValueError, match="3×3"):
        strain_along_g(obj, g_norm, np.zeros(3), a)


def test_a_nexus_scan_gives_its_instrument_positioners_and_rocking_angles(tmp_path):
    """BLISS/NeXus layout (ESRF ID01): ``instrument/name``, ``instrument/positioners`` with the
    scanned motor as an array (the rocking angles) and the others as scalars (radians
    converted), the detector's distance and pixels: enough for the lab frame."""
    import h5py

    from reconstruction.io import load_data
    from reconstruction.io.workflow import geometry_summary

    path = tmp_path / "id01.h5"
    with h5py.File(path, "w") as f:
        entry = f.create_group("scan_1")
        entry.attrs["NX_class"] = "NXentry"
        entry["instrument/name"] = "ESRF ID01"
        pos = entry.create_group("instrument/positioners")
        pos["eta"] = np.linspace(15.0, 15.4, 8)
        pos["nu"] = 4.0
        pos["delta"] = math.radians(31.0)
        pos["delta"].attrs["units"] = "rad"
        pos["mu"] = 0.3
        det = entry.create_group("instrument/mpx1x4")
        det.attrs["NX_class"] = "NXdetector"
        det["data"] = np.random.default_rng(0).poisson(5.0, (8, 16, 16)).astype(np.int32)
        det["distance"] = 0.5
        det["x_pixel_size"] = 55e-6
        det["y_pixel_size"] = 55e-6
        entry["instrument/monochromator/energy"] = 9.0
        entry["instrument/monochromator/energy"].attrs["units"] = "keV"
    meta = load_data(str(path), dataset_path="/scan_1/instrument/mpx1x4/data").metadata
    assert meta.extra["instrument_name"] == "ESRF ID01"
    assert meta.extra["positioners_deg"] == pytest.approx({"nu": 4.0, "delta": 31.0, "mu": 0.3})
    assert meta.rocking_axis == "eta" and meta.rocking_angles_deg[-1] == pytest.approx(15.4)
    lab = geometry_summary(meta, (8, 16, 16))
    assert lab["available"] and lab["diffractometer_title"] == "ESRF ID01" and lab["rocking_circle"] == "eta"
    assert lab["two_theta_deg"] == pytest.approx(2 * bragg_angle_from_detector_arms(4.0, 31.0))


def test_info_says_whether_the_lab_frame_is_available(tmp_path, capsys):
    from reconstruction.cli import main

    np.save(tmp_path / "p.npy", np.random.default_rng(0).poisson(3, (8, 16, 16)).astype(np.int32))
    assert main(["info", str(tmp_path / "p.npy")]) == 0
    assert "lab frame     not available: unknown diffractometer" in capsys.readouterr().out
    if APS_FILE.is_file():
        assert main(["info", str(APS_FILE)]) == 0
        assert "APS 34-ID-C, 2θ = 34.316 deg, data grid up to 14.0 deg from orthogonal" in capsys.readouterr().out


def test_hand_edited_positioners_are_reported_missing_not_a_crash():
    meta = Metadata(wavelength_m=WAVELENGTH, distance_m=0.5, x_pixel_size_m=55e-6, y_pixel_size_m=55e-6,
                    rocking_angles_deg=np.linspace(0, 1, 8), rocking_axis="theta",
                    extra={"instrument_name": "APS 34-ID-C", "positioners_deg": {"delta": "abc", "gamma": [1, 2]}})
    with pytest.raises(InvalidDataError, match="delta, gamma"):
        scan_geometry(meta, (8, 16, 16))
    meta.extra["positioners_deg"] = "not a dict"
    with pytest.raises(InvalidDataError, match="missing"):
        scan_geometry(meta, (8, 16, 16))
    meta.extra["positioners_deg"] = {"delta": 0.0, "gamma": 0.0}  # the direct beam: Q = 0
    with pytest.raises(InvalidDataError, match="coplanar"):
        real_space_basis(reciprocal_basis(scan_geometry(meta, (8, 16, 16))), (8, 16, 16))
