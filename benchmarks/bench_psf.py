"""Benchmark partial-coherence modelling (``psf``): the same patterns phased with and without it.

On held-out simulated 64³ patterns (``reconstruction.nn.workflow.HELD_OUT_SEED``, the same
patterns as ``bench_pipeline.py``; about 30 % carry the simulator's partial-coherence blur,
Gaussian sigma 0.3-1 px) each pattern is phased twice with the default recipe from the same
seeded starts, once coherent and once with ``psf`` (default: a Gaussian of 0.5 px FWHM fitted
by Richardson-Lucy from half the iterations on). Printed per pattern and summarised for all and
for the blurred ones: relative error vs the truth after alignment, success (<= 0.2), chi2 (of
each run's own model), fitted FWHM against the simulator's, and the time ratio. With ``--real
FILE`` a raw or prepared file (the APS scan) is phased both ways too (chi2, chi2_free, support).

Usage: ``.venv/bin/python benchmarks/bench_psf.py [--n 40] [--runs 2] [--psf on]
[--real ../shared/data/real/aps34idc_Au_S0054_rocking_scan.cxi --real-runs 4]``
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reconstruction.metrics import compare_to_truth
from reconstruction.nn.workflow import HELD_OUT_SEED
from reconstruction.phasing import phase_retrieve
from reconstruction.simulate.dataset import SimulatedDataset
from reconstruction.simulate.recipe import Recipe

SIGMA_TO_FWHM = 2.0 * np.sqrt(2.0 * np.log(2.0))
SUCCESS = 0.2


def phase_both(intensity, mask, *, runs: int, seed: int, psf, keep: int = 1):
    """(coherent, with psf) PhasingResults and their wall times (s), from the same starts."""
    out = []
    for setting in (None, psf):
        start = time.monotonic()
        result = phase_retrieve(
            intensity, mask=mask, device="cpu", runs=runs, keep=keep, seed=seed, psf=setting
        )
        out.append((result, time.monotonic() - start))
    return out


def summarise(rows: list[dict], label: str) -> None:
    """Print medians and counts of one group of patterns."""
    if not rows:
        return
    rel = np.array([[r["rel"], r["rel_psf"]] for r in rows])
    diff = rel[:, 1] - rel[:, 0]
    times = np.array([[r["s"], r["s_psf"]] for r in rows])
    print(f"{label}: {len(rows)} patterns")
    print(f"  relative error median      {np.median(rel[:, 0]):.3f} -> {np.median(rel[:, 1]):.3f}")
    print(
        f"  success (<= {SUCCESS})          {int((rel[:, 0] <= SUCCESS).sum())} -> "
        f"{int((rel[:, 1] <= SUCCESS).sum())}"
    )
    print(
        f"  psf lower / higher error   {int((diff < 0).sum())} / {int((diff > 0).sum())} "
        f"(by more than 0.05: {int((diff < -0.05).sum())} / {int((diff > 0.05).sum())})"
    )
    print(
        f"  time per pattern median    {np.median(times[:, 0]):.2f} s -> {np.median(times[:, 1]):.2f} s "
        f"({np.median(times[:, 1] / times[:, 0]):.2f}x)"
    )


def simulated(args) -> None:
    """Phase ``args.n`` held-out patterns both ways and print the table and summaries."""
    data = SimulatedDataset(Recipe(kind="mixed", shape=64, dims=3), args.n, HELD_OUT_SEED)
    print(
        f"{'i':>3} {'sigma':>5} {'true FWHM':>9} {'rel':>6} {'rel psf':>7} {'chi2':>8} "
        f"{'chi2 psf':>8} {'FWHM fit':>8}"
    )
    rows = []
    for i in range(args.n):
        sample = data.sample(i)
        sigma = float(sample["params"]["detector"]["coherence_sigma"] or 0.0)
        (plain, t0), (fitted, t1) = phase_both(
            sample["intensity"], sample["mask"], runs=args.runs, seed=i, psf=args.psf
        )
        row = {
            "sigma": sigma,
            "rel": compare_to_truth(plain.obj, sample["object"])["rel_error"],
            "rel_psf": compare_to_truth(fitted.obj, sample["object"])["rel_error"],
            "s": t0,
            "s_psf": t1,
        }
        rows.append(row)
        print(
            f"{i:>3} {sigma:>5.2f} {SIGMA_TO_FWHM * sigma:>9.2f} {row['rel']:>6.3f} "
            f"{row['rel_psf']:>7.3f} {plain.metrics['chi2']:>8.4f} {fitted.metrics['chi2']:>8.4f} "
            f"{fitted.metrics['psf_fwhm_px']:>8.2f}",
            flush=True,
        )
    summarise(rows, "all")
    summarise([r for r in rows if r["sigma"] > 0], "blurred (sigma > 0)")
    summarise([r for r in rows if r["sigma"] == 0], "coherent (sigma = 0)")


def real(args) -> None:
    """Phase a real file both ways (``args.real_runs`` starts, the best 2 kept)."""
    from reconstruction.io import load_data
    from reconstruction.io.workflow import as_prepared, is_prepared

    data = load_data(args.real)
    if not is_prepared(data):
        data = as_prepared(data, shape=64, oversampling=3.0)
    keep = min(2, args.real_runs)
    both = phase_both(
        data.intensity, data.mask, runs=args.real_runs, keep=keep, seed=0, psf=args.psf
    )
    print(
        f"\n{args.real} ({' x '.join(map(str, data.intensity.shape))}, {args.real_runs} starts, best {keep})"
    )
    for name, (result, seconds) in zip(("coherent", "psf"), both):
        m = result.metrics
        extra = ""
        if "psf_fwhm_px" in m:
            axes = ", ".join(f"{v:.2f}" for v in result.config["psf_fwhm_px_axes"])
            extra = (
                f"  FWHM {m['psf_fwhm_px']:.2f} px ({axes}); without the PSF chi2 "
                f"{m['chi2_coherent']:.4g}, chi2_free {m['chi2_free_coherent']:.4g}"
            )
        print(
            f"  {name:<9} chi2 {m['chi2']:.4g}  chi2_free {m['chi2_free']:.4g}  support "
            f"{int(result.support.sum())}  {seconds:.1f} s{extra}"
        )


def main() -> None:
    """Parse the options and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40, help="held-out patterns (default 40)")
    parser.add_argument("--runs", type=int, default=2, help="random starts per pattern (best kept)")
    parser.add_argument("--psf", default="on", help="PSF setting (default: the engine's default)")
    parser.add_argument("--real", default=None, help="also phase this raw or prepared file")
    parser.add_argument("--real-runs", type=int, default=4)
    args = parser.parse_args()
    if args.n > 0:
        simulated(args)
    if args.real:
        real(args)


if __name__ == "__main__":
    main()
