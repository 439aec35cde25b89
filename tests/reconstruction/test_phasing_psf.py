"""Partial coherence: the PSF kernel, its Richardson-Lucy fit and phasing with it (physics, not mocks)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from reconstruction.errors import ConfigError, InvalidDataError
from reconstruction.fourier import blur_intensity, intensity_of
from reconstruction.io import read_result
from reconstruction.metrics import compare_to_truth, fourier_errors, free_pixel_mask
from reconstruction.phasing import phase_retrieve
from reconstruction.phasing.coherence import (
    PartialCoherence,
    PsfModel,
    fwhm_of,
    parse_psf,
    psf_kernel,
)
from reconstruction.phasing.engine import Engine
from reconstruction.simulate.detector import coherence_blur
from tests.reconstruction.phasing_objects import faceted_crystal, random_engine_batch

SIGMA_TO_FWHM = 2.0 * np.sqrt(2.0 * np.log(2.0))


def centred_kernel(shape, **settings) -> np.ndarray:
    """The initial kernel of ``settings``, centred (peak at N // 2)."""
    return np.fft.fftshift(psf_kernel(shape, PartialCoherence(**settings)))


@pytest.mark.parametrize("model", ["gaussian", "pseudo-voigt", "lorentzian"])
def test_a_kernel_is_normalised_symmetric_peaked_at_its_centre_and_zero_outside_its_window(model):
    k = centred_kernel((20, 17, 16), model=model, fwhm=1.5, half_width=3)
    assert k.sum() == pytest.approx(1.0, abs=1e-6) and (k >= 0).all()
    assert np.unravel_index(np.argmax(k), k.shape) == (10, 8, 8)
    np.testing.assert_allclose(k[1:, :, 1:], k[1:, :, 1:][::-1, ::-1, ::-1], rtol=1e-5)
    inside = np.zeros(k.shape, bool)
    inside[7:14, 5:12, 5:12] = True
    assert k[~inside].max() == 0 and k[inside].min() > 0


@pytest.mark.parametrize("fwhm", [0.8, 1.5, 3.0])
def test_the_fwhm_of_a_sampled_gaussian_is_read_back_exactly(fwhm):
    k = centred_kernel((32, 32), model="gaussian", fwhm=fwhm, half_width=10)
    assert fwhm_of(k) == pytest.approx([fwhm, fwhm], rel=1e-4)
    delta = np.zeros((9, 9, 9))
    delta[4, 4, 4] = 1
    assert fwhm_of(delta) == [0.0, 0.0, 0.0]


def test_blurring_keeps_the_photons_a_delta_is_the_identity_and_a_gaussian_is_the_simulators():
    rng = np.random.default_rng(0)
    intensity = rng.gamma(0.5, 100.0, size=(24, 24, 24))
    delta = np.zeros(intensity.shape)
    delta[12, 12, 12] = 1
    np.testing.assert_allclose(blur_intensity(intensity, delta), intensity, rtol=1e-9, atol=1e-9)
    # the simulator multiplies the spectrum by a continuous Gaussian's transform; a Gaussian
    # sampled in real space matches it once it spans a few pixels (5 % apart at sigma 0.8 px)
    sigma = 1.5
    k = centred_kernel(intensity.shape, model="gaussian", fwhm=SIGMA_TO_FWHM * sigma, half_width=10)
    blurred = blur_intensity(intensity, k)
    assert blurred.sum() == pytest.approx(intensity.sum(), rel=1e-6)  # a float32 kernel
    reference = coherence_blur(intensity.astype(np.float32), sigma)
    np.testing.assert_allclose(blurred, reference, rtol=1e-4)


def test_richardson_lucy_moves_the_kernel_towards_the_blur_that_made_the_data():
    truth = faceted_crystal(32, 12)
    m2 = torch.from_numpy(np.fft.ifftshift(intensity_of(truth) * truth.size).astype(np.float32))[
        None
    ]
    true_fwhm = 1.4
    true_k = torch.from_numpy(psf_kernel(m2.shape[1:], PartialCoherence(fwhm=true_fwhm)))
    dims = (1, 2, 3)
    measured = torch.fft.irfftn(
        torch.fft.rfftn(m2, dim=dims) * torch.fft.rfftn(true_k, dim=(0, 1, 2)),
        s=m2.shape[1:],
        dim=dims,
    )
    weight = torch.ones(m2.shape[1:])
    for start in (1.0, 2.5):  # from a narrower and a wider kernel
        model = PsfModel(PartialCoherence(fwhm=start), m2.shape[1:], 1, torch.device("cpu"))
        before = float((model.kernel[0] - true_k).abs().sum())
        for _ in range(100):
            model.update(m2, model.blur(m2), measured, weight)
        after = float((model.kernel[0] - true_k).abs().sum())
        assert after < 0.3 * before  # measured: 0.38 -> 0.05 and 1.0 -> 0.02 (L1 distance)
        assert abs(np.mean(fwhm_of(model.centred(0))) - true_fwhm) < 0.15
        assert model.updates == 100 and model.kernel.sum().item() == pytest.approx(1.0, abs=1e-5)


def test_the_psf_modulus_step_with_a_delta_kernel_is_the_coherent_one():
    amplitude, weight, free, support, psi = random_engine_batch(batch=2)
    coherent = Engine(amplitude, weight, support, psi.clone(), free=free)
    delta = PsfModel(PartialCoherence(fwhm=0.05, period=0), amplitude.shape, 2, torch.device("cpu"))
    blurred = Engine(amplitude, weight, support, psi.clone(), free=free, psf=delta)
    blurred._psf_on = True
    c1, f1 = coherent._modulus(free=True)
    c2, f2 = blurred._modulus(free=True)
    torch.testing.assert_close(c2, c1, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(f2, f1, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(blurred.P, coherent.P, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("free", [True, False])
def test_the_fused_psf_step_matches_the_torch_chain_with_a_kernel_update(free):
    amplitude, weight, free_px, support, psi = random_engine_batch(batch=2)
    runs = {}
    for fused in (True, False):
        model = PsfModel(
            PartialCoherence(fwhm=1.2, period=1), amplitude.shape, 2, torch.device("cpu")
        )
        engine = Engine(
            amplitude, weight, support, psi.clone(), free=free_px, fused=fused, psf=model
        )
        engine._psf_on = True
        out = []
        for update in (True, False):  # a Richardson-Lucy step, then a step with the new kernel
            engine._psf_update = update
            out.append(engine._modulus(free=free))
        runs[fused] = (out, engine.P.clone(), model.kernel.clone())
    (fused_out, fused_p, fused_k), (torch_out, torch_p, torch_k) = runs[True], runs[False]
    for (c1, f1), (c2, f2) in zip(fused_out, torch_out):
        torch.testing.assert_close(c1, c2, rtol=1e-4, atol=1e-7)
        assert (f1 is None) == (f2 is None) == (not free)
        if free:
            torch.testing.assert_close(f1, f2, rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(fused_k, torch_k, rtol=1e-5, atol=1e-8)
    torch.testing.assert_close(fused_p, torch_p, rtol=1e-4, atol=1e-5)


def blurred_crystal(sigma: float, photons: float = 1e8):
    """A 32³ faceted crystal and its Poisson pattern blurred by a Gaussian of ``sigma`` px."""
    truth = faceted_crystal(32, 12)
    intensity = intensity_of(truth).astype(np.float64)
    intensity *= photons / intensity.sum()
    blurred = coherence_blur(intensity, sigma) if sigma > 0 else intensity
    return truth, np.random.default_rng(1).poisson(blurred).astype(np.float32)


def test_a_partially_coherent_pattern_is_phased_better_with_a_psf_than_without():
    truth, intensity = blurred_crystal(0.3)  # FWHM 0.71 px
    free = free_pixel_mask(np.zeros(intensity.shape, bool), fraction=0.05, seed=0)
    delta = np.ones(intensity.shape, np.float32)  # on a pedestal: the blur's final clip at 0
    delta[16, 16, 16] += 1  # would cut the negative lobes of its kernel at sigma 0.3 px
    true_k = coherence_blur(delta, 0.3) - 1  # the simulator's own kernel
    truth_chi2 = fourier_errors(truth, intensity, free_mask=free, psf=true_k)["chi2"]
    coherent = phase_retrieve(intensity, device="cpu", runs=4, seed=0)
    fitted = phase_retrieve(intensity, device="cpu", runs=4, seed=0, psf=True)
    # measured over seeds 0-3 and both transforms: relative error 0.20-0.27 -> 0.15-0.18 (0.60-
    # 0.80 of it), chi2 0.0046-0.0049 -> 0.0011-0.0014 (the coherent model cannot reach the
    # blurred speckles' contrast; the truth itself scores 0.0092 without its blur and 8.5e-5
    # with it); the fitted FWHM 0.86-0.89 px (the simulator's kernel: 0.71 px)
    err_coherent = compare_to_truth(coherent.obj, truth)["rel_error"]
    err_fitted = compare_to_truth(fitted.obj, truth)["rel_error"]
    assert err_fitted < 0.9 * err_coherent
    assert fitted.metrics["chi2"] < 0.5 * coherent.metrics["chi2"]
    assert (
        truth_chi2
        < fitted.metrics["chi2"]
        < fourier_errors(truth, intensity, free_mask=free)["chi2"]
    )
    assert 0.6 < fitted.metrics["psf_fwhm_px"] < 1.1
    assert fitted.psf.shape == intensity.shape and fitted.psf.sum() == pytest.approx(1, abs=1e-5)
    assert fitted.metrics["chi2_coherent"] > fitted.metrics["chi2"]
    assert fitted.config["psf"]["model"] == "gaussian" and fitted.config["psf_updates"] > 0
    assert coherent.psf is None and "psf_fwhm_px" not in coherent.metrics


def test_a_coherent_pattern_phased_with_a_psf_keeps_its_quality():
    truth, intensity = blurred_crystal(0.0)
    coherent = phase_retrieve(intensity, device="cpu", runs=4, seed=0)
    fitted = phase_retrieve(intensity, device="cpu", runs=4, seed=0, psf=True)
    # measured over seeds 0-3 and both transforms: 0.054-0.098 without, 0.041-0.106 with (0.64-
    # 1.19 of it; a PSF may cost a little where none is needed, hence opt-in); the kernel stays
    # narrow (FWHM 0.65 px from 0.5)
    err_coherent = compare_to_truth(coherent.obj, truth)["rel_error"]
    assert compare_to_truth(fitted.obj, truth)["rel_error"] < max(1.6 * err_coherent, 0.16)
    assert fitted.metrics["psf_fwhm_px"] < 0.8


def test_phasing_with_a_psf_is_deterministic_and_runs_in_2d():
    truth = faceted_crystal(48, 16, ndim=2)
    intensity = blur_intensity(intensity_of(truth) * 1e7, centred_kernel((48, 48), fwhm=1.0))
    intensity = np.random.default_rng(2).poisson(intensity).astype(np.float32)
    a = phase_retrieve(intensity, device="cpu", seed=3, psf="gaussian,0.5,10")
    b = phase_retrieve(intensity, device="cpu", seed=3, psf="gaussian,0.5,10")
    np.testing.assert_array_equal(a.obj, b.obj)
    np.testing.assert_array_equal(a.psf, b.psf)
    assert a.psf.shape == (48, 48) and a.config["psf"]["period"] == 10


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("on", PartialCoherence()),
        ("gaussian,0.5,20", PartialCoherence(model="gaussian", fwhm=0.5, period=20)),
        ("0.8", PartialCoherence(fwhm=0.8)),
        (
            "pseudo-voigt,1,0.05,20",
            PartialCoherence(model="pseudo-voigt", fwhm=1, eta=0.05, period=20),
        ),
        ("pseudo-voigt,1,10", PartialCoherence(model="pseudo-voigt", fwhm=1, eta=0.05, period=10)),
        ("Lorentzian,2", PartialCoherence(model="lorentzian", fwhm=2)),
    ],
)
def test_psf_settings_parse_from_pynx_notation(text, expected):
    assert parse_psf(text) == expected


@pytest.mark.parametrize(
    ("value", "hint"),
    [
        ("voigt,1", "MODEL,FWHM"),
        ("gaussian,0", "FWHM must be in (0, 64]"),
        ("gaussian,nan", "FWHM must be in (0, 64]"),
        ("gaussian,1,2.5", "whole number"),
        ("gaussian,1,20,3", "too many numbers"),
        ("pseudo-voigt,1,0.05,-5", "period must be >= 0"),
        ({"fwhm": 1, "width": 2}, "unknown PSF setting"),
        ({"start": 1.0}, "share of the iterations"),
        (3.5, "psf must be"),
    ],
)
def test_bad_psf_settings_are_refused_before_any_work_with_a_clear_message(value, hint):
    with pytest.raises(ConfigError, match=hint.replace("(", r"\(").replace(")", r"\)")):
        phase_retrieve(np.ones((16, 16), np.float32), device="cpu", psf=value)


def test_a_psf_of_the_wrong_shape_is_an_invalid_data_error():
    obj = faceted_crystal(16, 6)
    with pytest.raises(InvalidDataError, match="PSF has shape"):
        fourier_errors(obj, intensity_of(obj), psf=np.ones((8, 8, 8)) / 512)


def test_the_phase_command_stores_the_fitted_psf_and_metrics_uses_it(tmp_path):
    _, intensity = blurred_crystal(0.3)
    data = tmp_path / "pattern.npy"
    np.save(data, intensity)
    out = tmp_path / "result.cxi"
    cmd = [
        sys.executable,
        "-m",
        "reconstruction",
        "phase",
        str(data),
        "--out",
        str(out),
        "--device",
        "cpu",
        "--algorithm",
        "ER**10,HIO**60,ER**10",
        "--psf",
        "gaussian,0.6,10",
        "--json",
    ]
    summary = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    assert summary["config"]["psf"]["fwhm"] == 0.6 and summary["metrics"]["psf_fwhm_px"] > 0
    record = read_result(out)
    assert record.arrays["psf"].shape == record.obj.shape
    assert "--psf gaussian,0.6,10" in record.command
    metrics = subprocess.run(
        [sys.executable, "-m", "reconstruction", "metrics", str(out), "--json"],
        check=True,
        capture_output=True,
        text=True,
    )
    report = json.loads(metrics.stdout)
    assert report["fourier"]["chi2"] == pytest.approx(summary["metrics"]["chi2"], rel=1e-4)
    assert report["fourier_coherent"]["chi2"] == pytest.approx(
        summary["metrics"]["chi2_coherent"], rel=1e-4
    )
    text = subprocess.run(
        [sys.executable, "-m", "reconstruction", "metrics", str(out)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert "without PSF  chi2" in text
    bad = subprocess.run(
        cmd[:-3] + ["--psf", "voigt,1"], check=False, capture_output=True, text=True
    )
    assert bad.returncode == 2 and "MODEL,FWHM" in bad.stderr and "Traceback" not in bad.stderr


def test_a_refinement_continues_from_the_kernel_its_initial_result_fitted(tmp_path):
    from reconstruction.phasing.workflow import phase_file, refine_file

    _, intensity = blurred_crystal(0.6)
    data = tmp_path / "pattern.npy"
    np.save(data, intensity)
    phased = phase_file(data, tmp_path / "phased.cxi", device="cpu", shape=32, psf="gaussian,1.2,10",
                        algorithm="ER**10,HIO**60,ER**10", cycles=1)  # fmt: skip
    fitted = read_result(tmp_path / "phased.cxi").arrays["psf"]
    refined = refine_file(data, tmp_path / "refined.cxi", initial_path=tmp_path / "phased.cxi",
                          device="cpu", psf="gaussian,0.5,0", algorithm="ER**4")  # fmt: skip
    kept = read_result(tmp_path / "refined.cxi").arrays["psf"]
    # a fixed kernel (period 0) from the phased result's, not the 0.5 px of the settings
    np.testing.assert_allclose(kept, fitted / fitted.sum(), atol=1e-6)
    assert refined["config"]["psf_initial"].startswith("the kernel of")
    assert refined["metrics"]["psf_fwhm_px"] == pytest.approx(
        phased["metrics"]["psf_fwhm_px"], rel=1e-4
    )
    coherent = refine_file(data, tmp_path / "coherent.cxi", initial_path=tmp_path / "phased.cxi",
                           device="cpu", algorithm="ER**4")  # fmt: skip
    assert (
        coherent["config"]["psf"] is None
        and "psf" not in read_result(tmp_path / "coherent.cxi").arrays
    )


def test_a_starting_kernel_must_fit_the_data_and_needs_psf():
    intensity = np.ones((16, 16), np.float32)
    with pytest.raises(InvalidDataError, match="starting PSF has shape"):
        phase_retrieve(intensity, device="cpu", psf=True, psf_initial=np.ones((8, 8)))
    with pytest.raises(InvalidDataError, match="NaN"):
        phase_retrieve(intensity, device="cpu", psf=True, psf_initial=np.full((16, 16), np.nan))
    with pytest.raises(ConfigError, match="set psf too"):
        phase_retrieve(intensity, device="cpu", psf_initial=np.ones((16, 16)))
