"""Grow a trained ``PhaseNet`` to a larger width without changing what it computes (Net2Net).

Every layer's channels are widened by copying existing ones: a new output channel repeats an
old one (its filters, bias and BatchNorm parameters and statistics), and the next layer reads
the copies of an old channel with weights that sum to the old weight. The copies carry equal
values, so the widened network gives the same amplitude and phase as its parent (to float
rounding), in training and in evaluation mode. The split between copies is random (seeded), so
the copies receive different gradients and grow apart once training goes on.

Reference: Chen, Goodfellow, Shlens, "Net2Net: accelerating learning via knowledge transfer",
ICLR 2016 (Net2WiderNet), with the symmetry broken by unequal splits instead of added noise.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from reconstruction.errors import ConfigError
from reconstruction.nn.model import PhaseNet

_CONV = (nn.Conv2d, nn.Conv3d)
_NORM = (nn.BatchNorm2d, nn.BatchNorm3d)


def _channel_map(old: int, new: int, generator: torch.Generator) -> torch.Tensor:
    """Return (new,) indices of old channels: the old ones in order, then random repeats."""
    extra = torch.randint(0, old, (new - old,), generator=generator)
    return torch.cat([torch.arange(old), extra])


def _split_fractions(mapping: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Return (new,) weights summing to 1 over the copies of each old channel (random split)."""
    shares = 1.0 + 0.5 * torch.rand(mapping.numel(), generator=generator, dtype=torch.float64)
    totals = torch.zeros(int(mapping.max()) + 1, dtype=torch.float64).index_add_(0, mapping, shares)
    return (shares / totals[mapping]).float()


def _chains(model: PhaseNet) -> list[list[nn.Module]]:
    """Return the layer chains in order: the encoder, then each decoder (convs and norms)."""

    def layers(module: nn.Module) -> list[nn.Module]:
        return [m for m in module.modules() if isinstance(m, _CONV + _NORM)]

    return [
        layers(model.encoder),
        layers(model.amplitude_decoder),
        layers(model.phase_decoder),
    ]


@torch.no_grad()
def _widen_chain(
    old_layers: list[nn.Module],
    new_layers: list[nn.Module],
    input_map: torch.Tensor | None,
    generator: torch.Generator,
) -> torch.Tensor | None:
    """Copy one chain's weights into its wider twin; return the chain's output channel map."""
    current = input_map  # map of the channels entering the next conv (None: not widened)
    fractions = None if current is None else _split_fractions(current, generator)
    for old, new in zip(old_layers, new_layers, strict=True):
        if isinstance(old, _CONV):
            out_map = (
                torch.arange(old.out_channels)
                if new.out_channels == old.out_channels
                else _channel_map(old.out_channels, new.out_channels, generator)
            )
            weight = old.weight[out_map]
            if current is not None:
                shape = (1, -1) + (1,) * (weight.dim() - 2)
                weight = weight[:, current] * fractions.to(weight.device).view(shape)
            new.weight.copy_(weight)
            if old.bias is not None:
                new.bias.copy_(old.bias[out_map])
            current = out_map
            fractions = _split_fractions(current, generator)
        else:  # BatchNorm of the preceding conv's channels
            new.weight.copy_(old.weight[current])
            new.bias.copy_(old.bias[current])
            new.running_mean.copy_(old.running_mean[current])
            new.running_var.copy_(old.running_var[current])
            new.num_batches_tracked.copy_(old.num_batches_tracked)
    return current


def widen_model(model: PhaseNet, width: int, *, seed: int = 0) -> PhaseNet:
    """Return a new ``PhaseNet`` of ``width`` channels after the stem computing what ``model`` does.

    ``width`` must be at least the model's; dims, depth and sizes stay. The result is on the
    model's device, in training mode, with the split between copied channels drawn from ``seed``.
    """
    config = model.config
    if width < config.width:
        raise ConfigError(
            f"a model can only be widened: width {width} is below the checkpoint's {config.width}"
        )
    wider = PhaseNet(replace(config, width=width)).to(next(model.parameters()).device)
    generator = torch.Generator().manual_seed(seed)
    encoder_old, *decoders_old = _chains(model)
    encoder_new, *decoders_new = _chains(wider)
    latent_map = _widen_chain(encoder_old, encoder_new, None, generator)
    for old_layers, new_layers in zip(decoders_old, decoders_new, strict=True):
        _widen_chain(old_layers, new_layers, latent_map, generator)
    return wider
