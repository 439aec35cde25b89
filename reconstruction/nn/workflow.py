"""Workflows of the network (called by the CLI and the web app's Celery tasks).

``train_model``, ``finetune_model``, ``predict_file``, ``refine_prediction_file``,
``pipeline_file``; each returns a JSON-serialisable summary with at least ``out_path`` and
``seconds``, reports progress and honours a cancel token.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reconstruction.device import autocast_bf16, pick_device
from reconstruction.errors import CheckpointError, ConfigError, InvalidDataError
from reconstruction.io.types import DiffractionData
from reconstruction.nn.augment import AugmentedPatterns
from reconstruction.nn.checkpoint import load_checkpoint, save_checkpoint
from reconstruction.nn.config import TrainRecipe, get_recipe
from reconstruction.nn.model import PhaseNet
from reconstruction.nn.predict import (
    OPTIMISE_LR,
    check_input_shape,
    flip_sets,
    optimise_on_pattern,
    predict_averaged,
    predict_objects,
)
from reconstruction.nn.train import (
    CachedItems,
    NetworkItems,
    evaluate,
    fit,
    setup_distributed,
    teardown_distributed,
)
from reconstruction.nn.trust import (
    amplitude_spread,
    is_twin_averaged,
    twin_averaged_message,
    twin_averaged_threshold,
)
from reconstruction.nn.widen import widen_model
from reconstruction.progress import ProgressCallback, ProgressEvent, check, report

MODELS_DIR = Path(__file__).resolve().parent / "models"
# Seeds of simulated validation data are offset from training seeds by this much; held-out
# benchmark data use ``HELD_OUT_SEED`` and above, never used in training.
VALIDATION_SEED_OFFSET = 1_000_000
HELD_OUT_SEED = 900_000_000


def default_checkpoint_path(dims: int = 3) -> Path:
    """Return the path of the shipped default model for ``dims`` (2 or 3); may not exist for 2D."""
    if dims not in (2, 3):
        raise ConfigError(f"dims must be 2 or 3, got {dims}")
    return MODELS_DIR / f"default_{dims}d.pt"


def _resolve_checkpoint(checkpoint_path: str | os.PathLike | None, dims: int = 3) -> Path:
    path = Path(checkpoint_path) if checkpoint_path else default_checkpoint_path(dims)
    if checkpoint_path is None and not path.is_file():
        raise CheckpointError(
            f"no shipped default {dims}D model at {path}: train one with "
            f"`python -m reconstruction train --recipe {'default' if dims == 3 else 'default2d'} "
            "--out FILE` and pass --checkpoint"
        )
    return path


def _warm_start(model: PhaseNet, recipe: TrainRecipe) -> dict[str, Any]:
    """Copy ``recipe.init_from``'s weights into ``model``, widened (Net2Net) when the recipe's
    width is larger; return the parent's name and sha256 (and the width it was widened from)."""
    source = None if recipe.init_from == "default" else recipe.init_from
    loaded = load_checkpoint(_resolve_checkpoint(source, recipe.dims), device="cpu")
    wanted = model.config.to_dict()
    differ = sorted(k for k in wanted if loaded.config.get(k) != wanted[k])
    parent: dict[str, Any] = {"name": str(loaded.name), "weights_sha256": str(loaded.weights_sha256)}
    if differ == ["width"] and wanted["width"] > loaded.config["width"]:
        weights = widen_model(loaded.model, wanted["width"], seed=recipe.seed).state_dict()
        parent["widened_from_width"] = int(loaded.config["width"])
    elif differ:
        raise ConfigError(
            f"init_from {recipe.init_from!r} has another architecture than the recipe "
            f"(differs in {differ}): use the checkpoint's depth and input size, and its width "
            f"({loaded.config['width']}) or a larger one, which widens it"
        )
    else:
        weights = loaded.model.state_dict()
    model.load_state_dict(weights)
    return parent


def file_sha256(path: str | os.PathLike) -> str:
    """Return the sha256 hex digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _simulated(recipe: TrainRecipe, n: int, seed: int) -> torch.utils.data.Dataset:
    """Return ``reconstruction.simulate``'s dataset of ``n`` patterns for ``recipe``."""
    from reconstruction.simulate import Recipe, SimulatedDataset

    sim = Recipe(
        kind=recipe.kind, shape=recipe.shape, dims=recipe.dims, photons=tuple(recipe.photons)
    )
    return SimulatedDataset(sim, n, seed)


def _stored_training_set(
    data_path: str | os.PathLike, recipe: TrainRecipe
) -> tuple[torch.utils.data.Dataset, Any, dict[str, Any]]:
    """Open a stored simulated set for ``recipe``: (patterns in order, its ``Recipe``, description).

    Raises ``InvalidDataError`` when the set's patterns do not have the shape and dims of the
    recipe's network input.
    """
    from reconstruction.simulate import StoredDataset

    stored = StoredDataset(data_path)
    sim = stored.recipe
    if (sim.shape, sim.dims) != (recipe.shape, recipe.dims):
        got = "x".join([str(sim.shape)] * sim.dims)
        want = "x".join([str(recipe.shape)] * recipe.dims)
        raise InvalidDataError(
            f"the simulated set {os.fspath(data_path)} holds {got} patterns but recipe "
            f"{recipe.name!r} trains a network on {want} inputs: simulate with shape={recipe.shape} "
            f"dims={recipe.dims}, or choose a recipe of that input size"
        )
    path = Path(data_path)
    description = {
        "path": os.fspath(path),
        "sha256": file_sha256(path) if path.is_file() else "",
        "n": len(stored),
        "seed": stored.seed,
        "recipe": sim.to_dict(),
    }
    # positions 0..n-1 -> the stored sample indices (shards may hold any index range)
    return torch.utils.data.Subset(stored, stored.indices), sim, description


def _simulation_description(recipe: TrainRecipe) -> dict[str, Any]:
    """The simulated-data recipe as stored in checkpoints."""
    try:
        from dataclasses import asdict

        from reconstruction.simulate import Recipe

        sim = Recipe(
            kind=recipe.kind, shape=recipe.shape, dims=recipe.dims, photons=tuple(recipe.photons)
        )
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(sim).items()}
    except (ImportError, TypeError):
        return {"kind": recipe.kind, "shape": recipe.shape, "dims": recipe.dims}


def train_model(
    out_path: str | os.PathLike,
    *,
    recipe: str | TrainRecipe = "default",
    data_path: str | os.PathLike | None = None,
    device: str = "auto",
    progress: ProgressCallback | None = None,
    cancel: Any = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Train a ``PhaseNet`` on simulated data and write the best checkpoint to ``out_path``.

    ``recipe`` names an entry of ``reconstruction.nn.config.RECIPES`` ("default", "tiny",
    "tiny2d") or is a ``TrainRecipe``; ``overrides`` replace recipe fields (e.g. ``epochs=2``,
    ``minutes=30``, ``n_train=256``). The checkpoint is rewritten after every epoch that improves
    the validation loss, so a usable model exists early. Under ``torchrun`` the run is
    data-parallel (DDP; NCCL on GPUs, gloo on CPUs) and only rank 0 writes.

    ``data_path`` (a file or folder written by ``reconstruction.simulate.workflow.simulate_dataset``)
    trains on that stored set instead of simulating: all of its patterns, or the first
    ``n_train`` when that is overridden (never fresh data each epoch). Its patterns must have
    the recipe's input shape and dims (``InvalidDataError`` otherwise). The ``n_val`` validation
    patterns are simulated with the set's own simulation recipe and seeds disjoint from it
    (``seed + VALIDATION_SEED_OFFSET``). The checkpoint's recipe records the set (path, sha256,
    n, seed, simulation recipe) under ``training_data``.

    Returns {out_path, checkpoint_path, seconds, history, metrics, model_name, model_sha256,
    n_parameters, recipe, stopped_because}.
    """
    start = time.monotonic()
    rec = get_recipe(recipe, **overrides)
    stored_set, stored_sim, training_data = None, None, None
    if data_path is not None:
        stored_set, stored_sim, training_data = _stored_training_set(data_path, rec)
        n_train = int(overrides.get("n_train") or len(stored_set))
        if n_train > len(stored_set):
            raise ConfigError(
                f"n_train={n_train} but the simulated set holds only {len(stored_set)} patterns"
            )
        if n_train < len(stored_set):
            stored_set = torch.utils.data.Subset(stored_set, range(n_train))
        rec = rec.with_overrides(n_train=n_train, fresh_each_epoch=False)
        training_data["n_used"] = n_train
    dev = pick_device(device)
    info = setup_distributed(dev)
    if info.active and dev.type == "cuda":
        dev = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(dev)
    torch.manual_seed(rec.seed)
    model = PhaseNet(rec.model_config())
    parent_info = _warm_start(model, rec) if rec.init_from else None
    truths = rec.loss == "hybrid"

    def sim_stage(stage: str, offset: float, width: float) -> ProgressCallback | None:
        if progress is None or not info.is_main:
            return None
        return lambda e: report(
            progress, ProgressEvent(offset + width * e.fraction, stage, e.step, e.total)
        )

    if stored_set is not None:
        from reconstruction.simulate import SimulatedDataset

        train_base = NetworkItems(stored_set, truths=truths)
        val_base = NetworkItems(
            SimulatedDataset(stored_sim, rec.n_val, training_data["seed"] + VALIDATION_SEED_OFFSET),
            truths=truths,
        )
    else:
        train_base = NetworkItems(_simulated(rec, rec.n_train, rec.seed), truths=truths)
        val_base = NetworkItems(
            _simulated(rec, rec.n_val, rec.seed + VALIDATION_SEED_OFFSET), truths=truths
        )
    val_set = CachedItems(val_base, progress=sim_stage("simulate", 0.0, 0.0), cancel=cancel)
    if rec.fresh_each_epoch:
        train_set: torch.utils.data.Dataset = train_base
    else:
        train_set = CachedItems(train_base, progress=sim_stage("simulate", 0.0, 0.0), cancel=cancel)

    def fresh(epoch: int) -> torch.utils.data.Dataset:
        data = _simulated(rec, rec.n_train, rec.seed + epoch * rec.n_train)
        return NetworkItems(data, truths=truths)

    name = f"{rec.name}-{rec.dims}d"
    description = {**rec.to_dict(), "simulation": _simulation_description(rec)}
    if training_data is not None:
        description["simulation"] = training_data["recipe"]
        description["training_data"] = training_data

    mixed_precision = autocast_bf16(dev, rec.mixed_precision)  # as ``fit`` decides it

    def on_epoch_end(epoch: int, history: dict[str, list[float]]) -> None:
        if history["is_best"][-1]:
            save_checkpoint(
                out_path,
                model,
                name=name,
                recipe=description,
                history=history,
                parent=parent_info,
                metrics={
                    "best_val_loss": history["val_loss"][-1],
                    "best_epoch": epoch,
                    "epochs_run": epoch + 1,
                    "seconds": history["seconds"][-1],
                    "mixed_precision": mixed_precision,
                },
            )

    result = fit(
        model,
        train_set,
        val_set,
        recipe=rec,
        device=dev,
        progress=progress if info.is_main else None,
        cancel=cancel,
        on_epoch_end=on_epoch_end,
        dist_info=info,
        fresh_train_set=fresh if rec.fresh_each_epoch else None,
    )
    summary: dict[str, Any] = {
        "out_path": str(Path(out_path).resolve()),
        "checkpoint_path": str(Path(out_path).resolve()),
        "seconds": time.monotonic() - start,
        "history": {k: list(v) for k, v in result.history.items()},
        "metrics": {
            "best_val_loss": result.best_val_loss,
            "best_epoch": result.best_epoch,
            "epochs_run": result.epochs_run,
            "steps": result.steps,
            "mixed_precision": result.mixed_precision,
        },
        "stopped_because": result.stopped_because,
        "n_parameters": model.n_parameters(),
        "dims": rec.dims,
        "config": rec.model_config().to_dict(),
        "recipe": description,
        "rank": info.rank,
        "world_size": info.world_size,
    }
    if info.is_main:
        # record the final history and metrics in the (best-weights) checkpoint
        best, payload = load_checkpoint(out_path)
        save_checkpoint(
            out_path,
            best,
            name=name,
            recipe=description,
            history=result.history,
            metrics={**summary["metrics"], "seconds": result.seconds,
                     "stopped_because": result.stopped_because},
            parent=parent_info,
        )
        _, payload = load_checkpoint(out_path)
        summary["parent"] = parent_info
        summary["model_name"] = payload["name"]
        summary["model_sha256"] = payload["weights_sha256"]
    if info.active:
        teardown_distributed()  # after rank 0 wrote the checkpoint; every rank leaves together
    report(progress, ProgressEvent(1.0, "done"))
    return summary


def _load_patterns(
    pattern_paths: list[str | os.PathLike], model: PhaseNet, *, first: DiffractionData | None = None
) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[str]]:
    """Read prepared (or raw, prepared on the fly) patterns of the model's input shape;
    ``first``: the first file's data when already read."""
    from reconstruction.io import load_data
    from reconstruction.io.workflow import as_prepared

    if not pattern_paths:
        raise InvalidDataError("fine-tuning needs at least one pattern file")
    patterns, shas = [], []
    for i, path in enumerate(pattern_paths):
        raw = first if i == 0 and first is not None else load_data(path)
        data: DiffractionData = as_prepared(raw, shape=model.config.input_size)
        check_input_shape(model, data.shape)
        patterns.append((np.asarray(data.intensity, np.float32), np.asarray(data.mask, bool)))
        shas.append(file_sha256(path))
    return patterns, shas


def finetune_model(
    checkpoint_path: str | os.PathLike | None,
    pattern_paths: list[str | os.PathLike],
    out_path: str | os.PathLike,
    *,
    steps: int = 200,
    lr: float = 1e-4,
    batch_size: int = 4,
    freeze_encoder: bool = False,
    augment: bool = True,
    seed: int = 0,
    device: str = "auto",
    progress: ProgressCallback | None = None,
    cancel: Any = None,
) -> dict[str, Any]:
    """Fine-tune a checkpoint (None = shipped default) on a few user patterns; write a new one.

    The patterns (prepared files of the model's input shape, or raw files prepared on the fly)
    are augmented with physically valid pattern transforms (``reconstruction.nn.augment``);
    BatchNorm statistics stay those of the parent; ``freeze_encoder`` trains the decoders only.
    The new checkpoint records its parent (name, weights sha256) and the sha256 of every pattern
    file. ``val_loss`` is the physics loss on the un-augmented patterns.

    Returns {out_path, checkpoint_path, seconds, history, metrics (loss_before, loss_after),
    model_name, model_sha256, parent, patterns_sha256}.
    """
    start = time.monotonic()
    if steps < 1:
        raise ConfigError(f"steps must be >= 1, got {steps}")
    dev = pick_device(device)
    # without a checkpoint: the shipped model of the patterns' dimensionality
    first = None
    if pattern_paths and checkpoint_path is None:
        from reconstruction.io import load_data

        first = load_data(pattern_paths[0])
    parent_path = _resolve_checkpoint(checkpoint_path, 3 if first is None else first.intensity.ndim)
    model, parent = load_checkpoint(parent_path, device=dev)
    patterns, shas = _load_patterns(pattern_paths, model, first=first)
    cfg = model.config
    # epochs of up to 10 steps, exactly ``steps`` in total (the un-augmented patterns are
    # evaluated after each epoch)
    steps_per_epoch = next(k for k in range(min(steps, 10), 0, -1) if steps % k == 0)
    epochs = steps // steps_per_epoch
    rec = TrainRecipe(
        name="finetune",
        dims=cfg.dims,
        shape=cfg.input_size,
        width=cfg.width,
        depth=cfg.depth,
        n_train=steps_per_epoch * batch_size,
        n_val=len(patterns),
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        threshold_start=0.1,
        threshold_end=0.1,
        threshold_ramp_epochs=0,
        early_stop_patience=10**9,
        seed=seed,
    )
    train_set = NetworkItems(
        AugmentedPatterns(patterns, rec.n_train, seed=seed, augment=augment)
    )
    val_set = CachedItems(NetworkItems(AugmentedPatterns(patterns, len(patterns), augment=False)))
    if freeze_encoder:
        for p in model.encoder.parameters():
            p.requires_grad_(False)
    loss_before = evaluate(model, val_set, recipe=rec, device=dev)
    torch.manual_seed(seed)
    result = fit(
        model,
        train_set,
        val_set,
        recipe=rec,
        device=dev,
        progress=progress,
        cancel=cancel,
        freeze_batchnorm=True,
    )
    for p in model.parameters():
        p.requires_grad_(True)
    parent_info = {"name": str(parent.get("name", "")), "weights_sha256": parent["weights_sha256"]}
    name = f"{parent_info['name']}-finetuned"
    description = {
        **dict(parent.get("recipe", {})),
        "finetune": {
            "steps": result.steps,
            "lr": lr,
            "batch_size": batch_size,
            "freeze_encoder": freeze_encoder,
            "augment": augment,
            "seed": seed,
            "patterns": [os.fspath(p) for p in pattern_paths],
        },
    }
    loss_after = result.history["val_loss"][-1]
    metrics = {"loss_before": loss_before, "loss_after": loss_after, "steps": result.steps}
    payload = save_checkpoint(
        out_path,
        model,
        name=name,
        recipe=description,
        history=result.history,
        metrics=metrics,
        parent=parent_info,
        patterns_sha256=shas,
    )
    report(progress, ProgressEvent(1.0, "done"))
    return {
        "out_path": str(Path(out_path).resolve()),
        "checkpoint_path": str(Path(out_path).resolve()),
        "seconds": time.monotonic() - start,
        "history": {k: list(v) for k, v in result.history.items()},
        "metrics": metrics,
        "model_name": name,
        "model_sha256": payload["weights_sha256"],
        "parent": parent_info,
        "patterns_sha256": shas,
        "dims": cfg.dims,
        "config": cfg.to_dict(),
    }


def predict_file(
    input_path: str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    checkpoint_path: str | os.PathLike | None = None,
    device: str = "auto",
    threshold: float = 0.1,
    optimise_steps: int = 0,
    optimise_lr: float = OPTIMISE_LR,
    from_scratch: bool = False,
    flips: int = 1,
    progress: ProgressCallback | None = None,
    cancel: Any = None,
    provenance: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Predict the object of one pattern file and write a result CXI.

    The input is a prepared file (or a raw one, prepared on the fly to the model's shape). The
    result holds amplitude * exp(i phase) in the input box (centred), the support (``threshold``
    of the maximum amplitude), timings, and the prediction's own chi2 / chi2_free against the
    data (``reconstruction.metrics.fourier_errors``: the user's trust indicator) and, in 3D, a
    second one: ``amplitude_spread`` (``reconstruction.nn.trust``), whose excess marks a
    prediction that averages the crystal with its twin (``twin_averaged`` and a ``warnings``
    line in the summary).
    ``optimise_steps`` > 0 first optimises the weights on this very pattern (unsupervised
    transfer), from the checkpoint or, with ``from_scratch``, from random weights. ``flips`` 4
    or 8 averages the predictions of that many mirrored views of the pattern
    (``predict_averaged``, test-time augmentation).

    Returns {out_path, seconds, metrics, curves, timings, model_name, model_sha256, algorithm,
    twin_averaged, warnings}.
    """
    from reconstruction.io import load_data, write_result
    from reconstruction.io.types import ResultRecord
    from reconstruction.io.workflow import as_prepared
    from reconstruction.metrics import fourier_errors, free_pixel_mask

    if optimise_steps < 0 or not optimise_lr > 0:
        raise ConfigError(
            f"per-pattern optimisation needs steps >= 0 and a learning rate > 0, got steps="
            f"{optimise_steps}, lr={optimise_lr}"
        )
    start = time.monotonic()
    dev = pick_device(device)
    report(progress, ProgressEvent(0.0, "load"))
    raw = load_data(input_path)
    # without a checkpoint: the shipped model of the data's dimensionality
    path = _resolve_checkpoint(checkpoint_path, raw.intensity.ndim)
    model, payload = load_checkpoint(path, device=dev)
    data = as_prepared(raw, shape=model.config.input_size)
    check_input_shape(model, data.shape)
    check(cancel)
    intensity = np.asarray(data.intensity, np.float32)
    mask = np.asarray(data.mask, bool)
    curves: dict[str, list[float]] = {}
    timings: dict[str, float] = {"load": time.monotonic() - start}
    flip_sets(flips, intensity.ndim)  # a bad number of views is a ConfigError before any work
    if optimise_steps > 0:
        t0 = time.monotonic()
        model, info = optimise_on_pattern(
            model, intensity, mask, steps=optimise_steps, lr=optimise_lr,
            from_scratch=from_scratch, device=dev, progress=progress, cancel=cancel,
        )
        curves["optimise_loss"] = info["loss"]
        timings["optimise"] = time.monotonic() - t0
    t0 = time.monotonic()
    if flips > 1:
        obj, support = predict_averaged(model, intensity, mask, flips=flips, threshold=threshold,
                                        device=dev, cancel=cancel)  # fmt: skip
    else:
        obj, support = (a[0] for a in predict_objects(model, intensity, mask, threshold=threshold, device=dev))
    timings["predict"] = time.monotonic() - t0
    free = free_pixel_mask(mask, fraction=0.05, seed=0)
    errors = fourier_errors(obj, intensity, mask=mask, free_mask=free)
    metrics = {k: float(v) for k, v in errors.items() if np.isscalar(v)}
    metrics["amplitude_spread"] = amplitude_spread(obj, support)
    twin_threshold = twin_averaged_threshold(intensity.ndim, flips)
    twin_averaged = is_twin_averaged(metrics["amplitude_spread"], twin_threshold)
    warnings = [twin_averaged_message(metrics["amplitude_spread"], twin_threshold)] if twin_averaged else []
    curves["chi2"] = [metrics.get("chi2", float("nan"))]
    curves["chi2_free"] = [metrics.get("chi2_free", float("nan"))]
    timings["total"] = time.monotonic() - start
    algorithm = f"PhaseNet[{payload['name']}]"
    if optimise_steps > 0:
        algorithm += f"+optimise**{optimise_steps}" + ("(scratch)" if from_scratch else "")
    if flips > 1:
        algorithm += f"×{flips}flips"
    config = {
        "checkpoint_path": str(path),
        "threshold": threshold,
        "flips": flips,
        "optimise_steps": optimise_steps,
        "optimise_lr": optimise_lr,
        "from_scratch": from_scratch,
        "device": str(dev),
        "twin_averaged_threshold": twin_threshold,
    }
    prov = {
        "model_name": payload["name"],
        "model_sha256": payload["weights_sha256"],
        "input_path": os.fspath(input_path),
        "input_sha256": file_sha256(input_path),
        **(provenance or {}),
    }
    write_result(
        out_path,
        ResultRecord(
            obj=obj,
            support=support,
            intensity=intensity,
            mask=mask,
            algorithm=algorithm,
            config=config,
            curves={k: np.asarray(v, np.float64) for k, v in curves.items()},
            metrics=metrics,
            timings=timings,
            command=f"predict {os.fspath(input_path)}",
            provenance=prov,
            arrays={"amplitude_predicted": np.abs(obj).astype(np.float32)},
        ),
    )
    report(progress, ProgressEvent(1.0, "done", values={"chi2": metrics.get("chi2", float("nan"))}))
    return {
        "out_path": str(Path(out_path).resolve()),
        "seconds": time.monotonic() - start,
        "metrics": metrics,
        "curves": curves,
        "timings": timings,
        "algorithm": algorithm,
        "model_name": payload["name"],
        "model_sha256": payload["weights_sha256"],
        "twin_averaged": twin_averaged,
        "warnings": warnings,
    }


# Views the pipeline's prediction averages (test-time augmentation): on 100 held-out 3D
# simulations 4 views against 1 lowered the relative error after ER**50 in 64 % of patterns
# (success 32 -> 37 %) for 0.1 s more per pattern; in 2D 62 % (58 -> 66 %) for 9 ms
# (benchmarks/RESULTS.md, *Averaged mirrored views*).
PIPELINE_FLIPS = 4
# Random starts the pipeline phases as well when the prediction looks twin-averaged
# (``reconstruction.nn.trust``): on 100 held-out 3D simulations (4 views), 2 starts for the 23
# flagged patterns raised success from 37 to 48 % and "chi2 no worse than 5 random starts" from
# 54 to 64 %, for 1.8 s per flagged pattern (benchmarks/RESULTS.md, *Twin-averaged predictions*).
PIPELINE_FALLBACK_RUNS = 2


def better_fit(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether result summary ``a`` fits its data better than ``b``: the lower free LLK (the
    held-out pixels, which no fit saw), else the lower chi2."""
    for key in ("llk_free", "chi2"):
        va, vb = a.get("metrics", {}).get(key), b.get("metrics", {}).get(key)
        if va is not None and vb is not None and np.isfinite(va) and np.isfinite(vb):
            return float(va) < float(vb)
    return False


def pipeline_file(
    input_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    checkpoint_path: str | os.PathLike | None = None,
    refine_algorithm: str = "ER**50",
    support_threshold: float = 0.1,
    shrinkwrap: bool = True,
    psf=None,
    shape: int = 64,
    oversampling: float = 3.0,
    device: str = "auto",
    flips: int | None = None,
    fallback_runs: int | None = None,
    progress: ProgressCallback | None = None,
    cancel: Any = None,
    provenance: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Prepare -> predict -> refine one data file; write all three files into ``out_dir``.

    ``out_dir/prepared.cxi`` (skipped when the input is already a prepared file),
    ``out_dir/predicted.cxi`` (the network's result, with its chi2) and ``out_dir/refined.cxi``
    (``refine_algorithm`` run by the phasing engine from the prediction and its support; the
    support is updated by the engine's default shrink-wrap, as random starts are, unless
    ``shrinkwrap`` is False; ``psf`` models partial coherence in the refinement, see
    ``refine_file``). The prediction averages ``flips`` mirrored views of the pattern
    (default ``PIPELINE_FLIPS``; 1 = a plain prediction).

    Where the prediction looks like the average of the crystal and its twin (``predicted``'s
    ``twin_averaged``, 3D only), the pattern is also phased from ``fallback_runs`` random
    starts (default ``PIPELINE_FALLBACK_RUNS``; 0 = never) with the engine's default recipe
    into ``out_dir/phased.cxi``, and the result that fits better (lower free LLK) is the
    pipeline's.

    Returns {out_path (the refined or the phased file), route ("refined" or "phased"), out_dir,
    prepared_path, predicted_path, seconds, metrics and curves (of out_path), predicted
    (predict summary), refined (refine summary), phased (phase summary or None), warnings,
    timings}.
    """
    from reconstruction.io import load_data
    from reconstruction.io.workflow import is_prepared, prepare_file
    from reconstruction.phasing.workflow import phase_file, refine_file

    fallback_runs = PIPELINE_FALLBACK_RUNS if fallback_runs is None else int(fallback_runs)
    if fallback_runs < 0:
        raise ConfigError(f"fallback_runs must be 0 (never) or more, got {fallback_runs}")
    start = time.monotonic()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    def stage(lo: float, hi: float) -> ProgressCallback | None:
        if progress is None:
            return None
        return lambda e: report(
            progress,
            ProgressEvent(
                lo + (hi - lo) * e.fraction, e.stage, e.step, e.total, e.values, e.message
            ),
        )

    timings: dict[str, float] = {}
    report(progress, ProgressEvent(0.0, "prepare"))
    if is_prepared(load_data(input_path)):
        prepared_path = Path(input_path)
    else:
        prepared_path = out / "prepared.cxi"
        prepare_file(
            input_path, prepared_path, shape=shape, oversampling=oversampling,
            progress=stage(0.0, 0.2), cancel=cancel,
        )
    timings["prepare"] = time.monotonic() - start
    check(cancel)
    predicted_path = out / "predicted.cxi"
    predicted = predict_file(
        prepared_path, predicted_path, checkpoint_path=checkpoint_path, device=device,
        threshold=support_threshold, flips=PIPELINE_FLIPS if flips is None else flips,
        progress=stage(0.2, 0.4), cancel=cancel, provenance=provenance,
    )
    timings["predict"] = predicted["timings"]["predict"]
    check(cancel)
    fallback = bool(predicted.get("twin_averaged")) and fallback_runs > 0
    t0 = time.monotonic()
    refined_path = out / "refined.cxi"
    refined = refine_file(
        prepared_path, refined_path, initial_path=predicted_path, algorithm=refine_algorithm,
        support_threshold=support_threshold, shrinkwrap=shrinkwrap, psf=psf, device=device,
        progress=stage(0.4, 0.55 if fallback else 1.0), cancel=cancel,
        provenance={**(provenance or {}), "model_sha256": predicted["model_sha256"]},
    )
    timings["refine"] = time.monotonic() - t0
    best, route, phased = refined, "refined", None
    if fallback:
        check(cancel)
        t0 = time.monotonic()
        phased = phase_file(
            prepared_path, out / "phased.cxi", runs=fallback_runs, psf=psf, device=device,
            progress=stage(0.55, 1.0), cancel=cancel, provenance=provenance,
        )
        timings["phase"] = time.monotonic() - t0
        if better_fit(phased, refined):
            best, route = phased, "phased"
    timings["total"] = time.monotonic() - start
    report(progress, ProgressEvent(1.0, "done"))
    return {
        "out_path": str(Path(best["out_path"]).resolve()),
        "route": route,
        "out_dir": str(out.resolve()),
        "prepared_path": str(prepared_path.resolve()),
        "predicted_path": str(predicted_path.resolve()),
        "seconds": time.monotonic() - start,
        "metrics": best.get("metrics", {}),
        "curves": best.get("curves", {}),
        "predicted": predicted,
        "refined": refined,
        "phased": phased,
        "warnings": list(predicted.get("warnings", [])),
        "timings": timings,
        "model_name": predicted["model_name"],
        "model_sha256": predicted["model_sha256"],
    }
