"""The one place where the compute device is chosen."""

from __future__ import annotations

import os

import torch

from reconstruction.errors import ConfigError


def pick_device(name: str = "auto") -> torch.device:
    """Return the torch device for ``name`` ("auto", "cpu", "cuda" or "cuda:N").

    "auto" is CUDA when a GPU is present, else the CPU.
    """
    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r} asked for, but no CUDA GPU is available here")
        return torch.device(name)
    raise ConfigError(f"unknown device {name!r}: use auto, cpu or cuda")


def cpu_bf16_opted_in() -> bool:
    """Whether CPU training steps may run under bfloat16 autocast (``CDI_CPU_BF16=1``; off by
    default).

    On a CPU with native bfloat16 (AVX512-BF16, AMX) it is faster: a training step of the
    default model, batch 4 at 64^3, 0.163 s against 0.240 s on a 2-core Zen 5 VM
    (``benchmarks/bench_training_step.py``), with the same gradients on every repeat. It stays
    opt-in because on the tiny test models (16^3 input, 4-8 channels) torch 2.13's CPU bfloat16
    backward gave different, sometimes inf or NaN, weight gradients from one call to the next;
    the training loop stops on a NaN loss with a clear error. Where bfloat16 is emulated it is
    only slower.
    """
    return os.environ.get("CDI_CPU_BF16", "").strip() == "1"


def autocast_bf16(device: torch.device, wanted: bool = True) -> bool:
    """Whether to run a network's training steps under bfloat16 autocast on ``device``: CUDA
    whenever ``wanted``, the CPU only when also opted in (``cpu_bf16_opted_in``)."""
    if not wanted:
        return False
    if device.type == "cuda":
        return True
    return device.type == "cpu" and cpu_bf16_opted_in()
