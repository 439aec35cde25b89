"""The training loop shared by pre-training, fine-tuning and per-pattern optimisation.

Unsupervised by default: the network predicts amplitude and phase, the physics layer builds
the object (soft support whose threshold ramps from ``threshold_start`` to ``threshold_end``),
computes |FFT| and compares it with the measured amplitude on unmasked pixels. Adam with
ReduceLROnPlateau, gradient clipping, early stopping, a wall-clock budget, progress and cancel
callbacks, bfloat16 autocast for training steps on CUDA (on the CPU only when opted in:
``reconstruction.device.autocast_bf16``), and DistributedDataParallel under ``torchrun``.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset

from reconstruction.device import autocast_bf16
from reconstruction.nn.config import TrainRecipe
from reconstruction.nn.model import cpu_fast_input, use_cpu_fast_layout
from reconstruction.nn.physics import (
    amplitude_loss,
    assemble_object,
    farfield_amplitude,
    network_input,
    supervised_loss,
    threshold_at,
)
from reconstruction.progress import ProgressCallback, ProgressEvent, check, report

EpochCallback = Callable[[int, dict[str, list[float]]], None]


class NetworkItems(Dataset):
    """Wrap a dataset of {"intensity", "mask", ["amplitude", "phase"]} items for the network.

    Each item becomes {"input": (1, N, ...) float32 sqrt(I)/max with masked pixels zeroed,
    "mask": (1, N, ...) bool, and, when present and ``truths`` is True, "amplitude" and
    "phase" cropped to the central (1, N/2, ...) object box}.
    """

    def __init__(self, base: Dataset, *, truths: bool = False) -> None:
        self.base = base
        self.truths = truths

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        item = self.base[index]
        intensity = torch.as_tensor(item["intensity"]).float()
        mask = torch.as_tensor(item["mask"]).bool() if "mask" in item else None
        if mask is None:
            mask = torch.zeros_like(intensity, dtype=torch.bool)
        out = {"input": network_input(intensity[None], mask[None])[0], "mask": mask}
        if self.truths and "amplitude" in item and "phase" in item:
            # truths are only compared inside the object box (the central half): keep that
            n = intensity.shape[-1]
            crop = (slice(None),) + (slice(n // 4, n // 4 + n // 2),) * (intensity.dim() - 1)
            out["amplitude"] = torch.as_tensor(item["amplitude"]).float()[crop].contiguous()
            out["phase"] = torch.as_tensor(item["phase"]).float()[crop].contiguous()
        return out


class CachedItems(Dataset):
    """Items of a ``NetworkItems`` computed once and kept in memory (inputs as float16)."""

    def __init__(
        self,
        items: Dataset,
        *,
        progress: ProgressCallback | None = None,
        cancel: Any = None,
        stage: str = "simulate",
    ) -> None:
        self.items: list[dict[str, torch.Tensor]] = []
        n = len(items)
        for i in range(n):
            check(cancel)
            item = items[i]
            stored = {k: (v.half() if v.is_floating_point() else v) for k, v in item.items()}
            self.items.append(stored)
            if i % 8 == 0 or i == n - 1:
                report(progress, ProgressEvent((i + 1) / n, stage, i + 1, n))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {
            k: (v.float() if v.is_floating_point() else v) for k, v in self.items[index].items()
        }


@dataclass
class DistInfo:
    """Rank and world size of this process (1 process when not launched by torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: torch.device) -> DistInfo:
    """Join the process group described by torchrun's environment (RANK, WORLD_SIZE ...).

    Uses NCCL on CUDA, gloo on the CPU; does nothing when WORLD_SIZE is absent or 1.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    return DistInfo(
        rank=dist.get_rank(),
        world_size=dist.get_world_size(),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
    )


def teardown_distributed() -> None:
    """Leave the process group: wait for every rank first, so none tears gloo/NCCL down while
    another is still inside a collective (that aborts the other process)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def batch_loss(
    model: torch.nn.Module,
    batch: dict[str, torch.Tensor],
    *,
    recipe: TrainRecipe,
    threshold: float,
    device: torch.device,
    mixed_precision: bool = False,
) -> torch.Tensor:
    """Return the mean loss of one batch (physics loss, plus the supervised term for "hybrid");
    ``mixed_precision`` runs the network under bfloat16 autocast (the physics stays float32)."""
    x = cpu_fast_input(batch["input"].to(device, non_blocking=True))  # (B, 1, N, ...)
    mask = batch["mask"].to(device, non_blocking=True)
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=mixed_precision):
        amp, phase = model(x)  # (B, 1, N/2, ...) each
    obj = assemble_object(
        amp.float(),
        phase.float(),
        box=x.shape[-1],
        threshold=threshold,
        soft_width=recipe.soft_support_width,
    )
    calc = farfield_amplitude(obj)
    kind = "mae" if recipe.loss == "hybrid" else recipe.loss
    loss = amplitude_loss(calc, x, mask, kind=kind)
    if recipe.loss == "hybrid" and "amplitude" in batch:
        loss = loss + recipe.supervised_weight * supervised_loss(
            amp.float(), phase.float(), batch["amplitude"].to(device), batch["phase"].to(device)
        )
    return loss.mean()


def _set_batchnorm_eval(model: torch.nn.Module) -> None:
    """Put every BatchNorm layer in eval mode (fixed statistics; used for tiny fine-tuning sets)."""
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.eval()


def _all_mean(value: float, count: int, info: DistInfo, device: torch.device) -> float:
    """Average ``value`` weighted by ``count`` over all processes."""
    if not info.active:
        return value
    t = torch.tensor([value * count, float(count)], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t[0] / max(t[1].item(), 1.0))


def _rank0_value(value: float, info: DistInfo, device: torch.device) -> float:
    """Rank 0's ``value`` on every process (e.g. its clock, so all ranks use one learning rate)."""
    if not info.active:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.broadcast(t, src=0)
    return float(t.item())


def _any(flag: bool, info: DistInfo, device: torch.device) -> bool:
    """True when ``flag`` is True in any process (so that all ranks stop together)."""
    if not info.active:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


@dataclass
class FitResult:
    """What ``fit`` returns: the per-epoch history and why it stopped."""

    history: dict[str, list[float]] = field(default_factory=dict)
    best_val_loss: float = math.inf
    best_epoch: int = -1
    epochs_run: int = 0
    steps: int = 0
    seconds: float = 0.0
    stopped_because: str = "epochs"
    mixed_precision: bool = False  # training steps ran under bfloat16 autocast


def anneal_lr(lr_start: float, lr_end: float, fraction: float) -> float:
    """Return the half-cosine learning rate at ``fraction`` (0..1, clipped) of the anneal."""
    t = min(max(fraction, 0.0), 1.0)
    return lr_end + 0.5 * (lr_start - lr_end) * (1.0 + math.cos(math.pi * t))


def fit(
    model: torch.nn.Module,
    train_set: Dataset,
    val_set: Dataset | None,
    *,
    recipe: TrainRecipe,
    device: torch.device,
    progress: ProgressCallback | None = None,
    cancel: Any = None,
    on_epoch_end: EpochCallback | None = None,
    freeze_batchnorm: bool = False,
    dist_info: DistInfo | None = None,
    fresh_train_set: Callable[[int], Dataset] | None = None,
) -> FitResult:
    """Train ``model`` in place on ``train_set`` (items of ``NetworkItems``); return the history.

    ``on_epoch_end(epoch, history)`` runs on the main process after every epoch with a new best
    validation loss flagged in ``history["is_best"]`` (the caller saves checkpoints there).
    ``fresh_train_set(epoch)`` may return new training data each epoch (streamed simulation).
    Stops at ``recipe.epochs``, at early stopping (``early_stop_patience`` epochs without a
    better validation loss), at the ``recipe.minutes`` budget, or raises ``Cancelled``. The
    learning rate follows reduce-on-plateau, then ``anneal_lr`` in the last
    ``recipe.anneal_minutes`` of the budget.
    """
    info = dist_info or DistInfo()
    model.to(device)
    use_cpu_fast_layout(model, device)
    mixed_precision = autocast_bf16(device, recipe.mixed_precision)
    net = model
    if info.active:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    params = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.Adam(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimiser, factor=recipe.plateau_factor, patience=recipe.plateau_patience
    )
    history: dict[str, list[float]] = {
        "train_loss": [],
        "val_loss": [],
        "lr": [],
        "seconds": [],
        "threshold": [],
        "is_best": [],
    }
    result = FitResult(history=history, mixed_precision=mixed_precision)
    start = time.monotonic()
    budget_s = recipe.minutes * 60.0 if recipe.minutes > 0 else math.inf
    anneal_s = recipe.anneal_minutes * 60.0
    anneal_from: float | None = None  # the learning rate when annealing began
    since_best = 0

    def loader(data: Dataset, *, shuffle: bool, epoch: int) -> DataLoader:
        sampler = None
        if info.active:
            sampler = torch.utils.data.distributed.DistributedSampler(
                data, num_replicas=info.world_size, rank=info.rank, shuffle=shuffle,
                seed=recipe.seed,
            )
            sampler.set_epoch(epoch)
        generator = torch.Generator().manual_seed(recipe.seed + epoch)
        return DataLoader(
            data,
            batch_size=recipe.batch_size,
            shuffle=shuffle and sampler is None,
            sampler=sampler,
            generator=generator,
            num_workers=recipe.num_workers,
            drop_last=False,
        )

    for epoch in range(recipe.epochs):
        threshold = threshold_at(
            epoch,
            start=recipe.threshold_start,
            end=recipe.threshold_end,
            ramp_epochs=recipe.threshold_ramp_epochs,
        )
        data = fresh_train_set(epoch) if fresh_train_set is not None and epoch > 0 else train_set
        batches = loader(data, shuffle=True, epoch=epoch)
        n_batches = len(batches)
        net.train()
        if freeze_batchnorm:
            _set_batchnorm_eval(model)
        total, count = 0.0, 0
        out_of_time = False
        for i, batch in enumerate(batches):
            check(cancel)
            loss = batch_loss(
                net, batch, recipe=recipe, threshold=threshold, device=device,
                mixed_precision=mixed_precision,
            )
            if not torch.isfinite(loss):
                hint = (
                    " under CPU bfloat16 autocast: run again without CDI_CPU_BF16=1"
                    if mixed_precision and device.type == "cpu" else ""
                )
                raise FloatingPointError(
                    f"training loss became {loss.item()} at epoch {epoch}{hint}"
                )
            if anneal_s > 0:
                into_anneal = _rank0_value(time.monotonic() - start, info, device) - (budget_s - anneal_s)
                if into_anneal >= 0:
                    if anneal_from is None:
                        anneal_from = optimiser.param_groups[0]["lr"]
                    lr = anneal_lr(anneal_from, recipe.lr_min, into_anneal / anneal_s)
                    for group in optimiser.param_groups:
                        group["lr"] = lr
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            if recipe.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, recipe.grad_clip)
            optimiser.step()
            size = batch["input"].shape[0]
            total += loss.item() * size
            count += size
            result.steps += 1
            elapsed = time.monotonic() - start
            if info.is_main:
                frac = max((epoch + (i + 1) / n_batches) / recipe.epochs, elapsed / budget_s)
                report(
                    progress,
                    ProgressEvent(
                        min(frac, 1.0),
                        "train",
                        epoch * n_batches + i + 1,
                        recipe.epochs * n_batches,
                        {"loss": loss.item(), "epoch": float(epoch)},
                    ),
                )
            if elapsed > budget_s:
                out_of_time = True
                break
        train_loss = _all_mean(total / max(count, 1), count, info, device)
        val_loss = train_loss
        if val_set is not None and len(val_set) > 0:
            # the bare module: DDP's forward would broadcast buffers, a collective that
            # deadlocks when ranks hold different numbers of validation batches
            val_loss = evaluate(model, val_set, recipe=recipe, device=device, dist_info=info)
        if anneal_from is None:
            scheduler.step(val_loss)
        is_best = val_loss < result.best_val_loss
        if is_best:
            result.best_val_loss = val_loss
            result.best_epoch = epoch
            since_best = 0
        else:
            since_best += 1
        history["train_loss"].append(train_loss)
        history["val_loss"].append(val_loss)
        history["lr"].append(optimiser.param_groups[0]["lr"])
        history["seconds"].append(time.monotonic() - start)
        history["threshold"].append(threshold)
        history["is_best"].append(1.0 if is_best else 0.0)
        result.epochs_run = epoch + 1
        if info.is_main:
            report(
                progress,
                ProgressEvent(
                    min((epoch + 1) / recipe.epochs, 1.0),
                    "epoch",
                    epoch + 1,
                    recipe.epochs,
                    {"train_loss": train_loss, "val_loss": val_loss},
                ),
            )
            if on_epoch_end is not None:
                on_epoch_end(epoch, history)
        if _any(out_of_time, info, device):
            result.stopped_because = "time budget"
            break
        if since_best >= recipe.early_stop_patience:
            result.stopped_because = "early stopping"
            break
    result.seconds = time.monotonic() - start
    return result


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    data: Dataset,
    *,
    recipe: TrainRecipe,
    device: torch.device,
    dist_info: DistInfo | None = None,
) -> float:
    """Return the mean loss over ``data`` in eval mode at the final support threshold, in
    float32 (comparable between runs with and without mixed precision)."""
    info = dist_info or DistInfo()
    was_training = model.training
    model.eval()
    indices = list(range(info.rank, len(data), info.world_size))
    subset = torch.utils.data.Subset(data, indices)
    total, count = 0.0, 0
    for batch in DataLoader(subset, batch_size=recipe.batch_size, shuffle=False):
        loss = batch_loss(
            model, batch, recipe=recipe, threshold=recipe.threshold_end, device=device
        )
        size = batch["input"].shape[0]
        total += loss.item() * size
        count += size
    model.train(was_training)
    return _all_mean(total / max(count, 1), count, info, device)
