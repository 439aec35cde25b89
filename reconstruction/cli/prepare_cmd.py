"""``python -m reconstruction prepare FILE --out PREPARED.cxi``: centre, bin and crop data."""

from __future__ import annotations

import argparse

from reconstruction.cli.common import add_json_option, print_json, run_with_progress, shape_value
from reconstruction.io.workflow import prepare_file
from reconstruction.preprocess.peak import PEAK_METHODS


def register(subparsers) -> None:
    """Add the ``prepare`` command."""
    parser = subparsers.add_parser(
        "prepare",
        help="centre on the peak, bin to a target oversampling, crop/pad, write a prepared CXI",
        description="Read raw diffraction data (CXI/HDF5/NeXus, NPY/NPZ, EDF), apply dark/flat "
        "corrections when present, threshold, centre on the peak, bin each axis by "
        "floor(oversampling / target) and crop or pad to SHAPE; write a CXI file for phasing.",
    )
    parser.add_argument("file", help="raw data file")
    parser.add_argument("--out", required=True, help="output prepared CXI file")
    parser.add_argument(
        "--path", default=None, help="dataset path inside an HDF5 file (or npz key)"
    )
    parser.add_argument(
        "--shape",
        type=shape_value,
        default=64,
        help="output size per axis, or 'full': the whole (binned) pattern (default 64)",
    )
    parser.add_argument(
        "--oversampling",
        type=float,
        default=3.0,
        help="target linear oversampling per axis (default 3)",
    )
    parser.add_argument(
        "--threshold", type=float, default=0.0, help="counts below this are set to 0 (default 0)"
    )
    parser.add_argument(
        "--peak", choices=PEAK_METHODS, default="auto",
        help="how to find the centre: max (brightest pixel), com, friedel (centre of point "
        "symmetry, for forward scattering behind a beamstop) or auto (friedel when the "
        "brightest pixel touches the mask, else max; default)"
    )
    add_json_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Prepare ``args.file`` into ``args.out``; return 0."""
    summary = run_with_progress(
        prepare_file,
        args.file,
        args.out,
        dataset_path=args.path,
        shape=args.shape,
        oversampling=args.oversampling,
        threshold=args.threshold,
        peak=args.peak,
    )
    if args.json:
        print_json(summary)
        return 0

    def axes(values) -> str:
        return " x ".join(f"{v:.2f}" if isinstance(v, float) else str(v) for v in values)

    print(f"prepared     {summary['input_path']} {axes(summary['input_shape'])}")
    print(f"written      {summary['out_path']} {axes(summary['shape'])}")
    print(
        f"oversampling before {axes(summary['oversampling_before'])}  ->  after {axes(summary['oversampling_after'])}"
        f"  (target {summary['oversampling_target']}, bin factors {axes(summary['bin_factors'])})"
    )
    print(f"peak         {tuple(summary['peak_position'])} of the input, now at the centre")
    print(f"masked       {100 * summary['masked_fraction']:.3g} % of the prepared pixels")
    for warning in summary["warnings"]:
        print(f"warning      {warning}")
    print(f"time         {summary['seconds']:.2f} s")
    return 0
