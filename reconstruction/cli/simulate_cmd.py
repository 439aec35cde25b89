"""``python -m reconstruction simulate --kind mixed --n 16 --out DIR``: simulated training data."""

from __future__ import annotations

import argparse

from reconstruction.cli.common import add_json_option, print_json, run_with_progress
from reconstruction.errors import ConfigError
from reconstruction.simulate.recipe import KINDS


def photon_range(text: str) -> tuple[float, float]:
    """Parse "A:B" (or a single "A") into a (low, high) photon range."""
    parts = text.split(":")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected photons as A:B (e.g. 1e5:1e9), got {text!r}"
        ) from None
    if len(values) == 1:
        values = values * 2
    if len(values) != 2 or not 0 < values[0] <= values[1]:
        raise argparse.ArgumentTypeError(f"expected 0 < A <= B in --photons A:B, got {text!r}")
    return values[0], values[1]


def register(subparsers) -> None:
    """Add the ``simulate`` command."""
    parser = subparsers.add_parser(
        "simulate",
        help="simulate diffraction patterns with their true objects (training data)",
        description="Draw random objects (superellipsoids with smooth phase, strained faceted fcc "
        "crystals, or a mix), compute their far-field intensity with Poisson noise and optional "
        "detector effects, and write HDF5 shards readable by StoredDataset (see docs/simulation.md).",
    )
    parser.add_argument(
        "--kind", choices=KINDS, default="mixed", help="object family (default mixed)"
    )
    parser.add_argument("--n", type=int, default=16, help="number of patterns (default 16)")
    parser.add_argument("--shape", type=int, default=64, help="pattern side in pixels (default 64)")
    parser.add_argument(
        "--dims", type=int, choices=(2, 3), default=3, help="2D or 3D patterns (default 3)"
    )
    parser.add_argument(
        "--photons",
        type=photon_range,
        default=(1e5, 1e9),
        help="total counts range A:B, log-uniform (default 1e5:1e9)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--out", required=True, help="output .h5 file, or a folder for shards")
    parser.add_argument(
        "--cxi", action="store_true", help="also write each pattern as a CXI file with its truth"
    )
    parser.add_argument("--workers", type=int, default=1, help="generating processes (default 1)")
    parser.add_argument(
        "--shard-size", type=int, default=1000, help="samples per shard in a folder (default 1000)"
    )
    add_json_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Simulate ``args.n`` patterns into ``args.out``; return 0."""
    from reconstruction.simulate.workflow import simulate_dataset

    if args.n < 1:
        raise ConfigError(f"--n must be at least 1, got {args.n}")
    summary = run_with_progress(
        simulate_dataset,
        args.out,
        kind=args.kind,
        n=args.n,
        shape=args.shape,
        dims=args.dims,
        photons=args.photons,
        seed=args.seed,
        cxi=args.cxi,
        workers=args.workers,
        shard_size=args.shard_size,
    )
    if args.json:
        print_json(summary)
        return 0
    families = ", ".join(f"{v} {k}" for k, v in sorted(summary["families"].items()))
    side = " x ".join(str(s) for s in summary["shape"])
    print(f"simulated    {summary['n']} patterns of {side} ({families})")
    print(f"written      {summary['out_path']} ({len(summary['files'])} file(s))")
    if summary["cxi_dir"]:
        print(f"cxi files    {len(summary['cxi_files'])} in {summary['cxi_dir']}")
    print(
        f"time         {summary['seconds']:.2f} s ({summary['samples_per_second']:.1f} patterns/s)"
    )
    return 0
