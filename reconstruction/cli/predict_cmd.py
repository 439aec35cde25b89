"""``python -m reconstruction predict FILE --out RESULT.cxi``: one network pass."""

from __future__ import annotations

import argparse

from reconstruction.cli.common import (
    add_device_option,
    add_json_option,
    print_json,
    run_with_progress,
)


def register(subparsers) -> None:
    """Add the ``predict`` command."""
    parser = subparsers.add_parser(
        "predict",
        help="predict amplitude and phase with the network, write a result CXI",
        description="Predict the object of a prepared pattern (raw files are prepared on the "
        "fly) and report the prediction's chi2 and chi2_free against the data.",
    )
    parser.add_argument("file", help="prepared (or raw) diffraction file")
    parser.add_argument("--out", required=True, help="result CXI file to write")
    parser.add_argument("--checkpoint", default=None, help="model file (default: shipped)")
    parser.add_argument("--threshold", type=float, default=0.1, help="support threshold")
    parser.add_argument(
        "--optimise-steps",
        type=int,
        default=0,
        help="first optimise the weights on this pattern for N steps (unsupervised transfer)",
    )
    parser.add_argument("--from-scratch", action="store_true", help="optimise from random weights")
    parser.add_argument("--flips", type=int, choices=(1, 4, 8), default=1,
                        help="average the predictions of this many mirrored views of the pattern "
                        "(test-time augmentation; 8 in 3D only)")
    add_device_option(parser)
    add_json_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Predict and print a summary; return 0."""
    from reconstruction.nn.workflow import predict_file

    summary = run_with_progress(
        predict_file,
        args.file,
        args.out,
        checkpoint_path=args.checkpoint,
        device=args.device,
        threshold=args.threshold,
        optimise_steps=args.optimise_steps,
        from_scratch=args.from_scratch,
        flips=args.flips,
    )
    if args.json:
        print_json(summary)
        return 0
    m = summary["metrics"]
    print(f"result       {summary['out_path']}")
    print(f"model        {summary['model_name']}  sha256 {summary['model_sha256'][:16]}")
    nan = float("nan")
    print(f"chi2         {m.get('chi2', nan):.4g}   chi2_free {m.get('chi2_free', nan):.4g}")
    print(f"amplitude    spread {m.get('amplitude_spread', nan):.3f} inside the support")
    for line in summary.get("warnings", []):
        print(f"warning      {line}")
    predict_ms = summary["timings"]["predict"] * 1e3
    print(f"time         predict {predict_ms:.0f} ms, total {summary['seconds']:.2f} s")
    return 0
