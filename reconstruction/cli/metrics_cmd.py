"""``python -m reconstruction metrics RESULT.cxi [--data INPUT] [--truth TRUTH] [--json]``."""

from __future__ import annotations

import argparse

from reconstruction.cli.common import add_json_option, print_json


def register(subparsers) -> None:
    """Add the ``metrics`` command."""
    parser = subparsers.add_parser(
        "metrics",
        help="chi2, free chi2, LLK of a result; SSIM / errors against a known truth",
        description="Recompute the Fourier errors of a result file's object against its own "
        "data (or --data), and compare it with a true object (--truth, .npy or object file) "
        "after alignment (shift, twin, global phase, phase ramp).",
    )
    parser.add_argument("file", help="result CXI file")
    parser.add_argument("--data", default=None, help="diffraction file to compare with")
    parser.add_argument("--truth", default=None, help="true object (.npy complex, or object file)")
    add_json_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the metrics of ``args.file``; return 0."""
    from reconstruction.metrics.workflow import metrics_file

    out = metrics_file(args.file, data_path=args.data, truth_path=args.truth)
    if args.json:
        print_json(out)
        return 0
    f = out["fourier"]
    print(f"result       {out['result_path']}")
    print(f"algorithm    {out['algorithm']}")
    print(f"chi2         {f['chi2']:.4g}   chi2_free {f['chi2_free'] or float('nan'):.4g}")
    print(f"llk          {f['llk']:.4g}   llk_free {f['llk_free'] or float('nan'):.4g}")
    if "fourier_coherent" in out:  # the result fitted a partial-coherence kernel
        c = out["fourier_coherent"]
        print(f"without PSF  chi2 {c['chi2']:.4g}   chi2_free {c['chi2_free'] or float('nan'):.4g}")
    print(f"support      {out['support_size']} voxels ({100 * out['support_fraction']:.2f} %)")
    if "truth" in out:
        t = out["truth"]
        print(f"truth        ssim {t['ssim']:.4f}  rel_error {t['rel_error']:.4f}  "
              f"phase_rms {t['phase_rms']:.4f} rad  twin {t['twin']}")
    return 0
