"""FFTW plans in the engine: the same iterates as torch's FFT, wisdom saved and reused."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reconstruction.phasing import fftw, parse_schedule, phase_retrieve
from reconstruction.phasing.coherence import PartialCoherence, PsfModel
from reconstruction.phasing.engine import Engine
from reconstruction.phasing.support import ShrinkWrapper, resolve_shrinkwrap
from tests.reconstruction.phasing_objects import counts, faceted_crystal, random_engine_batch

pytest.importorskip("pyfftw")


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """An empty private wisdom folder, with FFTW's in-process wisdom forgotten before and after."""
    import pyfftw

    monkeypatch.setenv("CDI_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("CDI_FFT", raising=False)
    pyfftw.forget_wisdom()
    fftw._pyfftw.cache_clear()
    yield tmp_path
    pyfftw.forget_wisdom()
    fftw._pyfftw.cache_clear()


def _shrinkwrapper(shape: tuple[int, ...], *, period: int) -> ShrinkWrapper:
    """A CPU shrink-wrapper updating every ``period`` iterations at a 5 % threshold."""
    settings = resolve_shrinkwrap({"period": period, "threshold": 0.05}, default_on=True)
    return ShrinkWrapper(settings, shape, torch.device("cpu"))


@pytest.mark.parametrize("algorithm", ["ER**4", "HIO**4", "RAAR(0.75)**4"])
def test_fftw_plans_give_the_iterates_of_torchs_fft(cache_dir, algorithm):
    """Same iterates, chi2 and chi2_free with FFTW plans (unnormalised, 1/N folded into the
    modulus pass) as with torch's FFT, on a batch with masked and free pixels and shrink-wrap."""
    amplitude, weight, free, support, psi = random_engine_batch()
    shape = tuple(amplitude.shape)
    out = {}
    for use_fftw in (False, True):
        sw = _shrinkwrapper(shape, period=2)
        eng = Engine(
            amplitude,
            weight,
            support,
            psi.clone(),
            free=free,
            fused=True,
            shrinkwrap=sw,
            use_fftw=use_fftw,
        )
        history = eng.run(parse_schedule(algorithm, cycles=1))
        assert (eng._plans is not None) == use_fftw
        out[use_fftw] = (history, eng.psi, eng.support)
    (h0, psi0, s0), (h1, psi1, s1) = out[False], out[True]
    assert torch.equal(s1, s0) and 0 < float(s1.mean()) < 1
    assert torch.allclose(psi1, psi0, rtol=1e-4, atol=1e-5 * float(psi0.abs().max()))
    assert np.allclose(h1.chi2, h0.chi2, rtol=1e-4)
    assert np.allclose(h1.chi2_free, h0.chi2_free, rtol=1e-4, equal_nan=True)


@pytest.fixture
def fftw_wins(monkeypatch):
    """Whatever this machine's timings, every FFTW-against-torch comparison picks FFTW (timed
    first, then torch)."""
    import itertools

    timings = itertools.cycle([1.0, 2.0])
    monkeypatch.setattr(fftw, "_median_pair_ms", lambda run: next(timings))


def test_the_fftw_blur_is_torchs_real_fft_convolution(cache_dir, fftw_wins):
    """convolve = irfftn(rfftn(values) x transfer x N) per box, totals = each box's sum."""
    shape = (8, 6, 10)
    gen = torch.Generator().manual_seed(3)
    values = torch.rand((2,) + shape, generator=gen)
    kernels = torch.rand((2,) + shape, generator=gen)
    otf = torch.fft.rfftn(kernels, dim=(1, 2, 3))
    conv = fftw.real_convolution(shape, 2, 1, work=fftw.REAL_MEASURE_MIN_WORK)
    assert conv is not None and fftw.wisdom_path().exists()
    kept = values.clone()
    out = conv.convolve(values.numpy(), (otf / 480).numpy())
    dims = (1, 2, 3)
    expected = torch.fft.irfftn(torch.fft.rfftn(values, dim=dims) * otf, s=shape, dim=dims)
    torch.testing.assert_close(torch.from_numpy(out), expected, rtol=1e-5, atol=1e-5)
    assert torch.equal(values, kept)
    np.testing.assert_allclose(conv.totals(), values.sum(dim=(1, 2, 3)).numpy(), rtol=1e-5)
    assert fftw._choices()["real 8x6x10 runs=2 threads=1"]["choice"] == "fftw"


def test_real_plans_are_measured_for_enough_blurs_and_a_torch_choice_is_kept(
    cache_dir, monkeypatch
):
    shape = (8, 8, 8)
    assert fftw.real_convolution(shape, 1, 1, work=fftw.REAL_MEASURE_MIN_WORK - 1) is None
    assert not fftw.wisdom_path().exists()
    timings = iter([2.0, 1.0])  # FFTW slower than torch here
    monkeypatch.setattr(fftw, "_median_pair_ms", lambda run: next(timings))
    assert fftw.real_convolution(shape, 1, 1, work=10**6) is None
    assert fftw._choices()["real 8x8x8 runs=1 threads=1"]["choice"] == "torch"
    assert fftw.real_convolution(shape, 1, 1, work=10**6) is None  # decided: not timed again


def test_shrinkwrap_and_psf_blurs_through_fftw_give_the_iterates_of_torchs(
    cache_dir, fftw_wins, monkeypatch
):
    """A 3D run with shrink-wrap and a PSF (kernel updates included) ends on the same object,
    support, kernel and chi2 with FFTW's real and complex plans as with torch's transforms."""
    monkeypatch.setattr(fftw, "REAL_MEASURE_MIN_WORK", 0)
    amplitude, weight, free, support, psi = random_engine_batch(batch=2)
    shape = tuple(amplitude.shape)
    out = {}
    for use_fftw in (False, True):
        sw = _shrinkwrapper(shape, period=3)
        psf = PsfModel(
            PartialCoherence(fwhm=1.2, period=2, start=0.5), shape, 2, torch.device("cpu")
        )
        eng = Engine(
            amplitude, weight, support, psi.clone(), free=free, fused=True, shrinkwrap=sw,
            psf=psf, use_fftw=use_fftw,
        )
        history = eng.run(parse_schedule("ER**12", cycles=1))
        assert (sw.convolution is not None) == (psf.convolution is not None) == use_fftw
        out[use_fftw] = (history, eng.psi, eng.support, psf.kernel, psf.updates)
    (h0, psi0, s0, k0, n0), (h1, psi1, s1, k1, n1) = out[False], out[True]
    assert n0 == n1 > 0
    assert torch.equal(s1, s0) and 0 < float(s1.mean()) < 1
    torch.testing.assert_close(k1, k0, rtol=1e-4, atol=1e-7)
    assert torch.allclose(psi1, psi0, rtol=1e-4, atol=1e-4 * float(psi0.abs().max()))
    assert np.allclose(h1.chi2, h0.chi2, rtol=1e-4)


def test_a_plan_is_measured_only_for_long_runs_and_its_wisdom_serves_short_ones(cache_dir):
    src = torch.randn((2, 8, 8, 8), dtype=torch.complex64).numpy()
    kept = src.copy()
    dst = np.empty_like(src)
    assert fftw.plan_pair(src, dst, 3, 1, work=fftw.MEASURE_MIN_WORK - 1, compare=False) is None
    assert not fftw.wisdom_path().exists()
    plans = fftw.plan_pair(src, dst, 3, 1, work=fftw.MEASURE_MIN_WORK, compare=False)
    assert plans is not None and np.array_equal(src, kept)  # measuring left the input alone
    assert fftw.wisdom_path().read_bytes().startswith(b"(fftw")
    plans.forward()
    assert np.allclose(dst, np.fft.fftn(src, axes=(1, 2, 3)), atol=1e-4)
    plans.backward()
    assert np.allclose(dst / 512, src, atol=1e-5)  # unnormalised inverse
    # a new process (simulated: wisdom forgotten, then read back from the file) plans a short run
    import pyfftw

    pyfftw.forget_wisdom()
    fftw._pyfftw.cache_clear()
    assert fftw.plan_pair(src, dst, 3, 1, work=1, compare=False) is not None


def test_an_unwritable_cache_still_plans(cache_dir, monkeypatch):
    blocker = cache_dir / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("CDI_CACHE_DIR", str(blocker / "cdi"))
    src = np.zeros((1, 8, 8, 8), np.complex64)
    assert fftw.plan_pair(src, np.empty_like(src), 3, 1, work=10**6, compare=False) is not None


@pytest.mark.parametrize("faster", ["fftw", "torch"])
def test_the_faster_transform_is_measured_once_per_box_and_kept(cache_dir, monkeypatch, faster):
    """The first measured plan of a box is timed against torch; the choice is kept on disk."""
    timings = iter([1.0, 2.0] if faster == "fftw" else [2.0, 1.0])  # FFTW first, then torch
    monkeypatch.setattr(fftw, "_median_pair_ms", lambda run: next(timings))
    src = torch.randn((2, 8, 8, 8), dtype=torch.complex64).numpy()
    dst = np.empty_like(src)
    first = fftw.plan_pair(src, dst, 3, 1, work=10**6)
    assert (first is not None) == (faster == "fftw")
    record = fftw._choices()["8x8x8 runs=2 threads=1"]
    assert record["choice"] == faster and record["fftw_ms"] in (1.0, 2.0)
    # decided: no more timing (the iterator is exhausted), same answer even for a short run
    again = fftw.plan_pair(src, dst, 3, 1, work=1)
    assert (again is not None) == (faster == "fftw")


def test_a_planner_failure_leaves_the_engine_on_torch(cache_dir, monkeypatch, caplog):
    import pyfftw

    def refuse(*args, **kwargs):
        raise ValueError("simulated planner failure")

    monkeypatch.setattr(pyfftw, "FFTW", refuse)
    src = torch.randn((1, 8, 8, 8), dtype=torch.complex64).numpy()
    kept = src.copy()
    with caplog.at_level("WARNING", logger="reconstruction.phasing.fftw"):
        assert fftw.plan_pair(src, np.empty_like(src), 3, 1, work=10**6) is None
    assert "simulated planner failure" in caplog.text and np.array_equal(src, kept)


def test_a_corrupt_cache_is_measured_again(cache_dir, monkeypatch):
    fftw.wisdom_path().write_bytes(b"\x00not wisdom")
    fftw._choices_path().write_text('{"8x8x8 runs=1 threads=1": "garbage"}')
    fftw._pyfftw.cache_clear()
    timings = iter([1.0, 2.0])
    monkeypatch.setattr(fftw, "_median_pair_ms", lambda run: next(timings))
    src = np.zeros((1, 8, 8, 8), np.complex64)
    assert fftw.plan_pair(src, np.empty_like(src), 3, 1, work=10**6) is not None
    assert fftw._choices()["8x8x8 runs=1 threads=1"]["choice"] == "fftw"


def test_cdi_fft_torch_turns_fftw_off(cache_dir, monkeypatch):
    monkeypatch.setenv("CDI_FFT", "torch")
    fftw._pyfftw.cache_clear()
    assert not fftw.available()
    src = np.zeros((1, 8, 8, 8), np.complex64)
    assert fftw.plan_pair(src, np.empty_like(src), 3, 1, work=10**6) is None


def test_phase_retrieve_gives_the_same_object_with_fftw_and_torch(cache_dir, monkeypatch):
    """A run long enough to measure a plan (ER, non-expansive: rounding differences do not grow,
    unlike HIO's) ends on the same object with either transform."""
    import itertools

    # whatever this machine's timings, the comparison picks FFTW (timed first, then torch)
    timings = itertools.cycle([1.0, 2.0])
    monkeypatch.setattr(fftw, "_median_pair_ms", lambda run: next(timings))
    obj = faceted_crystal(24, 8)
    intensity = counts(obj, 1e8, seed=None)
    results = {}
    for mode in ("fftw", "torch"):
        monkeypatch.setenv("CDI_FFT", mode)
        fftw._pyfftw.cache_clear()
        results[mode] = phase_retrieve(
            intensity,
            support=np.abs(obj) > 0,
            algorithm="ER**200",
            n_cycles=1,
            runs=3,
            seed=1,
            device="cpu",
        )
    assert fftw.wisdom_path().exists()  # 200 iterations x 3 runs: worth measuring a plan
    assert [v["choice"] for k, v in fftw._choices().items() if k.startswith("24x24x24")] == ["fftw"]
    assert [r.config["fft"] for r in results.values()] == ["fftw", "torch"]
    a, b = results["fftw"].obj, results["torch"].obj
    assert np.linalg.norm(a - b) < 1e-3 * np.linalg.norm(b)
    assert results["fftw"].metrics["chi2"] == pytest.approx(
        results["torch"].metrics["chi2"], rel=1e-3
    )


def test_the_system_command_reports_the_fft_measured_for_each_box(cache_dir, monkeypatch, capsys):
    import json

    from reconstruction.cli import main

    monkeypatch.delenv("CDI_CPU_BF16", raising=False)
    assert main(["system", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["fftw_enabled"] and report["fft_choices"] == {}
    assert report["fftw_wisdom"] == str(cache_dir / "fftw_wisdom_single.txt")
    timings = iter([1.0, 2.0])
    monkeypatch.setattr(fftw, "_median_pair_ms", lambda run: next(timings))
    src = np.zeros((1, 8, 8, 8), np.complex64)
    fftw.plan_pair(src, np.empty_like(src), 3, 1, work=10**6)
    assert main(["system"]) == 0
    text = capsys.readouterr().out
    assert "8x8x8 runs=1 threads=1: fftw (FFTW 1.0 ms, torch 2.0 ms per batch pair)" in text
    assert "fused CPU kernels (numba): yes" in text
    assert f"bfloat16 autocast: {'yes' if torch.cuda.is_available() else 'no'}" in text
    monkeypatch.setenv("CDI_FFT", "torch")
    fftw._pyfftw.cache_clear()
    assert main(["system"]) == 0
    assert "FFTW         off (CDI_FFT=torch)" in capsys.readouterr().out
