"""``python -m reconstruction pipeline FILE --out DIR``: prepare, predict, refine."""

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
    """Add the ``pipeline`` command."""
    parser = subparsers.add_parser(
        "pipeline",
        help="prepare -> predict (network) -> refine (ER**50) in one go",
        description="Prepare a raw file (skipped for prepared files), predict with the network, "
        "refine with the iterative engine; writes prepared.cxi, predicted.cxi and refined.cxi "
        "into the output folder, and phased.cxi when a 3D prediction looks twin-averaged "
        "(see --fallback-runs).",
    )
    parser.add_argument("file", help="raw or prepared diffraction file")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--checkpoint", default=None, help="model file (default: shipped)")
    parser.add_argument("--algorithm", default="ER**50", help="refinement schedule")
    parser.add_argument("--threshold", type=float, default=0.1, help="support threshold")
    add_shrinkwrap_option(parser)
    add_psf_option(parser)
    parser.add_argument("--shape", type=int, default=64, help="prepared size (default 64)")
    parser.add_argument("--oversampling", type=float, default=3.0, help="target oversampling")
    parser.add_argument("--flips", type=int, choices=(1, 4, 8), default=None,
                        help="mirrored views of the pattern the prediction averages (default 4; "
                        "1 = a plain prediction; 8 in 3D only)")
    parser.add_argument("--fallback-runs", type=int, default=None, metavar="N",
                        help="random starts phased as well when the 3D prediction looks like the "
                        "average of the crystal and its twin; the better fit is kept (default 2; "
                        "0 = never)")
    add_device_option(parser)
    add_json_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the pipeline and print a summary; return 0."""
    from reconstruction.nn.workflow import pipeline_file

    summary = run_with_progress(
        pipeline_file,
        args.file,
        args.out,
        checkpoint_path=args.checkpoint,
        refine_algorithm=args.algorithm,
        support_threshold=args.threshold,
        shrinkwrap=args.shrinkwrap,
        psf=args.psf,
        shape=args.shape,
        oversampling=args.oversampling,
        device=args.device,
        flips=args.flips,
        fallback_runs=args.fallback_runs,
    )
    if args.json:
        print_json(summary)
        return 0
    p = summary["predicted"]["metrics"]
    r = summary["metrics"]
    t = summary["timings"]
    print(f"prepared     {summary['prepared_path']}")
    print(f"predicted    {summary['predicted_path']}  chi2 {p.get('chi2', float('nan')):.4g}"
          f"  chi2_free {p.get('chi2_free', float('nan')):.4g}  ({t['predict'] * 1e3:.0f} ms)")
    f = summary["refined"]["metrics"]
    print(f"refined      {summary['refined']['out_path']}  chi2 {f.get('chi2', float('nan')):.4g}"
          f"  chi2_free {f.get('chi2_free', float('nan')):.4g}  ({t['refine']:.2f} s)")
    for line in summary.get("warnings", []):
        print(f"warning      {line}")
    if summary.get("phased") is not None:
        h = summary["phased"]["metrics"]
        print(f"phased       {summary['phased']['out_path']}  chi2 {h.get('chi2', float('nan')):.4g}"
              f"  chi2_free {h.get('chi2_free', float('nan')):.4g}  ({t['phase']:.2f} s, "
              f"{len(summary['phased'].get('runs', []))} random starts)")
    print(f"result       {summary['out_path']}  ({summary['route']}: the better fit)"
          if summary.get("phased") is not None else f"result       {summary['out_path']}")
    print_psf_line(r)
    print(f"model        {summary['model_name']}  sha256 {summary['model_sha256'][:16]}")
    print(f"time         {summary['seconds']:.2f} s")
    return 0
