"""Inference: patterns in, centred complex objects out; and per-pattern optimisation.

The network's object (amplitude * exp(i phase) in the central half box, support = 10 % of the
maximum amplitude) is scaled so that its far field fits the measured amplitude in the least-
squares sense on unmasked pixels, so ``|farfield(obj)|^2`` is directly comparable with the data.
"""

from __future__ import annotations

import copy
import itertools
import time
from typing import Any

import numpy as np
import torch

from reconstruction.errors import ConfigError, InvalidDataError
from reconstruction.nn.config import TrainRecipe
from reconstruction.nn.model import PhaseNet, cpu_fast_input, use_cpu_fast_layout
from reconstruction.nn.physics import (
    EPS,
    assemble_object,
    farfield_amplitude,
    network_input,
)
from reconstruction.nn.train import fit
from reconstruction.progress import ProgressCallback, ProgressEvent, check, report


def _as_batch(array: np.ndarray | torch.Tensor, dims: int, what: str) -> torch.Tensor:
    """Return a (B, 1, N, ...) tensor from (N, ...), (B, N, ...) or (B, 1, N, ...)."""
    t = torch.as_tensor(np.asarray(array) if not isinstance(array, torch.Tensor) else array)
    if t.dim() == dims:
        t = t[None, None]
    elif t.dim() == dims + 1:
        t = t[:, None]
    elif t.dim() != dims + 2:
        raise InvalidDataError(f"{what} must be {dims}D (optionally batched), got {tuple(t.shape)}")
    return t


def check_input_shape(model: PhaseNet, shape: tuple[int, ...]) -> None:
    """Raise ``InvalidDataError`` unless ``shape`` is the model's input box."""
    cfg = model.config
    expected = (cfg.input_size,) * cfg.dims
    if tuple(shape) != expected:
        raise InvalidDataError(
            f"this model reads {cfg.dims}D patterns of shape {expected}, the data has shape "
            f"{tuple(shape)}: prepare it first (python -m reconstruction prepare FILE --shape "
            f"{cfg.input_size})"
        )


def _forward(model: PhaseNet, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the network; a CPU batch of one is doubled, because PyTorch's CPU convolution takes a
    slow non-oneDNN path at batch 1 (measured 3-10x slower than two samples at once), and a 3D
    network runs channels-last there (``use_cpu_fast_layout``: 31 instead of 46 ms per pattern
    in batches of 8)."""
    use_cpu_fast_layout(model, x.device)
    x = cpu_fast_input(x)
    if x.shape[0] == 1 and x.device.type == "cpu":
        amp, phase = model(torch.cat([x, x]))
        return amp[:1], phase[:1]
    return model(x)


@torch.inference_mode()
def predict_objects(
    model: PhaseNet,
    intensity: np.ndarray | torch.Tensor,
    mask: np.ndarray | torch.Tensor | None = None,
    *,
    batch_size: int = 8,
    threshold: float = 0.1,
    device: torch.device | str = "cpu",
    progress: ProgressCallback | None = None,
    cancel: Any = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Predict objects for one or many patterns.

    Parameters
    ----------
    intensity : (N, N, N) or (B, N, N, N) float (2D: (N, N) or (B, N, N)), photon counts,
        zero frequency at N // 2, N = the model's input size.
    mask : same shape, bool, True = excluded pixel; or None.
    threshold : support threshold, fraction of the maximum predicted amplitude.

    Returns
    -------
    obj : (B, N, ...) complex64, centred, scaled so that |farfield(obj)| fits sqrt(intensity).
    support : (B, N, ...) bool.
    """
    device = torch.device(device)
    dims = model.config.dims
    x_all = _as_batch(intensity, dims, "intensity").float()
    m_all = (
        torch.zeros_like(x_all, dtype=torch.bool)
        if mask is None
        else _as_batch(mask, dims, "mask").bool()
    )
    check_input_shape(model, tuple(x_all.shape[2:]))
    if m_all.shape != x_all.shape:
        raise InvalidDataError(f"mask shape {tuple(m_all.shape)} != intensity {tuple(x_all.shape)}")
    model.eval().to(device)
    objs, supports = [], []
    n = x_all.shape[0]
    for start in range(0, n, batch_size):
        check(cancel)
        inten = x_all[start : start + batch_size].to(device)
        m = m_all[start : start + batch_size].to(device)
        x = network_input(inten, m)
        amp, phase = _forward(model, x)
        obj = assemble_object(amp, phase, box=x.shape[-1], threshold=threshold, soft_width=None)
        calc = farfield_amplitude(obj)
        measured = torch.sqrt(torch.clamp(inten, min=0.0))
        keep = (~m).float()
        dims_sum = tuple(range(1, calc.dim()))
        scale = (calc * measured * keep).sum(dims_sum) / ((calc**2) * keep).sum(dims_sum).clamp_min(
            EPS
        )
        obj = obj * scale.view(-1, *([1] * (obj.dim() - 1)))
        objs.append(obj[:, 0].cpu().numpy().astype(np.complex64))
        supports.append((obj[:, 0].abs() > 0).cpu().numpy())
        done = start + len(x)
        report(progress, ProgressEvent(min(done / n, 1.0), "predict", done, n))
    return np.concatenate(objs), np.concatenate(supports)


def flip_sets(n_flips: int, dims: int) -> list[tuple[int, ...]]:
    """The axis sets flipped for ``n_flips`` (1, 4 or 8; 2D has 1 or 4) views of a pattern (a
    mirrored pattern is the diffraction of the object mirrored the same way): 4 = none and each
    axis alone, 8 = every combination; a ConfigError for any other number."""
    axes = list(range(dims))
    every = [c for k in range(dims + 1) for c in itertools.combinations(axes, k)]
    if n_flips == 1:
        return [()]
    if n_flips == 4:
        return [(), *[(a,) for a in axes]] if dims == 3 else every
    if n_flips == 8 and dims == 3:
        return every
    raise ConfigError(f"flips must be 1, 4 or 8 (1 or 4 in 2D), got {n_flips}")


def flip_centred(array: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """``array`` (centred: zero frequency or object centre at N // 2) mirrored about index N // 2
    along ``axes`` (index i -> N - i mod N), so the centre stays where it is."""
    for axis in axes:
        array = np.roll(np.flip(array, axis), 1, axis=axis)
    return array


def _align_view(moving: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``moving`` or its twin, rolled by the whole-voxel shift that best overlaps its amplitude
    with the reference's (FFT cross-correlation) and multiplied by the complex scale that fits
    it to the reference; of the two, the closer one. The views of one pattern are centred by the
    network, so sub-voxel shifts and phase ramps (``reconstruction.metrics.align_to``, 10× the
    time) are not needed."""
    from reconstruction.fourier import fft_nd
    from reconstruction.metrics import twin_of

    ref_spectrum = np.conj(fft_nd(np.abs(reference).astype(np.float32), norm="backward"))
    best, best_err = moving, np.inf
    for candidate in (moving, twin_of(moving)):
        xc = fft_nd(fft_nd(np.abs(candidate).astype(np.float32), norm="backward") * ref_spectrum,
                    inverse=True, norm="backward").real  # fmt: skip
        peak = np.unravel_index(int(np.argmax(xc)), xc.shape)
        shift = tuple(-(p if p <= n // 2 else p - n) for p, n in zip(peak, xc.shape))
        out = np.roll(candidate, shift, axis=tuple(range(candidate.ndim)))
        norm = float(np.vdot(out, out).real)
        out = out * (np.vdot(out, reference) / norm if norm > 0 else 1.0)
        err = float(np.linalg.norm(out - reference))
        if err < best_err:
            best, best_err = out, err
    return best


def predict_averaged(
    model: PhaseNet,
    intensity: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    flips: int = 4,
    threshold: float = 0.1,
    device: torch.device | str = "cpu",
    cancel: Any = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Predict one pattern from ``flips`` mirrored views and average them (test-time
    augmentation): each view's prediction is mirrored back, aligned on the plain view's
    (``_align_view``: twin, whole-voxel shift, global phase) and the complex objects averaged.

    intensity, mask : one pattern (N, N, N) or (N, N), as for ``predict_objects``.
    Returns (obj, support) of that pattern: obj complex64 centred, scaled to fit sqrt(intensity)
    on the unmasked pixels; support = amplitude above ``threshold`` of its maximum.
    On 100 held-out 3D simulations, 4 views lowered the relative error after ER**50 in 64 % of
    patterns and raised the success rate from 32 to 37 %, for 0.1 s (benchmarks/RESULTS.md).
    """
    from reconstruction.metrics import fourier_errors

    intensity = np.asarray(intensity, np.float32)
    mask = np.zeros(intensity.shape, bool) if mask is None else np.asarray(mask, bool)
    views = flip_sets(flips, intensity.ndim)
    stack_i = np.stack([flip_centred(intensity, v) for v in views])
    stack_m = np.stack([flip_centred(mask, v) for v in views])
    objs, _ = predict_objects(model, stack_i, stack_m, batch_size=len(views), threshold=threshold,
                              device=device, cancel=cancel)  # fmt: skip
    back = [flip_centred(o, v) for o, v in zip(objs, views)]
    reference = back[0]
    aligned = [reference] + [_align_view(b, reference) for b in back[1:]]
    check(cancel)
    obj = np.mean(np.stack(aligned), axis=0)
    obj = (obj * fourier_errors(obj, intensity, mask=mask)["scale"]).astype(np.complex64)
    amplitude = np.abs(obj)
    support = amplitude > threshold * float(amplitude.max()) if amplitude.max() > 0 else np.zeros(obj.shape, bool)
    return obj, support


# Per-pattern optimisation on the CPU puts the pattern this many times in each batch: the loss
# and gradient are those of one copy, but batch 1 takes PyTorch's slow convolution path (see
# ``_forward``; a 64³ step of the shipped model 0.6 -> 0.16 s on 2 cores).
CPU_BATCH_COPIES = 2
# Learning rate of per-pattern optimisation: of 1e-4, 3e-4 and 1e-3 for 30 steps of the shipped
# 3D model, 3e-4 gave the best starts (benchmarks/RESULTS.md, *Per-pattern optimisation measured*).
OPTIMISE_LR = 3e-4


class _Repeat(torch.utils.data.Dataset):
    """One network item repeated ``n`` times (an epoch of per-pattern optimisation)."""

    def __init__(self, item: dict[str, torch.Tensor], n: int) -> None:
        self.item = item
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.item


def optimise_on_pattern(
    model: PhaseNet,
    intensity: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    steps: int = 100,
    lr: float = OPTIMISE_LR,
    from_scratch: bool = False,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: ProgressCallback | None = None,
    cancel: Any = None,
) -> tuple[PhaseNet, dict[str, Any]]:
    """Optimise a copy of the weights on one pattern (unsupervised transfer), return it.

    Parameters
    ----------
    intensity : (N, N, N) or (N, N) float, the prepared pattern; mask likewise (True = excluded).
    steps : optimiser steps (batch of one; on the CPU the pattern goes in twice per batch, which
        gives the same loss and gradient but avoids PyTorch's slow batch-1 convolution path).
    from_scratch : start from random weights of the same config instead of ``model``'s.

    Returns (model, {"loss": [per-step loss], "seconds": ...}); BatchNorm keeps the pretrained
    statistics unless starting from scratch.
    """
    device = torch.device(device)
    check_input_shape(model, tuple(np.shape(intensity)))
    if from_scratch:
        torch.manual_seed(seed)
        tuned = PhaseNet(model.config)
    else:
        tuned = copy.deepcopy(model)
    inten = torch.as_tensor(np.asarray(intensity, dtype=np.float32))[None, None]
    m = (
        torch.zeros_like(inten, dtype=torch.bool)
        if mask is None
        else torch.as_tensor(np.asarray(mask, dtype=bool))[None, None]
    )
    item = {"input": network_input(inten, m)[0], "mask": m[0]}
    copies = CPU_BATCH_COPIES if device.type == "cpu" else 1
    recipe = TrainRecipe(
        name="per-pattern",
        dims=model.config.dims,
        shape=model.config.input_size,
        width=model.config.width,
        depth=model.config.depth,
        n_train=1,
        n_val=0,
        epochs=1,
        batch_size=copies,
        lr=lr,
        threshold_start=0.1,
        threshold_end=0.1,
        threshold_ramp_epochs=0,
        early_stop_patience=10**9,
    )
    losses: list[float] = []

    def on_progress(event: ProgressEvent) -> None:
        if event.stage == "train":
            losses.append(event.values["loss"])
            report(
                progress,
                ProgressEvent(event.fraction, "optimise", event.step, steps, event.values),
            )

    start = time.monotonic()
    fit(
        tuned,
        _Repeat(item, copies * steps),
        None,
        recipe=recipe,
        device=device,
        progress=on_progress,
        cancel=cancel,
        freeze_batchnorm=not from_scratch,
    )
    tuned.eval()
    return tuned, {"loss": losses, "seconds": time.monotonic() - start}
