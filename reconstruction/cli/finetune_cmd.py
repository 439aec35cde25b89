"""``python -m reconstruction finetune PATTERN... --out MODEL.pt``: adapt a model to user data."""

from __future__ import annotations

import argparse

from reconstruction.cli.common import (
    add_device_option,
    add_json_option,
    print_json,
    run_with_progress,
)


def register(subparsers) -> None:
    """Add the ``finetune`` command."""
    parser = subparsers.add_parser(
        "finetune",
        help="fine-tune a model on a few measured patterns (with augmentation)",
        description="Fine-tune a checkpoint (default: the shipped model) on prepared patterns "
        "with physically valid augmentation (flips, 90-degree and small rotations, zoom, "
        "pattern shifts, photon thinning). The new checkpoint records its parent and the "
        "sha256 of the patterns.",
    )
    parser.add_argument("patterns", nargs="+", help="prepared (or raw) pattern files")
    parser.add_argument("--out", required=True, help="checkpoint file to write (.pt)")
    parser.add_argument("--checkpoint", default=None, help="parent model (default: shipped)")
    parser.add_argument("--steps", type=int, default=200, help="optimiser steps (default 200)")
    parser.add_argument("--lr", type=float, default=1e-4, help="learning rate (default 1e-4)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--freeze-encoder", action="store_true", help="train the decoders only")
    parser.add_argument("--no-augment", action="store_true", help="no augmentation")
    parser.add_argument("--seed", type=int, default=0)
    add_device_option(parser)
    add_json_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Fine-tune and print a summary; return 0."""
    from reconstruction.nn.workflow import finetune_model

    summary = run_with_progress(
        finetune_model,
        args.checkpoint,
        args.patterns,
        args.out,
        steps=args.steps,
        lr=args.lr,
        batch_size=args.batch_size,
        freeze_encoder=args.freeze_encoder,
        augment=not args.no_augment,
        seed=args.seed,
        device=args.device,
    )
    if args.json:
        print_json(summary)
        return 0
    m = summary["metrics"]
    print(f"checkpoint   {summary['out_path']}")
    print(f"model        {summary['model_name']}  sha256 {summary['model_sha256'][:16]}")
    parent = summary["parent"]
    print(f"parent       {parent['name']}  sha256 {parent['weights_sha256'][:16]}")
    print(f"loss         {m['loss_before']:.4f} -> {m['loss_after']:.4f} ({m['steps']} steps)")
    print(f"time         {summary['seconds']:.1f} s")
    return 0
