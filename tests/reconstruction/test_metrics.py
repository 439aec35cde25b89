"""Metrics against analytic truth: Fourier errors, free pixels, alignment, PRTF, post-processing."""

from __future__ import annotations

import numpy as np
import pytest

from reconstruction.errors import InvalidDataError
from reconstruction.fourier import farfield
from reconstruction.metrics import (
    align_to,
    centre_object,
    compare_to_truth,
    fourier_errors,
    fourier_shift,
    free_pixel_mask,
    prtf,
    remove_phase_ramp,
    spectral_weight,
    twin_of,
    unwrap_phase,
    zero_phase_offset,
)
from tests.reconstruction.phasing_objects import counts, faceted_crystal


def smooth_object(n: int = 32) -> np.ndarray:
    """A smooth (nearly band-limited) complex blob, so that sub-pixel shifts are exact."""
    g = (np.indices((n,) * 3) - n // 2).astype(float)
    amp = np.exp(-((g[0] / 4.0) ** 2 + (g[1] / 3.5) ** 2 + (g[2] / 3.0) ** 2))
    phase = 1.2 * np.sin((g[0] + 2) / 6.0) * np.cos(g[1] / 7.0 + 0.5) + 0.3 * g[2] / 4
    return amp * np.exp(1j * phase)


def test_chi2_and_llk_of_the_true_object_on_its_own_intensity_are_zero_whatever_its_scale():
    obj = faceted_crystal(16, 6)
    intensity = counts(obj, 1e6, seed=None)
    errors = fourier_errors(3.7 * np.exp(0.4j) * obj, intensity)
    assert errors["chi2"] < 1e-10 and abs(errors["llk"]) < 1e-8
    # Parseval: the fitted amplitude scale recovers sqrt(photons / sum |obj|^2) / 3.7
    assert errors["scale"] == pytest.approx(np.sqrt(1e6 / np.sum(np.abs(obj) ** 2)) / 3.7, rel=1e-5)


def test_chi2_is_blind_to_shift_twin_and_global_phase_of_the_object():
    obj = faceted_crystal(16, 6)
    intensity = counts(obj, 1e6, seed=None)
    for candidate in (np.roll(obj, (2, -1, 3), axis=(0, 1, 2)), twin_of(obj), 1j * obj):
        assert fourier_errors(candidate, intensity)["chi2"] < 1e-10


def test_poisson_llk_of_the_truth_is_about_one_half_per_pixel_of_bright_data():
    obj = faceted_crystal(16, 6)
    intensity = counts(obj, 1e9, seed=1)
    bright = counts(obj, 1e9, seed=None) > 50  # the deviance -> chi-square(1)/2 limit
    errors = fourier_errors(obj, np.where(bright, intensity, 0), mask=~bright)
    assert 0.45 < errors["llk"] < 0.55


def test_masked_pixels_are_ignored_and_free_pixels_only_count_in_the_free_values():
    obj = faceted_crystal(16, 6)
    intensity = counts(obj, 1e6, seed=None)
    spoiled = intensity.copy()
    mask = np.zeros(obj.shape, bool)
    mask[8, 8, 5:10] = True
    spoiled[mask] = 1e9
    assert fourier_errors(obj, spoiled, mask=mask)["chi2"] < 1e-10
    free = free_pixel_mask(mask, fraction=0.05, seed=3)
    spoiled[free] *= 1.2
    errors = fourier_errors(obj, spoiled, mask=mask, free_mask=free)
    assert errors["chi2"] < 1e-10 and errors["chi2_free"] > 1e-3
    assert errors["n_free"] == free.sum() and errors["n_pixels"] == (~mask & ~free).sum()


def test_free_pixels_are_a_seeded_fraction_of_the_unmasked_pixels():
    mask = np.zeros((20, 20, 20), bool)
    mask[:5] = True
    free = free_pixel_mask(mask, fraction=0.05, seed=7)
    assert not (free & mask).any()
    assert free.sum() == round(0.05 * (~mask).sum())
    assert np.array_equal(free, free_pixel_mask(mask, fraction=0.05, seed=7))
    assert not np.array_equal(free, free_pixel_mask(mask, fraction=0.05, seed=8))


def test_compare_to_truth_undoes_shift_twin_global_phase_and_phase_ramp():
    truth = smooth_object()
    g = np.indices(truth.shape)[0] - 16
    ramp = 2 * np.pi * 2 / 32  # two fringes across the box
    for twin in (False, True):
        moving = twin_of(truth) if twin else truth
        moving = fourier_shift(moving, (1.5, -2.25, 0.5)) * 2.5 * np.exp(1j * (0.7 + ramp * g))
        result = compare_to_truth(moving, truth)
        assert result["twin"] is twin
        assert result["rel_error"] < 2e-3 and result["phase_rms"] < 2e-3
        assert result["ssim"] > 0.999
        assert result["aligned"].shape == truth.shape


def test_compare_to_truth_scores_a_wrong_object_badly_and_refuses_other_shapes():
    truth = faceted_crystal(24, 8)
    other = faceted_crystal(24, 8, seed=5) * np.exp(0.5j)
    result = compare_to_truth(other, truth)
    assert result["rel_error"] > 0.2 and result["ssim"] < 0.95
    with pytest.raises(InvalidDataError, match="shape"):
        compare_to_truth(truth[:-1], truth)


def test_align_to_without_ramp_keeps_the_shift_and_twin_search():
    truth = smooth_object()
    aligned, how = align_to(np.roll(twin_of(truth), 3, axis=1), truth, ramp=False)
    assert how.twin and np.linalg.norm(aligned - truth) / np.linalg.norm(truth) < 1e-6


def test_prtf_of_identical_runs_is_one_and_of_random_phases_falls_below_one_over_e():
    obj = faceted_crystal(24, 8)
    intensity = counts(obj, 1e8, seed=None)
    same = prtf(np.stack([obj, obj]), intensity)
    assert np.nanmin(same["prtf"]) > 0.999 and np.isnan(same["cross_freq"])
    rng = np.random.default_rng(0)
    runs = []
    for _ in range(8):
        f = farfield(obj) * np.exp(1j * rng.uniform(-np.pi, np.pi, obj.shape) * (rng.random() > -1))
        runs.append(np.fft.fftshift(np.fft.ifftn(np.fft.ifftshift(f), norm="ortho")))
    noisy = prtf(np.stack(runs), intensity)
    assert noisy["cross_freq"] < 0.1 and noisy["resolution_pixel"] > 5


def test_spectral_weight_sums_to_one_and_decays_for_a_compact_object():
    freq, weight = spectral_weight(counts(faceted_crystal(24, 8), 1e8, seed=None))
    assert weight.sum() == pytest.approx(1.0)
    assert weight[: len(weight) // 2].sum() > 0.8  # most of the power at low frequency
    assert freq[0] > 0 and freq[-1] < 0.5


def test_phase_ramp_and_offset_removal_and_centring_give_back_the_plain_object():
    obj = faceted_crystal(32, 12) * np.exp(1j * 0.0)
    amp = np.abs(obj)
    g = np.indices(obj.shape) - 16
    ramped = amp * np.exp(1j * (0.9 + 0.3 * g[0] - 0.2 * g[2]))
    flat = zero_phase_offset(remove_phase_ramp(ramped), support=amp > 0.5)
    assert np.abs(np.angle(flat[amp > 0.5])).max() < 1e-4
    moved = np.roll(obj, (5, -4, 3), axis=(0, 1, 2))
    centred, roll = centre_object(moved)
    assert np.allclose(centred, centre_object(obj)[0]) and roll != (0, 0, 0)
    com = [np.sum(g_ * np.abs(centred)) / np.abs(centred).sum() for g_ in np.indices(obj.shape)]
    assert np.allclose(com, 16, atol=0.5)


def test_unwrapping_recovers_a_phase_gradient_wider_than_two_pi():
    obj = faceted_crystal(32, 16)
    support = np.abs(obj) > 0.5
    g = np.indices(obj.shape)[0] - 16
    true_phase = 0.8 * g  # 16 px across: 12.8 rad
    unwrapped = unwrap_phase(np.abs(obj) * np.exp(1j * true_phase), support=support)
    diff = (unwrapped - true_phase)[support]
    assert np.ptp(diff) < 1e-4 and np.isnan(unwrapped[~support]).all()


def test_the_displacement_field_is_the_unwrapped_phase_over_g_with_its_mean_removed():
    """A bent crystal: u(r) = 150 pm · (z² − y²) / 8² along G of Au(111) wraps the phase twice;
    from the object |ρ| exp(−i G·u), u = −φ / |G| comes back to a rigid shift, NaN outside, and
    the twin gives −u."""
    from reconstruction.metrics import displacement_field, twin_of

    obj = faceted_crystal(32, 16)
    support = np.abs(obj) > 0.5
    z, y, _ = np.indices(obj.shape) - 16
    u_true = 150e-12 * (z**2 - y**2) / 64.0  # metres
    g = 2 * np.pi / 2.3546e-10
    assert np.ptp(g * u_true[support]) > 4 * np.pi  # the phase wraps
    u = displacement_field(np.abs(obj) * np.exp(-1j * g * u_true), g, support=support)
    diff = (u - u_true)[support]
    assert np.ptp(diff) < 1e-15 and np.isnan(u[~support]).all()
    amp = np.abs(obj)[support]
    assert abs(np.sum(amp * u[support]) / amp.sum()) < 1e-18  # mean displacement 0 (u ~ 1e-10 m)
    u_twin = displacement_field(twin_of(np.abs(obj) * np.exp(-1j * g * u_true)), g, support=twin_of(support.astype(np.float32)).real > 0.5)
    assert np.allclose(twin_of(u_twin)[support], -u[support], atol=1e-15)
    with pytest.raises(ValueError, match="positive"):
        displacement_field(obj, 0.0)


def test_a_displaced_atomic_lattice_diffracts_to_an_object_of_phase_minus_g_dot_u():
    """The sign of u: 400 atoms at x_n = n a + u(n a), the scattered amplitude Σ exp(−i q x_n)
    sampled around G = 2π/a with a real-space voxel of 4 a, brought back by the project's
    ``backpropagate``: the object's phase is −G·u, so ``displacement_field`` returns u itself."""
    from reconstruction.fourier import backpropagate
    from reconstruction.metrics import displacement_field

    a, n_atoms, m = 1.0, 400, 256
    atoms = (np.arange(n_atoms) - n_atoms // 2) * a

    def u_of(x):
        return 0.1 * a * np.sin(2 * np.pi * x / (n_atoms * a))

    g = 2 * np.pi / a
    dx = 4 * a
    q = g + (np.arange(m) - m // 2) * 2 * np.pi / (m * dx)
    amplitude = np.exp(-1j * np.outer(q, atoms + u_of(atoms))).sum(axis=1)
    obj = backpropagate(amplitude)
    x = (np.arange(m) - m // 2) * dx
    inside = np.abs(x) < 0.4 * n_atoms * a
    u = displacement_field(np.stack([obj, obj]), g, support=np.stack([inside, inside]))[0]  # as a 2D image
    expected = u_of(x) - np.average(u_of(x)[inside], weights=np.abs(obj)[inside])
    np.testing.assert_allclose(u[inside], expected[inside], atol=2e-3 * a)  # 0.1 a peak: sign and size


def test_the_object_pixel_size_is_wavelength_times_distance_over_detector_width():
    from reconstruction.io.types import Metadata
    from reconstruction.metrics import object_pixel_size_m

    meta = Metadata(distance_m=0.5, x_pixel_size_m=55e-6, y_pixel_size_m=55e-6,
                    wavelength_m=1.3776e-10)
    assert object_pixel_size_m(meta, 64) == pytest.approx(1.3776e-10 * 0.5 / (64 * 55e-6))
    assert object_pixel_size_m(Metadata(), 64) is None


@pytest.mark.parametrize("spread", [1.0, 2.8])
def test_a_ramp_is_found_under_a_large_non_linear_phase(spread):
    """A radial phase oscillation of ±2.8 rad wraps the residual of a least-squares fit; the
    refinement must not leave the coherent-sum peak (it moved to 0.055 rad/px before)."""
    from reconstruction.metrics.alignment import fit_phase_ramp

    n = 128
    yy, xx = np.mgrid[:n, :n] - n // 2
    r = np.hypot(yy, xx)
    ramp = (0.11, -0.012)
    obj = (r < 40) * np.exp(1j * (spread * np.cos(r / 6) + ramp[0] * yy + ramp[1] * xx))
    assert np.allclose(fit_phase_ramp(obj, np.abs(obj).astype(complex)), ramp, atol=2e-3)


def test_q_shells_of_a_cubic_grid_are_the_pixel_shells_and_a_sheared_grid_bins_by_true_q():
    from reconstruction.metrics.prtf import q_shell_average, shell_average

    rng = np.random.default_rng(0)
    values = rng.random((16, 16, 16))
    freq, curve = shell_average(values)
    q, curve_q = q_shell_average(values, np.eye(3) * 2 * np.pi / 16)  # voxel 1: q = 2π × freq
    np.testing.assert_allclose(q, 2 * np.pi * freq)
    np.testing.assert_allclose(curve_q, curve, rtol=1e-12, equal_nan=True)
    # a sheared, anisotropic basis: the shells must follow |B m|, whatever the pixel indices
    b = np.array([[1.0, 0.3, 0.0], [0.0, 0.8, 0.1], [0.2, 0.0, 1.3]]) * 1e7
    m = np.stack(np.meshgrid(*(np.arange(16) - 8 for _ in range(3)), indexing="ij")).reshape(3, -1)
    true_q = np.linalg.norm(b @ m, axis=0).reshape(16, 16, 16)
    q, mean_q = q_shell_average(true_q, b)
    ok = np.isfinite(mean_q)
    assert ok.sum() >= 6 and np.allclose(mean_q[ok], q[ok], rtol=0.08, atol=0.5 * (q[1] - q[0]))


def test_phasing_a_scan_with_known_geometry_gives_the_prtf_against_true_q(tmp_path):
    from reconstruction.fourier import intensity_of
    from reconstruction.io import DiffractionData, Metadata, read_result, write_prepared
    from reconstruction.phasing.workflow import phase_file, q_basis_of

    z, y, x = np.indices((24, 24, 24)) - 12
    obj = ((x / 5.0) ** 2 + (y / 4.0) ** 2 + (z / 3.5) ** 2 < 1) * np.exp(0.2j * x)
    intensity = np.random.default_rng(0).poisson(intensity_of(obj) * 1e7 / np.abs(obj).sum() ** 2).astype(np.float32)
    meta = Metadata(wavelength_m=1.3776e-10, distance_m=0.5, x_pixel_size_m=55e-6, y_pixel_size_m=55e-6,
                    rocking_angles_deg=0.2 + 0.01 * np.arange(24), rocking_axis="theta",
                    extra={"instrument_name": "APS 34-ID-C", "positioners_deg": {"delta": 32.174, "gamma": 12.6346}})
    assert q_basis_of(meta, (24, 24, 24)).shape == (3, 3)
    assert q_basis_of(Metadata(), (24, 24, 24)) is None
    write_prepared(tmp_path / "p.cxi", DiffractionData(intensity=intensity, mask=np.zeros(intensity.shape, bool), metadata=meta))
    summary = phase_file(tmp_path / "p.cxi", tmp_path / "r.cxi", algorithm="ER**10,HIO**30,ER**10", cycles=1, runs=2)
    record = read_result(tmp_path / "r.cxi")
    assert record.arrays["prtf_q"].shape == record.arrays["prtf_q_per_nm"].shape
    assert 0 < record.arrays["prtf_q_per_nm"].max() < 0.5  # |q| up to ~0.2 nm⁻¹ on this grid
    assert "prtf_resolution_m" in summary["metrics"]
