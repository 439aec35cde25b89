"""Measure what keeping freed FFT buffers (``reconstruction.phasing.heap``) saves, side by side.

Each case runs ``phase_retrieve`` (cohere's recipe, 620 iterations, seeded random starts) on
the simulated faceted crystal of ``bench_phasing`` as the first phasing call of a fresh process,
as a worker's job does, with the allocator context on and off. Printed per case: milliseconds
per iteration and run, page faults and system CPU seconds during the call.

Usage: ``.venv/bin/python benchmarks/bench_heap.py [--cases 64x5 128x1 128x4] [--threads 2]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one_case(n: int, runs: int, heap_on: bool, threads: int) -> dict:
    """Run one phasing call in this process and return its timings (called in a child)."""
    import contextlib
    import resource

    import numpy as np

    sys.path.insert(0, str(ROOT))
    from benchmarks.bench_phasing import RECIPE, faceted_crystal
    from reconstruction.fourier import intensity_of
    from reconstruction.phasing import retrieve

    if not heap_on:
        retrieve.reuse_freed_memory = contextlib.nullcontext
    clean = intensity_of(faceted_crystal(n)).astype(np.float64)
    clean *= 1e9 * (n / 64) ** 3 / clean.sum()
    intensity = np.random.default_rng(1).poisson(clean).astype(np.float32)
    before = resource.getrusage(resource.RUSAGE_SELF)
    result = retrieve.phase_retrieve(intensity, algorithm=RECIPE, n_cycles=1, runs=runs,
                                     threads=threads, seed=0)
    after = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "ms_per_iteration_and_run": 1e3 * result.metrics["seconds_per_iteration"] / runs,
        "page_faults": after.ru_minflt - before.ru_minflt,
        "system_s": after.ru_stime - before.ru_stime,
        "chi2": result.metrics["chi2"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=["64x1", "64x5", "128x1", "128x4"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        n, runs, on = json.loads(args.child)
        print(json.dumps(one_case(n, runs, on, args.threads)))
        return 0
    print("| size x runs | heap reuse | ms / iteration / run | page faults | system CPU s | chi2 |")
    print("|---|---|---|---|---|---|")
    for case in args.cases:
        n, runs = (int(v) for v in case.split("x"))
        for on in (False, True):
            out = subprocess.run(
                [sys.executable, __file__, "--threads", str(args.threads),
                 "--child", json.dumps([n, runs, on])],
                capture_output=True, text=True, check=True, cwd=ROOT,
            ).stdout.strip().splitlines()[-1]
            r = json.loads(out)
            print(f"| {n}^3 x {runs} | {'on' if on else 'off'} | "
                  f"{r['ms_per_iteration_and_run']:.2f} | {r['page_faults']:,} | "
                  f"{r['system_s']:.1f} | {r['chi2']:.3g} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
