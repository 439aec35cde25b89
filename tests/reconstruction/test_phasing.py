"""The iterative engine against analytic truth: projections, error reduction, known objects."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from reconstruction.errors import Cancelled, ConfigError, InvalidDataError
from reconstruction.metrics import compare_to_truth, fourier_errors, free_pixel_mask
from reconstruction.phasing import heap, parse_schedule, phase_retrieve
from reconstruction.phasing.engine import Engine
from reconstruction.phasing.support import ShrinkWrapper, resolve_shrinkwrap
from reconstruction.progress import CancelToken
from tests.reconstruction.phasing_objects import counts, faceted_crystal, random_engine_batch


def engine_for(obj, intensity, mask, support, seed=0, fused=None) -> Engine:
    """An Engine on one random start (unshifted layout), as phase_retrieve builds it."""
    shift = np.fft.ifftshift
    rng = np.random.default_rng(seed)
    psi = shift(obj * support) * np.exp(1j * rng.uniform(-1, 1, obj.shape)) * 1.3
    t = lambda x: torch.from_numpy(np.ascontiguousarray(shift(x))).float()
    return Engine(
        t(np.sqrt(intensity)), t((~mask).astype(np.float32)), t(support.astype(np.float32))[None],
        torch.from_numpy(psi.astype(np.complex64))[None], fused=fused,
    )


# -- the algorithm as a value ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "cycles", "canonical", "total"),
    [
        ("ER**20,HIO**160,ER**20", 3, "(ER**20,HIO**160,ER**20)**3", 600),
        ("(ER**20,HIO**160)**3,ER**20", 1, "(ER**20,HIO**160)**3,ER**20", 560),
        ("3*(20*ER+180*HIO)+20*ER", 1, "(ER**20,HIO**180)**3,ER**20", 620),
        ("raar(0.8)**5, HIO(0.9)**3", 1, "RAAR(0.8)**5,HIO**3", 8),
    ],
)
def test_schedule_strings_parse_to_a_canonical_value_that_parses_back(
    text, cycles, canonical, total
):
    schedule = parse_schedule(text, cycles=cycles)
    assert str(schedule) == canonical and schedule.total == total
    assert parse_schedule(str(schedule)) == schedule
    segments = schedule.segments()
    assert segments[0].start == 0 and segments[-1].end == total


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("ER**2x", "position 5"),
        ("ER*20", "position 2"),
        ("FOO**3", "unknown operator 'FOO'"),
        ("(ER**2", "expected ')'"),
        ("ER**0", "positive integer"),
        ("HIO(2)**3", "beta must be in"),
        ("ER,,HIO", "position 3"),
        ("", "empty"),
    ],
)
def test_malformed_schedules_are_refused_with_a_message_pointing_at_the_bad_token(text, hint):
    with pytest.raises(ConfigError, match=hint.replace("(", r"\(").replace(")", r"\)")):
        parse_schedule(text)


# -- projections ------------------------------------------------------------------------------
BOTH_PATHS = pytest.mark.parametrize("fused", [False, True], ids=["torch", "fused"])


@BOTH_PATHS
def test_the_engine_chi2_is_the_fourier_errors_chi2_by_parseval(fused):
    obj = faceted_crystal(16, 6)
    intensity = counts(obj, 1e6, seed=None)
    mask = np.zeros(obj.shape, bool)
    support = np.abs(obj) > 0
    eng = engine_for(obj, intensity, mask, support, fused=fused)
    psi = np.fft.fftshift(eng.psi[0].numpy())
    chi2, _ = eng._modulus(free=False)
    expected = fourier_errors(psi, intensity)
    # fourier_errors fits the scale; with scale 1 the two agree exactly
    calc = np.abs(np.fft.fftn(np.fft.ifftshift(psi), norm="ortho"))
    unscaled = np.sum((calc - np.fft.ifftshift(np.sqrt(intensity))) ** 2)
    assert float(chi2[0]) == pytest.approx(unscaled / intensity.sum(), rel=1e-4)
    assert expected["chi2"] <= float(chi2[0]) + 1e-9


@BOTH_PATHS
def test_the_modulus_projection_is_idempotent_and_leaves_masked_pixels_free(fused):
    obj = faceted_crystal(16, 6)
    intensity = counts(obj, 1e6, seed=None)
    mask = np.zeros(obj.shape, bool)
    mask[6:10, 6:10, 6:10] = True  # a beamstop
    eng = engine_for(obj, intensity, mask, np.ones(obj.shape, bool), fused=fused)
    before = np.fft.fftn(eng.psi[0].numpy())
    once = eng.project_modulus().clone()
    after = np.fft.fftn(once[0].numpy())
    masked_u = np.fft.ifftshift(mask)
    assert np.allclose(after[masked_u], before[masked_u], rtol=1e-4, atol=1e-3)
    measured = np.fft.ifftshift(np.sqrt(intensity))[~masked_u] * np.sqrt(obj.size)
    assert np.allclose(np.abs(after[~masked_u]), measured, rtol=1e-4, atol=1e-2)
    eng.psi.copy_(once)
    twice = eng.project_modulus()
    assert torch.allclose(twice, once, rtol=1e-4, atol=1e-5 * float(once.abs().max()))


@pytest.mark.parametrize("algorithm", ["ER**4", "HIO**4", "RAAR(0.75)**4"])
def test_the_fused_cpu_kernels_match_the_torch_chain(algorithm):
    """Same iterates, chi2 and chi2_free from both paths (modulus step and real-space update),
    on a batch with masked and free pixels and a different support per run."""
    amplitude, weight, free, support, psi = random_engine_batch()
    shape = tuple(amplitude.shape)
    out = {}
    for fused in (False, True):
        sw = ShrinkWrapper(resolve_shrinkwrap({"period": 2, "threshold": 0.05}, default_on=True),
                           shape, torch.device("cpu"))
        sw.fused = fused
        eng = Engine(amplitude, weight, support, psi.clone(), free=free, fused=fused, shrinkwrap=sw)
        out[fused] = (eng.run(parse_schedule(algorithm, cycles=1)), eng.psi, eng.support)
    (h0, psi0, s0), (h1, psi1, s1) = out[False], out[True]
    assert torch.equal(s1, s0) and 0 < float(s1.mean()) < 1  # shrink-wrap: same supports
    assert torch.allclose(psi1, psi0, rtol=1e-4, atol=1e-5 * float(psi0.abs().max()))
    assert np.allclose(h1.chi2, h0.chi2, rtol=1e-4)
    assert np.isfinite(h1.chi2_free[0]).all()
    assert np.allclose(h1.chi2_free, h0.chi2_free, rtol=1e-4, equal_nan=True)


def test_er_error_never_increases_with_a_fixed_support():
    obj = faceted_crystal(24, 9)
    intensity = counts(obj, 1e7, seed=2)
    result = phase_retrieve(
        intensity, support=np.abs(obj) > 0, algorithm="ER**60", n_cycles=1, shrinkwrap=False,
        free_fraction=0.0, device="cpu",
    )
    chi2 = result.curves["chi2"]
    assert np.all(np.diff(chi2) <= 1e-6 * chi2[:-1]) and chi2[-1] < 0.5 * chi2[0]


# -- recovery of known objects --------------------------------------------------------------
def test_a_faceted_crystal_is_recovered_to_one_percent_from_noise_free_data():
    truth = faceted_crystal(32, 12)
    intensity = counts(truth, 1e6, seed=None)
    # the default recipe, then a long ER to converge in the final (slightly loose) support:
    # after the 600 iterations alone the error is 0.6-1.9 % depending on the seed
    result = phase_retrieve(intensity, device="cpu", seed=0,
                            algorithm="(ER**20,HIO**160,ER**20)**3,ER**400", n_cycles=1)
    quality = compare_to_truth(result.obj, truth)
    assert quality["rel_error"] < 0.01 and quality["ssim"] > 0.999
    assert result.algorithm == "(ER**20,HIO**160,ER**20)**3,ER**400"
    assert result.curves["chi2"].shape == (1000,)
    assert result.obj.dtype == np.complex64 and result.support.dtype == bool
    assert 0.5 < result.support.sum() / (np.abs(truth) > 0).sum() < 2.0


def test_with_poisson_noise_chi2_comes_within_three_times_the_truths_chi2():
    truth = faceted_crystal(24, 9)
    intensity = counts(truth, 1e7, seed=4)  # ~100 photons per pixel at mid q, few at the edge
    # about a third of single starts reach 3x the truth's chi2 here (measured over 80 starts, the
    # same with the torch and the fused modulus step); HIO is chaotic, so rounding alone decides
    # which: the best of 8 makes the check about the engine, not about one trajectory
    result = phase_retrieve(intensity, runs=8, device="cpu")
    free = free_pixel_mask(np.zeros(intensity.shape, bool), fraction=0.05, seed=0)
    truth_chi2 = fourier_errors(truth, intensity, free_mask=free)["chi2"]
    assert result.metrics["chi2"] < 3.0 * truth_chi2
    # the noise fills the one-voxel shell shrink-wrap leaves around the crystal: 0.08-0.23 over
    # 12 seeds with torch's FFT and with FFTW (rounding alone changes the trajectory)
    assert compare_to_truth(result.obj, truth)["rel_error"] < 0.25


def test_recovery_still_works_with_ten_percent_of_pixels_masked_including_a_beamstop():
    truth = faceted_crystal(32, 12)
    intensity = counts(truth, 1e9, seed=5)
    mask = np.random.default_rng(0).random(intensity.shape) < 0.09
    mask[15:18, 15:18, 15:18] = True  # beamstop on the central peak
    intensity[mask] = 0
    assert 0.09 < mask.mean() < 0.11
    # best of 4: over seeds 0-11 the best of 2 ended at relative error 0.006-0.028 (and once
    # 0.041 in CI), the best of 4 at 0.003-0.013 with either transform (torch, FFTW) and thread
    # count, but 0.046 once in a full CI run: HIO is chaotic, and which rounding a run gets
    # depends on the FFT the session measured faster and on memory alignment. The central
    # beamstop leaves the lowest frequencies to the support alone, so a run that fits the data
    # (chi2 below) may keep a slow error there; a failed run (wrong support, twin mixture) ends
    # above 0.2, which is what the bound separates
    result = phase_retrieve(intensity, mask=mask, runs=4, device="cpu")
    free = free_pixel_mask(mask, fraction=0.05, seed=0)
    truth_chi2 = fourier_errors(truth, intensity, mask=mask, free_mask=free)["chi2"]
    assert result.metrics["chi2"] < 2.0 * truth_chi2
    assert compare_to_truth(result.obj, truth)["rel_error"] < 0.06


def test_a_2d_pattern_is_phased_too():
    truth = faceted_crystal(48, 16, ndim=2)
    result = phase_retrieve(counts(truth, 1e7, seed=None), runs=4, device="cpu")
    # noise-free: the best run fits to chi2 ~1e-6; what remains of the relative error (0.014-0.049
    # over seeds 0-4, depending on float rounding in the start) sits at the support's edge
    assert result.obj.shape == (48, 48) and result.metrics["chi2"] < 1e-4
    assert compare_to_truth(result.obj, truth)["rel_error"] < 0.06


def test_raar_with_the_true_support_converges_and_records_its_segments():
    truth = faceted_crystal(24, 9)
    result = phase_retrieve(counts(truth, 1e7, seed=None), algorithm="RAAR(0.8)**150,ER**50",
                            support=np.abs(truth) > 0, shrinkwrap=False, n_cycles=1, device="cpu")
    assert result.config["segments"] == [[0, 150, "RAAR", 0.8], [150, 200, "ER", None]]
    assert set(np.unique(result.curves["segment"])) == {0.0, 1.0}
    assert compare_to_truth(result.obj, truth)["rel_error"] < 0.01


# -- runs, seeds, starts, cancel -----------------------------------------------------------
def test_the_same_seed_gives_the_same_result_and_another_seed_another_start():
    intensity = counts(faceted_crystal(16, 6), 1e6, seed=0)
    kwargs = {"algorithm": "HIO**30,ER**10", "n_cycles": 1, "device": "cpu", "runs": 2}
    a = phase_retrieve(intensity, seed=3, **kwargs)
    b = phase_retrieve(intensity, seed=3, **kwargs)
    c = phase_retrieve(intensity, seed=4, **kwargs)
    assert np.array_equal(a.obj, b.obj) and np.array_equal(a.curves["chi2"], b.curves["chi2"])
    assert not np.array_equal(a.curves["chi2"], c.curves["chi2"])


def test_many_runs_are_ranked_by_free_llk_and_the_best_are_averaged_with_a_prtf():
    truth = faceted_crystal(24, 9)
    intensity = counts(truth, 1e8, seed=1)
    result = phase_retrieve(intensity, runs=4, keep=2, device="cpu")
    assert len(result.runs) == 4 and sum(r["kept"] for r in result.runs) == 2
    kept = sorted(r["llk_free"] for r in result.runs if r["kept"])
    assert kept[-1] <= min(r["llk_free"] for r in result.runs if not r["kept"])
    assert result.prtf is not None and result.prtf["prtf"].shape == result.prtf["freq"].shape
    assert compare_to_truth(result.obj, truth)["rel_error"] < 0.2


def test_starting_from_the_true_object_with_its_support_keeps_it():
    truth = faceted_crystal(24, 9)
    intensity = counts(truth, 1e7, seed=None)
    start = truth * (1 + 0.05 * np.random.default_rng(0).standard_normal(truth.shape))
    result = phase_retrieve(intensity, initial_object=start, support=None, algorithm="ER**50",
                            n_cycles=1, device="cpu", support_threshold=0.1)
    assert result.config["support"] == "object>0.1" and result.config["shrinkwrap"] is None
    assert compare_to_truth(result.obj, truth)["rel_error"] < 0.01
    assert result.curves["chi2"][-1] < result.curves["chi2"][0]


def test_a_refinement_with_shrinkwrap_keeps_its_lowest_chi2_iterate():
    """ER with shrink-wrap: chi2 falls while the support is fixed and may jump at an update; the
    kept iterate is the lowest of the whole run, although only the last iterate of each support
    is compared."""
    truth = faceted_crystal(16, 6)
    amplitude = torch.from_numpy(np.fft.ifftshift(np.sqrt(counts(truth, 1e6, seed=0))))
    box = np.zeros(truth.shape, np.float32)
    box[3:13, 3:13, 3:13] = 1
    support = torch.from_numpy(np.fft.ifftshift(box))[None].repeat(3, 1, 1, 1)
    gen = torch.Generator().manual_seed(0)
    start = torch.randn((3, *truth.shape), dtype=torch.complex64, generator=gen) * support

    def run(keep_best):
        settings = resolve_shrinkwrap({"period": 3, "threshold": 0.3}, default_on=True)
        eng = Engine(amplitude.float(), torch.ones_like(amplitude).float(), support.clone(),
                     start.clone(), shrinkwrap=ShrinkWrapper(settings, truth.shape, torch.device("cpu")))
        history = eng.run(parse_schedule("ER**30", cycles=1), keep_best=keep_best)
        return history.chi2, eng._modulus(free=False)[0].numpy()  # chi2 of what remains in psi

    chi2, last = run(False)
    lowest = np.minimum(chi2.min(axis=0), last)
    assert (np.diff(chi2, axis=0) > 0).any(axis=0).all()  # support updates raised chi2
    assert (lowest < last).all() and (lowest < 0.7 * last).any()  # the best is not the end
    _, kept = run(True)
    assert np.allclose(kept, lowest, rtol=1e-5)


def test_a_cancelled_token_stops_the_iterations():
    token = CancelToken()
    seen = []

    def progress(event):
        seen.append(event.step)
        if event.step >= 5:
            token.cancel()

    intensity = counts(faceted_crystal(16, 6), 1e6, seed=0)
    with pytest.raises(Cancelled):
        phase_retrieve(intensity, algorithm="HIO**100000", n_cycles=1, device="cpu",
                       progress=lambda e: progress(e) or None, cancel=token)
    assert seen and max(seen) < 100000


def test_bad_inputs_are_refused_with_actionable_messages():
    with pytest.raises(InvalidDataError, match="2D or 3D"):
        phase_retrieve(np.ones(5))
    with pytest.raises(InvalidDataError, match="mask has shape"):
        phase_retrieve(np.ones((8, 8)), mask=np.zeros((4, 4), bool))
    with pytest.raises(ConfigError, match="keep"):
        phase_retrieve(np.ones((8, 8)), runs=2, keep=3)
    with pytest.raises(ConfigError, match="neither 'auto'"):
        phase_retrieve(np.ones((8, 8)), support="/no/such/file.npy")


def test_the_fused_kernel_compiles_without_a_disk_cache_where_none_is_writable(monkeypatch):
    """A read-only install with no writable numba cache still gets the kernel (compiled anew)."""
    from reconstruction.phasing import kernels

    build = kernels._build

    def no_cache_location(numba, *, cache):
        if cache:
            raise RuntimeError("cannot cache function 'modulus': no locator available")
        return build(numba, cache=cache)

    monkeypatch.setattr(kernels, "_build", no_cache_location)
    kernels._compiled.cache_clear()
    kernels.available.cache_clear()
    try:
        assert kernels.available()
        F = np.full((1, 4), 3 + 4j, np.complex64)
        sums = kernels.modulus_project(F, np.full(4, 10, np.float32), np.ones(4, np.float32))
        assert np.allclose(np.abs(F), 10) and np.allclose(sums[0], [4 * 25, 0])
    finally:
        kernels._compiled.cache_clear()
        kernels.available.cache_clear()


def test_a_kernel_that_fails_to_compile_leaves_the_engine_on_torch(monkeypatch, caplog):
    from reconstruction.phasing import kernels

    def broken(numba, *, cache):
        def modulus(*args):
            raise TypeError("No implementation of function (LLVM lowering failed)")

        return (modulus,) * 5

    monkeypatch.setattr(kernels, "_build", broken)
    kernels._compiled.cache_clear()
    kernels.available.cache_clear()
    try:
        with caplog.at_level("WARNING", logger="reconstruction.phasing.kernels"):
            obj = faceted_crystal(16, 6)
            eng = engine_for(obj, counts(obj, 1e6, seed=None), np.zeros(obj.shape, bool),
                             np.abs(obj) > 0)
        assert eng.fused is False and "using torch" in caplog.text
        chi2, _ = eng._modulus(free=False)
        assert np.isfinite(float(chi2[0]))
    finally:
        kernels._compiled.cache_clear()
        kernels.available.cache_clear()


@pytest.mark.parametrize("shape", [(16, 12, 10), (20, 18)])
def test_the_shrinkwrap_blur_of_a_point_is_a_unit_gaussian_of_width_sigma(shape):
    """The device-built transfer function blurs a delta into exp(-r^2 / 2 sigma^2), sum 1."""
    from reconstruction.phasing.support import ShrinkWrapper, resolve_shrinkwrap

    sw = ShrinkWrapper(resolve_shrinkwrap(True, default_on=True), shape, torch.device("cpu"))
    sw.sigma = 1.5
    delta = torch.zeros((1,) + shape)
    delta[(0,) + (0,) * len(shape)] = 1.0
    dims = tuple(range(-len(shape), 0))
    blurred = torch.fft.irfftn(torch.fft.rfftn(delta, dim=dims) * sw.kernel(), s=shape, dim=dims)[0]
    r2 = sum(np.minimum(g, n - g) ** 2 for g, n in zip(np.indices(shape), shape))
    expected = np.exp(-r2 / (2 * 1.5**2))
    assert float(blurred.sum()) == pytest.approx(1.0, abs=1e-5)
    assert np.allclose(blurred.numpy(), expected / expected.sum(), atol=2e-4)


def test_the_kernels_load_from_the_disk_cache_in_the_next_process(tmp_path):
    """A second process loads all three kernels from numba's cache instead of compiling them."""
    import os
    import subprocess
    import sys

    code = "from reconstruction.phasing import kernels; assert kernels.available()"
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path), "NUMBA_DEBUG_CACHE": "1"}
    logs = [
        subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       check=True, cwd=str(Path(__file__).resolve().parents[2])).stdout
        for _ in range(2)
    ]
    for name in ("modulus", "modulus_free", "update"):
        assert f"locals.{name}-" in logs[0] and "data saved" in logs[0]
        loaded = [line for line in logs[1].splitlines() if "data loaded" in line]
        assert any(f"locals.{name}-" in line for line in loaded), logs[1]
    assert "data saved" not in logs[1]


@pytest.mark.skipif(heap._libc() is None, reason="glibc only")
def test_freed_fft_sized_buffers_are_reused_without_page_faults_inside_the_context():
    """Inside the context freed blocks are reused (no page faults once the heap has settled;
    outside it glibc maps every block above 32 MB afresh), and on exit the free memory goes
    back to the system (resident memory falls back)."""
    import resource

    def resident_mb() -> float:
        return int(Path("/proc/self/statm").read_text().split()[1]) * resource.getpagesize() / 1e6

    def faults(n: int) -> list[int]:
        out = []
        for _ in range(n):  # 48 MB each, above glibc's largest mmap threshold
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            torch.zeros(6_000_000, dtype=torch.complex64)
            out.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
        return out

    pages = 48_000_000 // 4096
    start = resident_mb()
    with heap.reuse_freed_memory() as tuned:
        assert tuned
        # the heap settles within a few blocks: small allocations between two blocks may split
        # a freed one, so a new block or two can still fault in before it alternates between
        # two kept blocks
        inside = faults(16)
        assert max(inside[8:]) < pages // 100, inside
        held = resident_mb()
    after = resident_mb()
    assert held - start > 40  # the freed blocks stay resident inside ...
    assert after - start < (held - start) / 2, (start, held, after)  # ... and go back on exit


def test_the_fused_shrinkwrap_threshold_matches_torch_and_refuses_the_same_updates():
    """Same new supports and the same refusals (support fraction out of bounds) on both paths."""
    gen = torch.Generator().manual_seed(3)
    shape = (12, 10, 14)
    amplitude = torch.rand((3,) + shape, generator=gen) ** 8
    amplitude[2] = 1.0  # flat: every voxel passes the threshold, more than max_fraction
    support = (torch.rand((3,) + shape, generator=gen) > 0.8).float()
    out = {}
    for fused in (False, True):
        sw = ShrinkWrapper(resolve_shrinkwrap({"sigma": 0.5, "threshold": 0.3}, default_on=True),
                           shape, torch.device("cpu"))
        sw.fused = fused
        out[fused] = (sw.update(amplitude, support), sw.refused)
    assert torch.equal(out[True][0], out[False][0]) and out[True][1] == out[False][1] == 1
    assert torch.equal(out[True][0][2], support[2])  # the refused run keeps its support
    assert not torch.equal(out[True][0][0], support[0])
