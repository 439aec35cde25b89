"""Benchmark the phasing engine against cohere-core on the same simulated Bragg CDI patterns.

A faceted crystal (oversampling 3 per axis) with a strain-like phase (up to +-pi), Poisson
noise; both engines run cohere's recipe ``3*(20*ER+180*HIO)+20*ER`` with shrink-wrap (ours: our
defaults, Gaussian sigma 3 -> 1 every 20 iterations, threshold 0.15; cohere: threshold 0.1,
sigma 1, every iteration, as in its recipe). Printed per size: per-iteration time of each, the
ratio, the ratio to one FFT pair (of the transform that engine used, same threads), and chi2
(our ``fourier_errors``, free pixels excluded) and relative error vs the truth after alignment.
Our engine runs twice on the CPU where pyFFTW is installed: with its FFTW plans (the default)
and with torch's FFT (``CDI_FFT=torch``), side by side.

cohere-core is installed for this benchmark only (``pip install --no-deps cohere-core==4.5.4
tqdm``; matplotlib, used only by its viewers, is stubbed) and never imported by the library.

Usage: ``.venv/bin/python benchmarks/bench_phasing.py [--sizes 64 128] [--threads 2]
[--skip-cohere] [--device cpu]``
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reconstruction.fourier import intensity_of
from reconstruction.metrics import compare_to_truth, fourier_errors, free_pixel_mask
from reconstruction.phasing import fftw, phase_retrieve

RECIPE = "3*(20*ER+180*HIO)+20*ER"


def faceted_crystal(n: int, *, seed: int = 0) -> np.ndarray:
    """A convex crystal n/3 across (oversampling 3), 20 random facets, strain-like phase."""
    g = (np.indices((n,) * 3) - n // 2).astype(float)
    rng = np.random.default_rng(seed)
    normals = rng.normal(size=(20, 3))
    normals /= np.linalg.norm(normals, axis=1)[:, None]
    inside = np.ones((n,) * 3, bool)
    for v in normals:
        inside &= np.tensordot(v, g, axes=1) <= n / 6
    # displacement field of a bent crystal projected on q: smooth, +-pi across the crystal
    s = n / 3
    phase = np.pi * np.sin(2.2 * g[0] / s + 0.3) * np.cos(1.7 * g[1] / s - 0.4) + 0.8 * (g[2] / s) ** 2
    return (inside * np.exp(1j * phase * inside)).astype(np.complex64)


def _median_ms(run, *, calls: int = 25, warm_up: int = 5) -> float:
    """Median time (ms) of ``run()`` over ``calls`` calls, the first ``warm_up`` not counted."""
    times = []
    for i in range(calls):
        t0 = time.perf_counter()
        run()
        if i >= warm_up:
            times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def fft_pair_ms(n: int, device: torch.device) -> float:
    """Median time (ms) of one complex64 fftn + ifftn pair, called as the engine calls them
    (fresh outputs: the ``out=`` variant computes into a temporary and copies, slower)."""
    x = torch.randn((n, n, n), dtype=torch.complex64, device=device)

    def pair():
        torch.fft.ifftn(torch.fft.fftn(x))
        if device.type == "cuda":
            torch.cuda.synchronize()

    return _median_ms(pair)


def fftw_pair_ms(n: int, threads: int) -> float | None:
    """Median time (ms) of one measured FFTW plan pair on an n^3 complex64 box (forward out of
    place, backward in place, as the engine runs them), or None without pyFFTW."""
    src = torch.randn((1, n, n, n), dtype=torch.complex64).numpy()
    # timed whatever the engine's own choice for this box is
    plans = fftw.plan_pair(src, np.empty_like(src), 3, threads, work=10**9, compare=False)
    if plans is None:
        return None

    def pair():
        plans.forward()
        plans.backward()

    return _median_ms(pair)


def use_torch_fft(on: bool) -> None:
    """Make the engine transform with torch's FFT (True) or its default choice (False)."""
    if on:
        os.environ["CDI_FFT"] = "torch"
    else:
        os.environ.pop("CDI_FFT", None)
    fftw._pyfftw.cache_clear()


def time_ours(intensity: np.ndarray, args) -> tuple[float, object]:
    """Median ms per iteration of our engine on ``intensity`` over ``args.repeat`` runs of
    cohere's recipe, after one untimed run (thread pools, FFT plans); and the last result."""
    per_iteration = []
    for i in range(args.repeat + 1):
        result = phase_retrieve(intensity, algorithm=RECIPE, n_cycles=1, device=args.device,
                                threads=args.threads, seed=0)
        if i:
            per_iteration.append(result.metrics["seconds_per_iteration"])
    return 1e3 * float(np.median(per_iteration)), result


def run_cohere(amplitude: np.ndarray) -> tuple[np.ndarray, float, int]:
    """cohere-core (numpy backend) on ``amplitude`` (centred): (object, seconds, iterations)."""
    for name in ("matplotlib", "matplotlib.pyplot", "matplotlib.widgets"):
        sys.modules.setdefault(name, types.ModuleType(name))
    sys.modules["matplotlib"].pyplot = sys.modules["matplotlib.pyplot"]
    sys.modules["matplotlib.widgets"].Slider = object
    import contextlib
    import io

    import cohere_core.controller.phasing as coh

    params = {
        "algorithm_sequence": RECIPE,
        "shrink_wrap_trigger": [1, 1],
        "shrink_wrap_type": "GAUSS",
        "shrink_wrap_threshold": 0.1,
        "shrink_wrap_gauss_sigma": 1.0,
        "initial_support_area": [0.5, 0.5, 0.5],
        "hio_beta": 0.9,
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "data.npy")
        np.save(path, amplitude.astype(np.float32))
        with contextlib.redirect_stdout(io.StringIO()):
            np.random.seed(0)
            worker = coh.create_rec(params, path, "np", -1, debug=True)
            t0 = time.perf_counter()
            worker.iterate()
            seconds = time.perf_counter() - t0
    # cohere goes to reciprocal space with ifft: its object is the conjugate of ours
    obj = np.conj(np.asarray(worker.ds_image) * np.asarray(worker.support))
    return obj, seconds, worker.iter_no


def support_shape(support: np.ndarray) -> str:
    """Size, connected components and bounding box of a support (compactness check)."""
    from scipy import ndimage

    labels, count = ndimage.label(support)
    sizes = np.bincount(labels.ravel())[1:] if count else np.array([0])
    box = [int(np.ptp(ax)) + 1 for ax in np.nonzero(support)] if support.any() else [0]
    return (f"{int(support.sum())} voxels, {count} component(s) (largest {int(sizes.max())}), "
            f"bounding box {' x '.join(map(str, box))}")


def bench_real(args) -> int:
    """Phase a prepared real file with our engine (cohere's recipe and ours) and cohere-core."""
    from reconstruction.io.workflow import load_prepared

    data = load_prepared(args.real)
    intensity, mask = data.intensity, data.mask
    free = free_pixel_mask(mask, fraction=0.05, seed=0)
    print(f"# real data {args.real}: shape {intensity.shape}, {intensity.sum():.3g} counts, "
          f"{mask.mean():.2%} masked")
    print("| engine | algorithm | runs | seconds | ms/iteration | chi2 | chi2_free | support |")
    print("|---|---|---|---|---|---|---|---|")
    for algorithm, cycles, shrinkwrap in (
        ("ER**20,HIO**160,ER**20", 3, None),
        (RECIPE, 1, {"sigma": 1.0, "sigma_min": 1.0, "threshold": 0.1, "period": 1}),
    ):
        t0 = time.perf_counter()
        res = phase_retrieve(intensity, mask=mask, algorithm=algorithm, n_cycles=cycles,
                             runs=args.runs, device=args.device, threads=args.threads,
                             shrinkwrap=shrinkwrap)
        seconds = time.perf_counter() - t0
        sw = "default shrink-wrap" if shrinkwrap is None else "shrink-wrap thr 0.1 sigma 1 every it."
        print(f"| ours | {res.algorithm} ({sw}) | {args.runs} | {seconds:.1f} | "
              f"{1e3 * res.metrics['seconds_per_iteration']:.2f} | {res.metrics['chi2']:.4g} | "
              f"{res.metrics['chi2_free']:.4g} | {support_shape(res.support)} |", flush=True)
    if not args.skip_cohere:
        amplitude = np.sqrt(np.where(mask, 0.0, intensity))
        obj, seconds, iters = run_cohere(amplitude)
        e = fourier_errors(obj, intensity, mask=mask, free_mask=free)
        print(f"| cohere-core | {RECIPE} (thr 0.1, sigma 1) | 1 | {seconds:.1f} | "
              f"{1e3 * seconds / iters:.2f} | {e['chi2']:.4g} | {e['chi2_free']:.4g} | "
              f"{support_shape(np.abs(obj) > 0)} |")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--photons", type=float, default=1e9)
    parser.add_argument("--skip-cohere", action="store_true")
    parser.add_argument("--real", default=None,
                        help="a prepared CXI (python -m reconstruction prepare): phase it with "
                        "both engines instead of the simulations")
    parser.add_argument("--runs", type=int, default=1, help="random starts of our engine (--real)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="timed runs of our engine per size (median reported, after a warm-up)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"# bench_phasing  torch {torch.__version__}  numpy {np.__version__}  threads {args.threads}"
          f"  device {device}  load {os.getloadavg()[0]:.2f}")
    if not args.skip_cohere:
        from importlib.metadata import version

        print(f"# cohere-core {version('cohere-core')} (numpy backend)")
    if args.real:
        return bench_real(args)
    print("| size | engine | ms/iteration | x FFT pair | ratio cohere/ours | iterations | chi2 | rel. error | support |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n in args.sizes:
        truth = faceted_crystal(n)
        clean = intensity_of(truth).astype(np.float64)
        clean *= args.photons * (n / 64) ** 3 / clean.sum()
        intensity = np.random.default_rng(1).poisson(clean).astype(np.float32)
        free = free_pixel_mask(np.zeros(intensity.shape, bool), fraction=0.05, seed=0)
        pair = fft_pair_ms(n, device)
        fftw_pair = fftw_pair_ms(n, args.threads) if device.type == "cpu" else None
        truth_chi2 = fourier_errors(truth, intensity, free_mask=free)["chi2"]
        rows = []
        # the engine's own choice, then (where FFTW is installed) torch's FFT side by side
        for torch_fft in (False, True) if fftw_pair is not None else (False,):
            use_torch_fft(torch_fft)
            ms, result = time_ours(intensity, args)
            q = compare_to_truth(result.obj, truth)
            e = fourier_errors(result.obj, intensity, free_mask=free)
            fft = result.config["fft"]
            rows.append((f"ours ({fft})", ms, fftw_pair if fft == "fftw" else pair,
                         result.metrics["iterations"], e["chi2"], q["rel_error"],
                         int(result.support.sum())))
        use_torch_fft(False)
        cohere_ms = None
        if not args.skip_cohere:
            obj, seconds, iters = run_cohere(np.sqrt(intensity))
            cq = compare_to_truth(obj, truth)
            ce = fourier_errors(obj, intensity, free_mask=free)
            cohere_ms = 1e3 * seconds / iters
            rows.append(("cohere-core", cohere_ms, pair, iters, ce["chi2"], cq["rel_error"],
                         int((np.abs(obj) > 0).sum())))
        for name, ms, ref_pair, iters, chi2, rel, sup in rows:
            ratio = f"{cohere_ms / ms:.1f}" if cohere_ms and name != "cohere-core" else ""
            print(f"| {n}^3 | {name} | {ms:.2f} | {ms / ref_pair:.2f} | {ratio} | {iters} | "
                  f"{chi2:.3g} | {rel:.3f} | {sup} |")
        pairs = f"FFT pair: torch {pair:.2f} ms" + (
            f", FFTW {fftw_pair:.2f} ms" if fftw_pair is not None else "")
        print(f"| {n}^3 | truth | | {pairs} | | | {truth_chi2:.3g} | 0 | "
              f"{int((np.abs(truth) > 0).sum())} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
