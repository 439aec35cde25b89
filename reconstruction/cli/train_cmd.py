"""``python -m reconstruction train --recipe default --out MODEL.pt``: train the network."""

from __future__ import annotations

import argparse
import json

from reconstruction.cli.common import (
    add_device_option,
    add_json_option,
    print_json,
    run_with_progress,
)
from reconstruction.errors import ConfigError


def _value(text: str):
    """Parse an override value as JSON when possible (numbers, booleans, lists), else a string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def register(subparsers) -> None:
    """Add the ``train`` command."""
    parser = subparsers.add_parser(
        "train",
        help="train the phase-retrieval network on simulated crystals",
        description="Train a PhaseNet (unsupervised, physics loss) on patterns simulated on the "
        "fly; writes the best checkpoint after every improving epoch. Run under "
        "`torchrun --nproc_per_node N -m reconstruction train ...` for data-parallel training.",
    )
    parser.add_argument(
        "--recipe",
        default="default",
        help="named recipe: default (the shipped 3D model's), default2d (the shipped 2D "
        "model's), tiny, tiny2d",
    )
    parser.add_argument("--out", required=True, help="checkpoint file to write (.pt)")
    parser.add_argument("--minutes", type=float, default=None, help="wall-clock budget")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--n-train", type=int, default=None, help="simulated training patterns")
    parser.add_argument("--width", type=int, default=None, help="channels after the stem")
    parser.add_argument("--lr", type=float, default=None, help="Adam learning rate")
    parser.add_argument(
        "--init-from",
        default=None,
        metavar="MODEL.pt",
        help="start from this checkpoint's weights ('default' = the shipped model); with a larger "
        "--width it is widened first, without changing what it predicts",
    )
    parser.add_argument(
        "--anneal-minutes",
        type=float,
        default=None,
        help="cosine-decay the lr to lr_min over the last minutes of the --minutes budget",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any recipe field, e.g. --set loss=hybrid --set batch_size=16",
    )
    add_device_option(parser)
    add_json_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Train and print a summary; return 0."""
    from reconstruction.nn.workflow import train_model

    overrides = {
        "minutes": args.minutes,
        "epochs": args.epochs,
        "n_train": args.n_train,
        "width": args.width,
        "lr": args.lr,
        "init_from": args.init_from,
        "anneal_minutes": args.anneal_minutes,
    }
    for item in args.set:
        if "=" not in item:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        key, text = item.split("=", 1)
        overrides[key.strip()] = _value(text)
    summary = run_with_progress(
        train_model, args.out, recipe=args.recipe, device=args.device, **overrides
    )
    if summary.get("rank", 0) != 0:
        return 0
    if args.json:
        print_json(summary)
        return 0
    history = summary["history"]
    print(f"checkpoint   {summary['out_path']}  ({summary['n_parameters']} parameters)")
    print(f"model        {summary['model_name']}  sha256 {summary['model_sha256'][:16]}")
    for epoch, (tl, vl) in enumerate(zip(history["train_loss"], history["val_loss"])):
        print(f"epoch {epoch:3d}    train {tl:.4f}  val {vl:.4f}")
    print(f"stopped      {summary['stopped_because']} after {summary['seconds']:.0f} s")
    return 0
