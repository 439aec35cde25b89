"""``python -m reconstruction info FILE [--path P] [--json]``: describe a data or result file."""

from __future__ import annotations

import argparse
from typing import Any

from reconstruction.cli.common import add_json_option, print_json
from reconstruction.io.workflow import inspect_file

H_C = 6.62607015e-34 * 299792458.0
EV = 1.602176634e-19


def register(subparsers) -> None:
    """Add the ``info`` command."""
    parser = subparsers.add_parser(
        "info",
        help="describe a diffraction / object file (format, shape, mask, metadata, oversampling)",
        description="Describe a CXI/HDF5/NeXus, NPY/NPZ or EDF file: what it holds, its mask, "
        "metadata (SI units), the peak position and the estimated oversampling per axis.",
    )
    parser.add_argument("file", help="data or result file")
    parser.add_argument(
        "--path", default=None, help="dataset path inside an HDF5 file (or npz key)"
    )
    add_json_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the description of ``args.file``; return 0."""
    summary = inspect_file(args.file, dataset_path=args.path)
    if args.json:
        print_json(summary)
    else:
        print(format_table(summary))
    return 0


def _fmt_shape(shape) -> str:
    return " x ".join(str(s) for s in shape)


def format_table(s: dict[str, Any]) -> str:
    """Human-readable two-column table of an ``inspect_file`` summary."""
    rows: list[tuple[str, str]] = [
        ("file", f"{s['path']} ({s['size_bytes'] / 1e6:.2f} MB)"),
        ("sha256", s.get("sha256", "")),
        (
            "format",
            s["format"] + (f"  dataset {s['dataset_path']}" if s.get("dataset_path") else ""),
        ),
        ("kind", s["kind"]),
        ("shape", f"{_fmt_shape(s['shape'])} ({s.get('dtype', '')})"),
    ]
    if s["kind"] == "object":
        rows.append(("amplitude max", f"{s['amplitude_max']:.4g}"))
        rows.append(
            (
                "support",
                "none"
                if s["support_fraction"] is None
                else f"{100 * s['support_fraction']:.2f} % of the box",
            )
        )
        if s.get("modes_weights"):
            rows.append(
                (
                    "modes",
                    f"{len(s['modes_weights'])} weights, first {100 * s['modes_weights'][0]:.1f} %",
                )
            )
    else:
        if s["kind"] == "frame-stack":
            rows.append(
                (
                    "frames",
                    (
                        f"{s['n_frames']} frames of {_fmt_shape(s['frame_shape'])}: NOT a volume, "
                        "cannot be phased here"
                    ),
                )
            )
            rows.append(("why", s["frame_stack_reason"]))
        mask = s["mask"]
        rows.append(("masked", f"{mask['masked']} pixels ({100 * mask['fraction']:.3g} %)"))
        inten = s["intensity"]
        rows.append(("intensity", f"max {inten['max']:.4g}, total {inten['total']:.4g} counts"))
        rows.append(
            (
                "peak",
                "("
                + ", ".join(str(p) for p in s["peak"])
                + ")"
                + (" of the summed frames" if s["kind"] == "frame-stack" else ""),
            )
        )
        rows.append(
            (
                "oversampling",
                " x ".join(f"{v:.2f}" for v in s["oversampling"])
                + "  (per axis; >= 2 needed, ~3 comfortable)",
            )
        )
    meta = s.get("metadata") or {}
    parts = []
    if meta.get("distance_m"):
        parts.append(f"distance {meta['distance_m']:.4g} m")
    if meta.get("x_pixel_size_m"):
        parts.append(
            f"pixel {1e6 * meta['x_pixel_size_m']:.4g} x {1e6 * (meta.get('y_pixel_size_m') or 0):.4g} um"
        )
    if meta.get("energy_J"):
        parts.append(f"energy {meta['energy_J'] / EV / 1e3:.4g} keV")
    if meta.get("wavelength_m"):
        parts.append(f"wavelength {meta['wavelength_m'] * 1e10:.4g} A")
    if parts:
        rows.append(("geometry", "; ".join(parts)))
    if meta.get("axes"):
        rows.append(("axes", ":".join(meta["axes"])))
    rock = meta.get("rocking_angles_deg")
    if rock:
        rows.append(
            (
                "rocking",
                (
                    f"{meta.get('rocking_axis')}: {rock['count']} angles from {rock['first']:.4g} "
                    f"to {rock['last']:.4g} deg, step {rock['step']:.4g}"
                ),
            )
        )
    lab = s.get("geometry")
    if lab:
        rows.append(("lab frame", (
            f"{lab['diffractometer_title']}, 2θ = {lab['two_theta_deg']:.3f} deg, data grid up to "
            f"{lab['max_shear_deg']:.1f} deg from orthogonal (labframe, strain available)"
            if lab["available"] else f"not available: {lab['reason']}")))
    extra = meta.get("extra") or {}
    if "oversampling_before" in extra:
        rows.append(
            (
                "prepared",
                (
                    f"oversampling {extra['oversampling_before']} -> "
                    f"{extra['oversampling_after']}, bin factors {extra.get('bin_factors')}"
                ),
            )
        )
    if "command" in extra:
        rows.append(("command", str(extra["command"])[:120]))
    for warning in s.get("warnings", []):
        rows.append(("warning", warning))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
