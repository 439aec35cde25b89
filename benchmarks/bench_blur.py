"""Benchmark the engine's real blurs (shrink-wrap, partial coherence) with FFTW plans against torch.

Two measurements, each alternating the two paths in one process so that a VM's changing speed
hits both alike:

1. one blur of (runs, N, N, N) float32 boxes: torch's ``rfftn`` x transfer ``irfftn`` against
   ``fftw.RealConvolution.convolve`` (r2c, product, c2r on fixed buffers);
2. whole ``phase_retrieve`` runs (default recipe, 600 iterations) on a held-out simulated
   pattern, coherent (shrink-wrap blurs only) and with a PSF (a blur every iteration of the
   second half), with the FFTW real plans and with them turned off. The complex transforms are
   the same in both (whatever the engine measured faster).

Usage: ``.venv/bin/python benchmarks/bench_blur.py [--size 64] [--runs 1 5] [--repeat 5]``
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reconstruction.nn.workflow import HELD_OUT_SEED
from reconstruction.phasing import fftw, phase_retrieve
from reconstruction.simulate.dataset import SimulatedDataset
from reconstruction.simulate.recipe import Recipe


def time_blurs(size: int, runs: int, repeat: int = 60) -> tuple[float, float]:
    """Median ms of one blur of ``runs`` boxes of ``size``³: (torch, FFTW), alternated."""
    shape = (size, size, size)
    dims = (-3, -2, -1)
    values = torch.rand((runs,) + shape)
    transfer = torch.rand((1,) + shape[:-1] + (size // 2 + 1,))
    conv = fftw.real_convolution(shape, runs, torch.get_num_threads(), work=10**6)
    if conv is None:
        raise SystemExit("no FFTW real plans here (pyFFTW missing, CDI_FFT=torch, or torch won)")
    scaled = (transfer / size**3).numpy()

    def with_torch():
        spec = torch.fft.rfftn(values, dim=dims).mul_(transfer)
        torch.fft.irfftn(spec, s=shape, dim=dims)

    def with_fftw():
        conv.convolve(values.numpy(), scaled)

    times = {with_torch: [], with_fftw: []}
    for f in times:
        f()
    for _ in range(repeat):
        for f, out in times.items():
            start = time.perf_counter()
            f()
            out.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times[with_torch])), 1e3 * float(np.median(times[with_fftw]))


def time_runs(sample: dict, runs: int, psf, repeat: int) -> dict:
    """Median s of ``phase_retrieve`` with and without FFTW real plans, alternated, and chi2."""
    planned = fftw.real_convolution
    out = {}
    for _ in range(repeat):
        for mode in ("fftw", "torch"):
            fftw.real_convolution = planned if mode == "fftw" else (lambda *a, **k: None)
            try:
                start = time.perf_counter()
                result = phase_retrieve(
                    sample["intensity"], mask=sample["mask"], device="cpu", runs=runs, seed=1,
                    psf=psf,
                )
                elapsed = time.perf_counter() - start
            finally:
                fftw.real_convolution = planned
            out.setdefault(mode, []).append(elapsed)
            out[f"chi2 {mode}"] = result.metrics["chi2"]
    return out


def main() -> None:
    """Parse the options and print both tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--runs", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--repeat", type=int, default=5, help="whole runs per path (median)")
    args = parser.parse_args()


    print(
        f"# bench_blur  torch {torch.__version__}  threads {torch.get_num_threads()}  "
        f"{platform.processor() or platform.machine()}  load {os.getloadavg()[0]:.2f}"
    )
    print("| runs | torch blur (ms) | FFTW blur (ms) | torch / FFTW |")
    print("|---|---|---|---|")
    for runs in args.runs:
        t, f = time_blurs(args.size, runs)
        print(f"| {runs} | {t:.3f} | {f:.3f} | {t / f:.2f} |", flush=True)
    sample = SimulatedDataset(Recipe(kind="mixed", shape=args.size, dims=3), 1, HELD_OUT_SEED)
    sample = sample.sample(0)
    print()
    print("| model | runs | torch blurs (s) | FFTW blurs (s) | torch / FFTW | chi2 torch | chi2 FFTW |")
    print("|---|---|---|---|---|---|---|")
    for psf in (None, "on"):
        for runs in args.runs:
            r = time_runs(sample, runs, psf, args.repeat)
            t, f = float(np.median(r["torch"])), float(np.median(r["fftw"]))
            print(
                f"| {'PSF' if psf else 'coherent'} | {runs} | {t:.3f} | {f:.3f} | {t / f:.2f} | "
                f"{r['chi2 torch']:.5f} | {r['chi2 fftw']:.5f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
