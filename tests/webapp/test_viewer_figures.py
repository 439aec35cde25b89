"""Figure builders of the viewer checked against analytic objects (no Django needed)."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest

from reconstruction.errors import ConfigError
from reconstruction.fourier import farfield
from webapp.viewer import encoding, figures


def ball(n: int = 32, radius: float = 8.0) -> tuple[np.ndarray, np.ndarray]:
    """A ball of amplitude 1 with a one-voxel linear edge: amplitude = clip(radius + 0.5 - r, 0, 1).

    Returns (amplitude (n, n, n), coordinates (3, n, n, n) relative to the centre n // 2).
    """
    coords = np.mgrid[:n, :n, :n].astype(np.float64) - n // 2
    r = np.sqrt((coords**2).sum(axis=0))
    return np.clip(radius + 0.5 - r, 0.0, 1.0), coords


def wrap(phase: np.ndarray) -> np.ndarray:
    """Wrap an angle to [-π, π)."""
    return (phase + np.pi) % (2 * np.pi) - np.pi


def test_isosurface_of_a_ball_sits_at_the_analytic_radius():
    amplitude, _ = ball(32, 8.0)
    mesh = figures.isosurface_mesh(amplitude, np.zeros_like(amplitude), threshold=0.3)
    radii = np.linalg.norm(mesh["verts"] - 16.0, axis=1)
    # amplitude = 0.3 where r = 8.5 - 0.3 = 8.2
    assert abs(radii.mean() - 8.2) < 0.1
    assert radii.std() < 0.15


def test_isosurface_phase_is_interpolated_through_cos_and_sin_so_wraps_do_not_smear():
    amplitude, coords = ball(32, 8.0)
    ramp = 1.3 * coords[2] + 0.7 * coords[0]  # rad, wraps several times across the ball
    mesh = figures.isosurface_mesh(amplitude, wrap(ramp), threshold=0.3)
    zc, yc, xc = (mesh["verts"] - 16.0).T
    truth = wrap(1.3 * xc + 0.7 * zc)
    error = np.abs(wrap(mesh["values"] - truth))
    assert error.max() < 0.12
    # the naive interpolation of the wrapped phase would be off by up to ~π near every wrap
    from scipy import ndimage

    naive = ndimage.map_coordinates(wrap(ramp), mesh["verts"].T, order=1)
    assert np.abs(wrap(naive - truth)).max() > 1.0


def test_isosurface_respects_the_vertex_budget_by_coarsening_marching_cubes():
    amplitude, _ = ball(48, 20.0)
    fine = figures.isosurface_mesh(amplitude, np.zeros_like(amplitude), max_vertices=10**6)
    coarse = figures.isosurface_mesh(amplitude, np.zeros_like(amplitude), max_vertices=len(fine["verts"]) // 3)
    assert fine["step_size"] == 1
    assert coarse["step_size"] > 1
    assert len(coarse["verts"]) <= len(fine["verts"]) // 3


def test_isosurface_threshold_outside_zero_one_is_a_config_error():
    amplitude, _ = ball(16, 4.0)
    with pytest.raises(ConfigError, match="threshold"):
        figures.isosurface_mesh(amplitude, np.zeros_like(amplitude), threshold=1.5)


def test_isosurface_figure_is_a_vertex_coloured_mesh3d_on_a_cyclic_phase_scale():
    amplitude, coords = ball(24, 6.0)
    fig = figures.isosurface_figure(amplitude, wrap(0.5 * coords[2]), origin=(1.0, 2.0, 3.0))
    trace = fig["data"][0]
    assert trace["type"] == "mesh3d" and trace["intensitymode"] == "vertex"
    assert (trace["cmin"], trace["cmax"]) == (-math.pi, math.pi)
    assert trace["colorscale"][0][1] == trace["colorscale"][-1][1]  # cyclic
    assert trace["colorbar"]["title"]["text"] == "phase (rad)"
    x = encoding.decode_typed_array(trace["x"])
    assert x.size == fig["meta"]["n_vertices"]
    assert abs(x.mean() - (12 + 3.0)) < 0.2  # origin shifts the vertices (x offset 3)
    faces = encoding.decode_typed_array(trace["i"])
    assert faces.max() < x.size


def test_phase_slices_are_blank_outside_the_support():
    amplitude, coords = ball(16, 4.0)
    support = amplitude > 0.5
    fig = figures.object_slices_figure(amplitude, wrap(coords[2]), support, index=(8, 8, 8))
    amp_img = encoding.decode_typed_array(fig["data"][0]["z"])
    phase_img = encoding.decode_typed_array(fig["data"][3]["z"])
    np.testing.assert_allclose(amp_img, amplitude[8], atol=1e-6)
    assert np.array_equal(np.isnan(phase_img), ~support[8])
    np.testing.assert_allclose(phase_img[support[8]], wrap(coords[2])[8][support[8]], atol=1e-6)
    assert fig["layout"]["coloraxis2"]["colorbar"]["title"]["text"] == "phase (rad)"


def test_slice_axes_are_pinned_to_the_image_extent_in_full_box_voxels():
    amplitude, coords = ball(16, 4.0)
    fig = figures.object_slices_figure(amplitude, coords[2], amplitude > 0.5, index=(8, 8, 8), origin=(10, 20, 30))
    assert fig["layout"]["xaxis"]["range"] == [29.5, 45.5]  # x from origin 30, 16 voxels
    assert fig["layout"]["yaxis6"]["range"] == [9.5, 25.5]  # phase along x: vertical axis is z from 10


def test_slices_follow_the_documented_axis_convention():
    volume = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    assert figures.take_slice(volume, 0, 1).shape == (3, 4)
    assert figures.take_slice(volume, 1, 2).shape == (2, 4)
    np.testing.assert_array_equal(figures.take_slice(volume, 2, 3), volume[:, :, 3])
    np.testing.assert_array_equal(figures.take_slice(volume, 0, 99), volume[1])  # clipped


def test_reference_phase_removes_the_global_phase_offset():
    amplitude, _ = ball(16, 4.0)
    obj = amplitude * np.exp(1j * 2.5)
    phase = figures.reference_phase(obj, amplitude > 0.5)
    assert np.abs(phase[amplitude > 0.5]).max() < 1e-6


def test_quantised_volume_round_trips_within_its_resolution_and_keeps_nan():
    rng = np.random.default_rng(0)
    values = rng.uniform(-math.pi, math.pi, (5, 6, 7)).astype(np.float32)
    values[0, 0, :3] = np.nan
    spec = encoding.encode_volume(values, lo=-math.pi, hi=math.pi)
    back = encoding.decode_volume(spec)
    assert np.array_equal(np.isnan(back), np.isnan(values))
    finite = np.isfinite(values)
    assert np.abs(back[finite] - values[finite]).max() <= 2 * math.pi / 254 / 2 + 1e-6


def test_binning_brings_large_volumes_under_the_limit_by_mean():
    volume = np.ones((200, 130, 64), dtype=np.float32)
    binned, factor = encoding.bin_volume(volume, max_side=96)
    assert factor == 3 and binned.shape == (66, 43, 21)
    np.testing.assert_allclose(binned, 1.0)


def test_calculated_intensity_is_scaled_to_the_measured_one():
    amplitude, coords = ball(16, 4.0)
    obj = amplitude * np.exp(1j * 0.2 * coords[1])
    measured = 37.0 * np.abs(farfield(obj)) ** 2
    mask = np.zeros(measured.shape, bool)
    mask[8, 8, :4] = True
    calc = figures.scaled_calculated_intensity(obj, measured, mask)
    np.testing.assert_allclose(calc, measured, rtol=1e-4, atol=1e-3 * measured.max())


def test_log_intensity_is_blank_at_masked_pixels():
    intensity = np.full((4, 4), 99.0)
    mask = np.zeros((4, 4), bool)
    mask[1, 2] = True
    out = figures.log_intensity(intensity, mask)
    assert np.isnan(out[1, 2]) and np.isclose(out[0, 0], 2.0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ER**20,HIO**160,ER**20", [("ER", 0, 20), ("HIO", 20, 180), ("ER", 180, 200)]),
        ("(ER**2,HIO**3)**2", [("ER", 0, 2), ("HIO", 2, 5), ("ER", 5, 7), ("HIO", 7, 10)]),
        ("3*(20*ER+180*HIO)+20*ER", [("ER", 0, 20), ("HIO", 20, 200), ("ER", 200, 220),
                                     ("HIO", 220, 400), ("ER", 400, 420), ("HIO", 420, 600),
                                     ("ER", 600, 620)]),
        ("RAAR**50", [("RAAR", 0, 50)]),
    ],
)
def test_algorithm_schedules_become_shaded_iteration_ranges(text, expected):
    segments = figures.schedule_segments(text)
    assert [(s["name"], s["start"], s["end"]) for s in segments] == expected


def test_unreadable_schedule_gives_no_segments_rather_than_an_error():
    assert figures.schedule_segments("ER**,HIO") == []


def test_error_curves_shade_one_segment_per_algorithm_when_lengths_match():
    curves = {"chi2": np.logspace(0, -3, 400), "chi2_free": np.logspace(0, -2, 400)}
    fig = figures.error_curves_figure(curves, algorithm="(ER**20,HIO**160,ER**20)**2")
    assert [s["name"] for s in fig["meta"]["segments"]] == ["ER", "HIO", "ER", "HIO", "ER"]
    assert len(fig["layout"]["shapes"]) == 5
    assert fig["layout"]["yaxis"]["type"] == "log"
    mismatched = figures.error_curves_figure(curves, algorithm="ER**10")
    assert mismatched["layout"]["shapes"] == []


def test_segment_numbers_of_the_engine_place_the_shading_and_other_curves_stay_off_the_error_axis():
    n = 30
    curves = {"chi2": np.logspace(0, -2, n), "chi2_free": np.where(np.arange(n) % 10 == 9, 0.1, np.nan),
              "segment": np.repeat([0, 1, 2], 10), "support_fraction": np.full(n, 0.05), "iteration_seconds": np.ones(n)}
    fig = figures.error_curves_figure(curves, algorithm="ER**2,HIO**3")  # schedule length differs on purpose
    assert [(s["name"], s["start"], s["end"]) for s in fig["meta"]["segments"]] == [("", 0, 10), ("", 10, 20), ("", 20, 30)]
    names = {t["name"]: t for t in fig["data"]}
    assert set(names) == {"χ²", "χ² free", "support fraction"}
    assert names["support fraction"]["yaxis"] == "y2" and names["χ² free"]["connectgaps"]
    named = figures.error_curves_figure(curves, algorithm="ER**10,HIO**10,ER**10")
    assert [s["name"] for s in named["meta"]["segments"]] == ["ER", "HIO", "ER"]


def test_prtf_resolution_is_the_one_over_e_crossing():
    freq = np.linspace(0, 1, 101)
    prtf = np.exp(-freq / 0.3)  # crosses 1/e at 0.3
    fig = figures.prtf_figure(freq, prtf)
    assert abs(fig["meta"]["resolution"] - 0.3) < 2e-3
    assert figures.prtf_resolution(freq, np.ones_like(freq)) is None
    assert fig["meta"]["resolution_nm"] is None  # no voxel size, pixels only
    sized = figures.prtf_figure(freq, prtf, voxel_size_m=(22.5e-9, 19.6e-9, 19.6e-9))
    assert sized["meta"]["resolution_nm"] == pytest.approx([0.5 / 0.3 * 22.5, 0.5 / 0.3 * 19.6, 0.5 / 0.3 * 19.6], rel=1e-2)
    assert "= 38 × 33 × 33 nm along z, y, x" in sized["layout"]["annotations"][-1]["text"]
    q = np.linspace(0, 0.3, 31)  # the true |q| in nm⁻¹ (phase_file with a known geometry)
    in_q = figures.prtf_figure(q, np.exp(-q / 0.1), freq_unit=figures.Q_UNIT)
    assert in_q["layout"]["xaxis"]["title"]["text"] == "|q| (nm⁻¹)"
    assert f"π / q = {math.pi / 0.1:.1f} nm" in in_q["layout"]["annotations"][-1]["text"]


def test_loss_curves_accept_dicts_and_lists_of_epochs():
    as_dict = figures.loss_curves_figure({"epoch": [1, 2, 3], "train_loss": [1.0, 0.5, 0.3], "val_loss": [1.1, 0.6, 0.4]})
    as_list = figures.loss_curves_figure([{"epoch": 1, "train_loss": 1.0, "val_loss": 1.2}, {"epoch": 2, "train_loss": 0.5}])
    assert [t["name"] for t in as_dict["data"]] == ["train loss", "val loss"]
    assert as_list["data"][1]["y"] == [1.2, None]
    assert figures.loss_curves_figure({}) is None


def test_result_page_figures_of_a_64_cube_fit_in_two_megabytes_of_strict_json():
    amplitude, coords = ball(64, 10.0)
    obj = (amplitude * np.exp(1j * 0.3 * coords[2])).astype(np.complex64)
    record = SimpleNamespace(
        obj=obj, support=amplitude > 0.1, intensity=(1e6 * np.abs(farfield(obj)) ** 2).astype(np.float32),
        mask=np.zeros(obj.shape, bool), curves={"chi2": np.logspace(0, -3, 600)}, metrics={"chi2": 1e-3, "llk": float("nan")},
        algorithm="(ER**20,HIO**160,ER**20)**3", arrays={"prtf": np.linspace(1, 0, 20), "prtf_freq": np.linspace(0, 1, 20)},
    )
    bundle = figures.result_bundle(record)
    text = json.dumps(bundle, allow_nan=False)
    assert len(text) < 2_000_000
    assert bundle["metrics"]["llk"] is None
    assert bundle["prtf"]["meta"]["resolution"] == pytest.approx(1 - 1 / math.e, abs=0.01)
    # a phase ramp of 0.3 rad/voxel along x moves the Bragg peak by 0.3 * 64 / 2π ≈ 3 pixels
    assert bundle["diffraction"]["index"] == [32, 32, 32 + round(0.3 * 64 / (2 * math.pi))]
    assert bundle["object"]["origin"] == [32 - 10 - 2] * 3  # support from index 22, 2-voxel margin


def test_a_fitted_psf_is_drawn_and_blurs_the_calculated_diffraction():
    from reconstruction.phasing.coherence import PartialCoherence, psf_kernel

    amplitude, _ = ball(32, 5.0)
    obj = amplitude.astype(np.complex64)
    kernel = np.fft.fftshift(psf_kernel(obj.shape, PartialCoherence(fwhm=1.5)))
    intensity = (1e6 * np.abs(farfield(obj)) ** 2).astype(np.float32)
    record = SimpleNamespace(obj=obj, support=amplitude > 0.1, intensity=intensity, mask=None, curves={},
                             metrics={"psf_fwhm_px": 1.5}, algorithm="", arrays={"psf": kernel})  # fmt: skip
    bundle = figures.result_bundle(record)
    fig = bundle["psf"]
    assert [t["name"] for t in fig["data"]] == [f"along {a} (FWHM 1.50 px)" for a in "zyx"]
    assert fig["meta"]["fwhm_px"] == pytest.approx([1.5] * 3, rel=1e-3)
    json.dumps(bundle, allow_nan=False)
    # the calculated pattern is blurred: its speckle minima fill in, the measured ones do not
    blurred = figures.scaled_calculated_intensity(obj, intensity, None, kernel)
    sharp = figures.scaled_calculated_intensity(obj, intensity)
    assert blurred.sum() == pytest.approx(sharp.sum(), rel=0.05)
    assert np.percentile(blurred / blurred.max(), 5) > 3 * np.percentile(sharp / sharp.max(), 5)
    assert figures.result_bundle(SimpleNamespace(**{**vars(record), "arrays": {}}))["psf"] is None
    assert figures.psf_figure(np.full((4, 4, 4), np.nan)) is None


def test_two_dimensional_results_get_images_without_isosurface():
    yy, xx = np.mgrid[:32, :32] - 16
    amplitude = (np.hypot(yy, xx) < 6).astype(np.float64)
    obj = amplitude * np.exp(1j * 0.1 * xx)
    record = SimpleNamespace(obj=obj, support=amplitude > 0, intensity=np.abs(farfield(obj)) ** 2,
                             mask=None, curves={}, metrics={}, algorithm="", arrays={})  # fmt: skip
    bundle = figures.result_bundle(record)
    assert bundle["object"]["isosurface"] is None
    assert len(bundle["object"]["slices"]["data"]) == 2
    assert len(bundle["diffraction"]["slices"]["data"]) == 2
    json.dumps(bundle, allow_nan=False)
    # shown as images: row 0 at the top (y decreasing upwards), as the EDF / detector image reads
    for figure in (bundle["object"]["slices"], bundle["diffraction"]["slices"]):
        y_range = figure["layout"]["yaxis"]["range"]
        assert y_range[0] > y_range[1]
    amplitude3d, _ = ball(16, 4.0)
    slices3d = figures.object_bundle(amplitude3d.astype(np.complex64), amplitude3d > 0.5)["slices"]
    assert slices3d["layout"]["yaxis"]["range"][0] < slices3d["layout"]["yaxis"]["range"][1]


def test_the_phase_ramp_is_removed_on_request_and_reported_in_rad_per_voxel():
    amplitude, coords = ball(32, 8.0)
    ramp = np.array([0.12, -0.2, 0.05])
    strain = 0.5 * np.exp(-(coords**2).sum(axis=0) / 20.0)  # a bump: not a ramp, it must stay
    obj = amplitude * np.exp(1j * (np.tensordot(ramp, coords, axes=1) + strain))
    support = amplitude > 0.5
    bundle = figures.object_bundle(obj, support, remove_ramp=True)
    assert np.allclose(bundle["phase_ramp"], ramp, atol=2e-3)
    assert figures.object_bundle(obj, support)["phase_ramp"] is None
    flat = figures.reference_phase(figures._without_phase_ramp(obj, support)[0], support)
    expected = strain - np.average(strain[support], weights=amplitude[support])
    assert np.abs(wrap(flat[support] - expected[support])).max() < 0.05


def test_units_are_nm_only_when_the_voxel_size_is_known_along_every_axis():
    full = figures.units_info((2e-8, 1e-8, 1e-8), 3)
    assert full["unit"] == "nm" and full["voxel_size_nm"] == pytest.approx([20.0, 10.0, 10.0])
    partial = figures.units_info((None, 1e-8, 1e-8), 3)
    assert partial["unit"] == "voxel" and partial["voxel_size_nm"] is None
    assert "known along y, x only" in partial["note"]
    assert figures.units_info(None, 2)["unit"] == "pixel"


def test_isosurface_in_nm_is_the_voxel_isosurface_scaled_per_axis():
    amplitude, _ = ball(16, 5.0)
    phase = np.zeros_like(amplitude)
    vox = figures.isosurface_figure(amplitude, phase)
    nm = figures.isosurface_figure(amplitude, phase, voxel_size_nm=(30.0, 20.0, 10.0))
    for key, size in (("x", 10.0), ("y", 20.0), ("z", 30.0)):
        scaled, plain = (encoding.decode_typed_array(f["data"][0][key]) for f in (nm, vox))
        np.testing.assert_allclose(scaled, size * plain, rtol=1e-6)
    assert nm["layout"]["scene"]["xaxis"]["title"]["text"] == "x (nm)"
    assert vox["layout"]["scene"]["xaxis"]["title"]["text"] == "x (voxel)"


def test_diffraction_of_a_ball_has_its_first_minimum_at_q_4_493_over_r_in_nm():
    n, radius, d_nm = 64, 6.0, 5.0
    amplitude, coords = ball(n, radius)
    intensity = np.abs(farfield(amplitude.astype(np.complex64))) ** 2
    bundle = figures.diffraction_bundle(intensity.astype(np.float32), voxel_size_m=(d_nm * 1e-9,) * 3)
    assert bundle["q_step"] == pytest.approx([2 * math.pi / (n * d_nm)] * 3)
    trace = bundle["slices"]["data"][0]  # measured, slice along z through the peak: qx horizontal
    layout = bundle["slices"]["layout"]
    assert layout["xaxis"]["title"]["text"] == "qx (nm⁻¹)" and layout["yaxis"]["title"]["text"] == "qy (nm⁻¹)"
    row = encoding_decode(trace["z"])[n // 2]
    q = trace["x0"] + trace["dx"] * np.arange(row.size)
    assert q[n // 2] == pytest.approx(0.0)  # q = 0 at the peak
    right = row[n // 2:]
    first_min = n // 2 + int(np.argmax(np.diff(right) > 0))  # first pixel where it rises again
    # the ball's edge is one voxel wide: effective radius ≈ radius + 0.5 (the 0.5 contour)
    expected = 4.493 / ((radius + 0.5) * d_nm)
    assert abs(q[first_min] - expected) <= trace["dx"]


def test_diffraction_axes_stay_in_pixels_where_the_voxel_size_is_unknown():
    amplitude, _ = ball(16, 4.0)
    intensity = (np.abs(farfield(amplitude.astype(np.complex64))) ** 2).astype(np.float32)
    unknown = figures.diffraction_bundle(intensity)
    assert unknown["q_step"] is None
    assert unknown["slices"]["layout"]["xaxis"]["title"]["text"] == "x (pixel)"
    # detector axes known, rocking axis not (no Bragg angle): q in-plane, frames along z
    partial = figures.diffraction_bundle(intensity, voxel_size_m=(None, 4e-9, 4e-9))
    layout = partial["slices"]["layout"]
    assert layout["xaxis"]["title"]["text"] == "qx (nm⁻¹)" and "scaleanchor" in layout["yaxis"]
    assert layout["yaxis2"]["title"]["text"] == "z (pixel)" and "scaleanchor" not in layout["yaxis2"]


def encoding_decode(spec: dict) -> np.ndarray:
    """Decode a plotly typed-array spec back to numpy."""
    import base64

    dtype = {"f4": np.float32, "f8": np.float64}[spec["dtype"]]
    shape = tuple(int(s) for s in str(spec["shape"]).split(","))
    return np.frombuffer(base64.b64decode(spec["bdata"]), dtype=dtype).reshape(shape)


def test_the_bundles_phase_is_blank_in_the_supports_low_amplitude_rim():
    """A loose (shrink-wrapped) support: phase is drawn only where the amplitude reaches 10 %."""
    amplitude, coords = ball(16, 4.0)
    obj = amplitude * np.exp(1j * 0.5 * np.tanh(coords[2]))
    support = np.abs(coords).max(axis=0) <= 6  # a 13³ box around the ball
    bundle = figures.object_bundle(obj, support)
    iz = bundle["index"][0]
    phase_img = encoding.decode_typed_array(bundle["slices"]["data"][3]["z"])
    box = figures.support_bbox(support)
    amp_img = (amplitude / amplitude.max())[box][iz]
    assert np.array_equal(np.isnan(phase_img), ~(support[box][iz] & (amp_img >= figures.PHASE_SHOWN_ABOVE)))
    assert np.isnan(phase_img).any() and (~np.isnan(phase_img)).any()


def test_the_displacement_view_colours_by_u_along_g_in_pm_where_g_is_known():
    """A bent crystal (u = 40 pm · (x/4)², phase wrapping): with |G| the slices, volume and
    isosurface show u in pm on a diverging scale; without it, the phase, and the switch is off."""
    amplitude, coords = ball(24, 7.0)
    g = 2 * math.pi / 0.2355e-9  # Au(111), 1/m
    u_true_pm = 40.0 * (coords[2] / 4.0) ** 2
    obj = (amplitude * np.exp(-1j * g * u_true_pm * 1e-12)).astype(np.complex64)  # ρ = |ρ| exp(−i G·u)
    support = amplitude > 0.05
    plain = figures.object_bundle(obj, support)
    assert plain["field"]["name"] == "phase" and plain["displacement"]["available"] is False
    assert figures.object_bundle(obj, support, g_norm_per_m=g)["displacement"] == figures.displacement_info(g, False)
    bundle = figures.object_bundle(obj, support, g_norm_per_m=g, displacement=True)
    info = bundle["displacement"]
    assert info["available"] and info["shown"] and info["d_spacing_nm"] == pytest.approx(0.2355)
    assert bundle["field"] == {"name": "displacement", "label": "u", "title": "u along G (pm)"}
    slices = bundle["slices"]
    assert slices["layout"]["coloraxis2"]["colorbar"]["title"]["text"] == "u along G (pm)"
    assert slices["layout"]["annotations"][3]["text"].startswith("u, z = ")
    assert "pm" in slices["data"][3]["hovertemplate"]
    # the z slice through the centre: u minus its amplitude-weighted mean over the crystal
    shown = support & (amplitude / amplitude.max() >= figures.PHASE_SHOWN_ABOVE)
    box = figures.support_bbox(support)
    expected = u_true_pm - np.average(u_true_pm[shown], weights=amplitude[shown])
    iz = bundle["index"][0]
    image = encoding.decode_typed_array(slices["data"][3]["z"])
    inside = shown[box][iz]
    np.testing.assert_allclose(image[inside], expected[box][iz][inside], atol=0.05)
    lo, hi = slices["layout"]["coloraxis2"]["cmin"], slices["layout"]["coloraxis2"]["cmax"]
    assert lo == -hi and hi == pytest.approx(np.percentile(np.abs(expected[shown]), 99), rel=1e-2)
    stats = bundle["field_stats"]  # over the crystal's core, amplitude >= 30 %
    core = shown & (amplitude / amplitude.max() >= figures.FIELD_STATS_ABOVE)
    assert stats["count"] == int(core.sum()) and stats["unit"] == "pm"
    assert stats["mean"] == pytest.approx(float(expected[core].mean()), abs=0.05)
    assert stats["std"] == pytest.approx(float(expected[core].std()), abs=0.05)
    assert stats["text"].startswith("u over the crystal (amplitude ≥ 30 %") and stats["text"].endswith(" pm")
    assert plain["field_stats"]["unit"] == "rad"
    # u depends on x only, so the 99th percentile is the largest |u| itself (to float rounding)
    assert hi <= np.abs(expected[shown]).max() * (1 + 1e-6)
    volume = bundle["phase"]
    assert (volume["lo"], volume["hi"]) == (lo, hi)
    trace = bundle["isosurface"]["data"][0]
    assert trace["colorbar"]["title"]["text"] == "u along G (pm)" and (trace["cmin"], trace["cmax"]) == (lo, hi)
    verts = np.stack([encoding.decode_typed_array(trace[k]) for k in ("z", "y", "x")], axis=1)
    values = encoding.decode_typed_array(trace["intensity"])
    x_local = verts[:, 2] - 12.0  # full-box positions (the crop's origin is added): centre 12
    want = 40.0 * (x_local / 4.0) ** 2 - np.average(u_true_pm[shown], weights=amplitude[shown])
    assert np.median(np.abs(values - want)) < 1.0 and np.isfinite(values).all()
