"""``python -m reconstruction labframe RESULT.cxi --data DATA --out OUT.(npz|vtk)``."""

from __future__ import annotations

import argparse

from reconstruction.cli.common import add_json_option, print_json


def register(subparsers) -> None:
    """Add the ``labframe`` command."""
    from reconstruction.geometry import DIFFRACTOMETERS

    parser = subparsers.add_parser(
        "labframe",
        help="put a 3D Bragg result on an orthogonal lab grid (true shape; NPZ or VTK)",
        description="Resample the object of a 3D Bragg result from the data's sheared grid "
        "(rocking frame, detector row, column) onto an orthogonal lab grid (z along the beam, "
        "y up), using the diffractometer angles of the data it was phased from. Writes .npz or "
        ".vtk (ParaView) with amplitude, phase and, where the data give the Bragg angle, the "
        "displacement and the strain along G.",
    )
    parser.add_argument("file", help="result CXI file (3D)")
    parser.add_argument("--data", required=True, help="the raw or prepared data it was phased from")
    parser.add_argument("--out", required=True, help="output file, .npz or .vtk")
    parser.add_argument("--diffractometer", choices=sorted(DIFFRACTOMETERS), default=None,
                        help="default: recognised from the file's instrument name")
    parser.add_argument("--voxel-nm", type=float, default=None,
                        help="cubic voxel of the lab grid (default: the finest plane spacing)")
    add_json_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the lab-frame object of ``args.file``; return 0."""
    from reconstruction.errors import ConfigError
    from reconstruction.geometry.workflow import lab_frame_file

    if args.voxel_nm is not None and not args.voxel_nm > 0:
        raise ConfigError(f"--voxel-nm must be > 0, got {args.voxel_nm}")
    out = lab_frame_file(args.file, args.out, data_path=args.data, diffractometer=args.diffractometer,
                         voxel_size_m=None if args.voxel_nm is None else args.voxel_nm * 1e-9)  # fmt: skip
    if args.json:
        print_json(out)
        return 0
    extent = out["crystal_extent_nm"]
    print(f"geometry     {out['diffractometer_title']}, 2θ = {out['two_theta_deg']:.3f}°, "
          f"rocking {out['rocking_circle']} by {out['rocking_step_deg']:.4g}° per frame")
    print(f"data grid    axes at {', '.join(f'{v:.1f}' for v in out['axis_angles_deg'].values())}° "
          f"(up to {out['max_shear_deg']:.1f}° from orthogonal)")
    print(f"lab grid     {' × '.join(map(str, out['shape']))} voxels of {out['voxel_size_nm']:.2f} nm, "
          f"axes {', '.join(out['axes'])}")
    if extent:
        print(f"crystal      {' × '.join(f'{v:.0f}' for v in extent)} nm (z, y, x; amplitude ≥ 30 %)")
    print(f"written      {out['out_path']}")
    return 0
