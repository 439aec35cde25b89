"""The one place where the compute device is chosen."""

from __future__ import annotations

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
