"""``python -m reconstruction phase INPUT --out RESULT.cxi``: iterative phase retrieval."""

from __future__ import annotations

import argparse

from reconstruction.cli.common import (
    add_device_option,
    add_json_option,
    add_psf_option,
    print_json,
    print_psf_line,
    run_with_progress,
    shape_value,
)
from reconstruction.errors import ConfigError
from reconstruction.phasing.retrieve import DEFAULT_ALGORITHM


def register(subparsers) -> None:
    """Add the ``phase`` command."""
    parser = subparsers.add_parser(
        "phase",
        help="phase a pattern with ER/HIO/RAAR + shrink-wrap (many random starts)",
        description="Phase a raw or prepared diffraction file with an algorithm schedule "
        "(PyNX style 'ER**20,HIO**160,ER**20' or cohere style '3*(20*ER+180*HIO)+20*ER') run "
        "CYCLES times, from RUNS random starts; the KEEP best (free log-likelihood) are aligned "
        "and averaged. Writes a result CXI with curves, metrics and provenance.",
    )
    parser.add_argument("file", help="raw or prepared diffraction file")
    parser.add_argument("--out", required=True, help="result CXI file to write")
    parser.add_argument(
        "--algorithm", default=DEFAULT_ALGORITHM, help=f"schedule (default {DEFAULT_ALGORITHM})"
    )
    parser.add_argument("--cycles", type=int, default=3, help="schedule repeats (default 3)")
    parser.add_argument("--runs", type=int, default=1, help="random starts (default 1)")
    parser.add_argument("--keep", type=int, default=1, help="best runs averaged (default 1)")
    parser.add_argument(
        "--support",
        default="auto",
        help="auto, box, a box size, or a file: a 0/1 image (EDF, .npy) or an object (result "
        "CXI, PyNX, cohere); a support of the raw frame's shape phases the raw data on that grid",
    )
    parser.add_argument(
        "--shape",
        type=shape_value,
        default=None,
        help="a raw file is prepared to this size per axis, or 'full' (the whole binned "
        "pattern; default: 64 in 3D, full in 2D)",
    )
    parser.add_argument(
        "--oversampling",
        type=float,
        default=3.0,
        help="a raw file is binned towards this linear oversampling per axis (default 3)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--no-shrinkwrap", action="store_true", help="keep the support fixed")
    parser.add_argument(
        "--shrinkwrap-threshold",
        type=float,
        default=None,
        metavar="F",
        help="shrink-wrap keeps the blurred amplitude above F of its maximum (default 0.15; "
        "0.1 for sparse objects such as ESRF's logo); with a support file it turns "
        "shrink-wrap on",
    )
    parser.add_argument(
        "--positivity",
        action="store_true",
        help="force a real, positive object (forward CDI of a weak phase object, as PyNX's "
        "ID10 script; never for Bragg CDI)",
    )
    add_psf_option(parser)
    add_device_option(parser)
    add_json_option(parser)
    parser.set_defaults(func=run)


def _shrinkwrap(args: argparse.Namespace):
    """The ``shrinkwrap`` argument of ``phase_file`` for these options (None: the default)."""
    if args.no_shrinkwrap and args.shrinkwrap_threshold is not None:
        raise ConfigError("--no-shrinkwrap and --shrinkwrap-threshold contradict each other")
    if args.no_shrinkwrap:
        return False
    if args.shrinkwrap_threshold is not None:
        return {"threshold": args.shrinkwrap_threshold}
    return None


def run(args: argparse.Namespace) -> int:
    """Phase ``args.file`` into ``args.out`` and print a summary; return 0."""
    from reconstruction.phasing.workflow import phase_file

    summary = run_with_progress(
        phase_file,
        args.file, args.out, algorithm=args.algorithm, cycles=args.cycles, runs=args.runs,
        keep=args.keep, support=args.support, seed=args.seed, device=args.device,
        shape=args.shape, oversampling=args.oversampling,
        shrinkwrap=_shrinkwrap(args), positivity=args.positivity, psf=args.psf,
    )
    if args.json:
        summary.pop("curves", None)
        print_json(summary)
        return 0
    m = summary["metrics"]
    print(f"result       {summary['out_path']}")
    print(f"algorithm    {summary['algorithm']}  ({summary['iterations']} iterations)")
    print(f"chi2         {m['chi2']:.4g}   chi2_free {m['chi2_free'] or float('nan'):.4g}   "
          f"llk {m['llk']:.4g}")
    print_psf_line(m)
    print(f"grid         {' x '.join(str(n) for n in summary['shape'])}")
    print(f"support      {m['support_size']} voxels ({100 * m['support_fraction']:.2f} %)")
    per_it = 1e3 * m["seconds_per_iteration"]
    print(f"time         {summary['seconds']:.2f} s  ({per_it:.2f} ms/iteration)")
    if len(summary["runs"]) > 1:
        print("run  seed  chi2        chi2_free   llk_free    kept")
        for r in summary["runs"]:
            free = r["chi2_free"] or float("nan")
            llk_free = r["llk_free"] or float("nan")
            kept = "*" if r["kept"] else ""
            print(f"{r['run']:>3}  {r['seed']:>4}  {r['chi2']:<10.4g}  {free:<10.4g}  "
                  f"{llk_free:<10.4g}  {kept}")
    return 0
