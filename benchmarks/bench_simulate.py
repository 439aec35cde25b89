"""Benchmark simulated-pattern generation: patterns per second per core, per family.

    .venv/bin/python benchmarks/bench_simulate.py [--n 60] [--shape 64] [--json FILE]

Generates ``n`` samples of each family (superellipsoid, crystal, mixed) in 3D at ``shape``^3,
and of the mixed family in 2D at ``shape``^2 and (2 shape)^2, in this single process with the
default recipe (all detector effects at their default probabilities). Prints a Markdown
table: patterns per second from wall time and from process CPU time (= per core; the honest
number on a shared machine), and the median milliseconds spent drawing the object and
recording the pattern. Goal: >= 20 patterns per second per core at 64^3.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reconstruction.simulate import Recipe, sample_rng
from reconstruction.simulate.detector import detect, draw_detector
from reconstruction.simulate.objects import draw_object
from reconstruction.simulate.sample import generate_sample


def measure(recipe: Recipe, n: int, seed: int = 12345) -> dict[str, float]:
    """Time ``n`` calls of ``generate_sample`` and the two stages of a few more."""
    generate_sample(recipe, sample_rng(seed, n + 1))  # warm-up (caches, FFT plans)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for i in range(n):
        generate_sample(recipe, sample_rng(seed, i))
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    obj_ms, det_ms = [], []
    family = recipe.kind if recipe.kind != "mixed" else None
    for i in range(min(n, 20)):
        rng = sample_rng(seed + 1, i)
        fam = family or ("crystal" if i % 2 else "superellipsoid")
        view = "volume" if recipe.dims == 3 else ("slice" if i % 2 else "projection")
        t0 = time.perf_counter()
        obj, _ = draw_object(recipe, rng, family=fam, view=view)
        t1 = time.perf_counter()
        detect(obj, rng, **draw_detector(recipe, rng))
        t2 = time.perf_counter()
        obj_ms.append((t1 - t0) * 1e3)
        det_ms.append((t2 - t1) * 1e3)
    return {
        "n": n,
        "per_second_wall": n / wall,
        "per_second_cpu": n / cpu,
        "object_ms": float(np.median(obj_ms)),
        "detector_ms": float(np.median(det_ms)),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=60, help="samples per case (default 60)")
    parser.add_argument("--shape", type=int, default=64, help="box side (default 64)")
    parser.add_argument("--json", default=None, help="write the numbers here")
    args = parser.parse_args(argv)
    cases = [
        ("superellipsoid", 3, args.shape),
        ("crystal", 3, args.shape),
        ("mixed", 3, args.shape),
        ("mixed", 2, args.shape),
        ("mixed", 2, 2 * args.shape),
    ]
    rows = []
    for kind, dims, shape in cases:
        result = measure(Recipe(kind=kind, dims=dims, shape=shape), args.n)
        rows.append({"kind": kind, "dims": dims, "shape": shape, **result})
    load = os.getloadavg()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    print(f"python {platform.python_version()}, numpy {np.__version__}")
    print()
    print(
        "| family | dims | size | patterns/s (wall) | patterns/s per core (CPU) | object ms | detector ms |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        size = "x".join([str(r["shape"])] * r["dims"])
        print(
            f"| {r['kind']} | {r['dims']}D | {size} | {r['per_second_wall']:.1f} | {r['per_second_cpu']:.1f} "
            f"| {r['object_ms']:.1f} | {r['detector_ms']:.1f} |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps({"load": load, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
