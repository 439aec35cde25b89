"""``python -m reconstruction refine DATA --initial PREDICTED.cxi --out RESULT.cxi``."""

from __future__ import annotations

import argparse

from reconstruction.cli.common import (
    add_device_option,
    add_json_option,
    add_psf_option,
    add_shrinkwrap_option,
    print_json,
    print_psf_line,
    run_with_progress,
)


def register(subparsers) -> None:
    """Add the ``refine`` command."""
    parser = subparsers.add_parser(
        "refine",
        help="refine a prediction (or any result) with the iterative engine",
        description="Start from the object of a result file (e.g. the network's prediction) "
        "and its support (threshold of the maximum amplitude), run an iterative schedule "
        "(default ER**50) on the prepared data; the result keeps both error curves.",
    )
    parser.add_argument("file", help="prepared (or raw) diffraction file")
    parser.add_argument("--initial", required=True, help="result file to start from")
    parser.add_argument("--out", required=True, help="result CXI file to write")
    parser.add_argument("--algorithm", default="ER**50", help="schedule (default ER**50)")
    parser.add_argument("--threshold", type=float, default=0.1, help="support threshold")
    add_shrinkwrap_option(parser)
    add_psf_option(parser)
    add_device_option(parser)
    add_json_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Refine and print a summary; return 0."""
    from reconstruction.phasing.workflow import refine_file

    summary = run_with_progress(
        refine_file,
        args.file,
        args.out,
        initial_path=args.initial,
        algorithm=args.algorithm,
        support_threshold=args.threshold,
        shrinkwrap=args.shrinkwrap,
        psf=args.psf,
        device=args.device,
    )
    if args.json:
        print_json(summary)
        return 0
    m = summary.get("metrics", {})
    print(f"result       {summary['out_path']}")
    print(f"algorithm    {args.algorithm}")
    nan = float("nan")
    print(f"chi2         {m.get('chi2', nan):.4g}   chi2_free {m.get('chi2_free', nan):.4g}")
    print_psf_line(m)
    print(f"time         {summary['seconds']:.2f} s")
    return 0
