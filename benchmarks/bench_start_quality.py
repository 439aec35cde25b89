"""Benchmark what ER**50 makes of starts of known quality: how good must the network be?

On the held-out simulated 64³ patterns of ``bench_pipeline.py`` (``HELD_OUT_SEED``), each truth
is degraded in a controlled way and refined as ``refine`` does (ER**50 with shrink-wrap, support
from the start's 10 % contour). Printed per degradation: the start's and the result's relative
error against the truth (median), success (result <= 0.2) and the fraction of patterns whose
chi2 is no worse (<= 1.05 x) than conventional phasing's (best of 5 x 600 iterations, read from
the ``bench_pipeline.py --conventional-cache`` file, so run that first). Degradations
(``--modes``):

- ``smooth E``: plus a smooth random complex field (Gaussian-filtered noise, sigma 2 px, inside
  the crystal's neighbourhood) scaled to relative error E;
- ``shrink S``: the phase about its mean multiplied by S (0 = flat phase, exact amplitude);
- ``blur S``: the amplitude blurred by a Gaussian of S px, the phase exact;
- ``network 0`` / ``network-amplitude 0`` / ``network-phase 0``: the shipped model's prediction
  aligned on the truth (shift, twin, phase offset and ramp), whole, or only its amplitude with
  the truth's phase, or only its phase on the truth's amplitude (the level is ignored).

Usage: ``.venv/bin/python benchmarks/bench_start_quality.py --cache benchmarks/conventional_cache_64.json
[--n 100] [--modes smooth:0.2,0.4 shrink:0,0.5 blur:1,2,3 network:0 network-amplitude:0
network-phase:0]``
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_pipeline import conventional_key

from reconstruction.metrics import compare_to_truth, fourier_errors, free_pixel_mask
from reconstruction.nn import load_checkpoint, predict_objects
from reconstruction.nn.workflow import HELD_OUT_SEED, default_checkpoint_path
from reconstruction.phasing import phase_retrieve
from reconstruction.phasing.support import gaussian_blur_numpy
from reconstruction.simulate import Recipe, SimulatedDataset


def degrade(
    truth: np.ndarray, mode: str, level: float, rng: np.random.Generator, predicted=None
) -> np.ndarray:
    """The truth degraded by ``mode`` at ``level`` (see the module docstring), complex64;
    ``predicted``: the network's prediction aligned on the truth, for the ``network`` modes."""
    amp, phase = np.abs(truth), np.angle(truth)
    if mode.startswith("network"):
        if mode == "network":
            return predicted.astype(np.complex64)
        if mode == "network-amplitude":
            return (np.abs(predicted) * np.exp(1j * phase)).astype(np.complex64)
        if mode == "network-phase":
            return (amp * np.exp(1j * np.angle(predicted))).astype(np.complex64)
    inside = amp > 0.1 * amp.max()
    mean_phase = np.angle(np.sum(truth[inside]))
    if mode == "smooth":
        near = gaussian_blur_numpy(inside.astype(float), 2.0) > 0.05
        noise = gaussian_blur_numpy(rng.standard_normal(truth.shape), 2.0) + 1j * gaussian_blur_numpy(
            rng.standard_normal(truth.shape), 2.0
        )
        noise *= near
        start = truth + noise * (level * np.linalg.norm(truth) / np.linalg.norm(noise))
    elif mode == "shrink":
        start = amp * np.exp(1j * (mean_phase + level * np.angle(np.exp(1j * (phase - mean_phase)))))
    elif mode == "blur":
        start = gaussian_blur_numpy(amp, level) * np.exp(1j * phase)
    else:
        raise SystemExit(f"unknown mode {mode!r}: smooth, shrink, blur or network[-amplitude|-phase]")
    return start.astype(np.complex64)


def main() -> None:
    """Parse the options, refine every degraded start and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", required=True, help="bench_pipeline.py's conventional cache")
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5, help="the conventional results' starts")
    parser.add_argument("--modes", nargs="+", default=["smooth:0.2,0.4", "shrink:0,0.5", "blur:1,2,3"])
    args = parser.parse_args()
    torch.set_num_threads(2)
    cache = json.loads(Path(args.cache).read_text())
    cases = [(m, float(v)) for spec in args.modes for m, vs in [spec.split(":")] for v in vs.split(",")]
    data = SimulatedDataset(Recipe(kind="mixed", shape=64, dims=3), args.n, HELD_OUT_SEED)
    model = None
    if any(mode.startswith("network") for mode, _ in cases):
        model, _ = load_checkpoint(default_checkpoint_path(3))
    rows: dict[tuple[str, float], list] = {case: [] for case in cases}
    for i in range(args.n):
        conv = cache.get(conventional_key(i, "mixed", args.runs))
        if conv is None:
            continue
        item = data[i]
        intensity = item["intensity"][0].numpy().astype(np.float32)
        mask = item["mask"][0].numpy().astype(bool)
        truth = item["amplitude"][0].numpy() * np.exp(1j * item["phase"][0].numpy())
        free = free_pixel_mask(mask, fraction=0.05, seed=0)
        inside = np.abs(truth) > 0.1
        rng = np.random.default_rng(i)
        predicted = None
        if model is not None:
            obj, _ = predict_objects(model, intensity, mask)
            predicted = compare_to_truth(obj[0], truth, support=inside)["aligned"]
        for mode, level in cases:
            start = degrade(truth, mode, level, rng, predicted)
            support = np.abs(start) > 0.1 * np.abs(start).max()
            result = phase_retrieve(
                intensity, mask=mask, support=support, initial_object=start, algorithm="ER**50",
                n_cycles=1, device="cpu", shrinkwrap=True,
            )
            rows[(mode, level)].append((
                compare_to_truth(start, truth, support=inside)["rel_error"],
                compare_to_truth(result.obj, truth, support=inside)["rel_error"],
                fourier_errors(result.obj, intensity, mask=mask, free_mask=free)["chi2"],
                conv["conv_chi2"],
            ))
        print(f"[{i + 1}/{args.n}]", file=sys.stderr, flush=True)
    print("| start (the truth degraded) | patterns | start rel. error | after ER50 | success | "
          "chi2 median | chi2 no worse than conventional |")
    print("|---|---|---|---|---|---|---|")
    for (mode, level), values in rows.items():
        v = np.array(values)
        print(f"| {mode} {level:g} | {len(v)} | {np.median(v[:, 0]):.3f} | {np.median(v[:, 1]):.3f} | "
              f"{100 * np.mean(v[:, 1] <= 0.2):.0f} % | {np.median(v[:, 2]):.4g} | "
              f"{100 * np.mean(v[:, 2] <= 1.05 * v[:, 3]):.0f} % |", flush=True)


if __name__ == "__main__":
    main()
