"""Command line: ``python -m reconstruction COMMAND ...``.

Each command lives in its own module of this package and exposes ``register(subparsers)``,
which adds a sub-parser whose ``func(args) -> int`` runs it. User-facing errors
(``ReconstructionError``) end with exit status 2 and one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from reconstruction import __version__
from reconstruction.errors import ReconstructionError

# Command modules, in the order their help is listed; a missing module is skipped.
COMMAND_MODULES = [
    "info",
    "prepare",
    "phase",
    "metrics",
    "simulate",
    "train",
    "finetune",
    "predict",
    "refine",
    "pipeline",
    "labframe",
    "system",
]


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every available command registered."""
    parser = argparse.ArgumentParser(
        prog="python -m reconstruction",
        description="Coherent diffraction imaging: read, prepare, phase, simulate, train, predict.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"reconstruction.cli.{name}_cmd")
        except ModuleNotFoundError as exc:
            if exc.name == f"reconstruction.cli.{name}_cmd":
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except ReconstructionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
