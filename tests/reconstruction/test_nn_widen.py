"""Net2Net widening: a wider network that computes what its parent does, and then grows apart."""

from __future__ import annotations

import pytest
import torch

from reconstruction.errors import ConfigError
from reconstruction.nn import ModelConfig, PhaseNet
from reconstruction.nn.widen import widen_model


def _trained_like(config: ModelConfig, seed: int) -> PhaseNet:
    """A model whose BatchNorm layers hold non-trivial statistics, as a trained one does."""
    torch.manual_seed(seed)
    model = PhaseNet(config)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(4, 1, *[config.input_size] * config.dims))
    return model


@pytest.mark.parametrize(
    "config",
    [ModelConfig(dims=3, input_size=16, output_size=8, width=4, depth=2),
     ModelConfig(dims=2, input_size=32, output_size=16, width=4, depth=3)],
    ids=["3d", "2d"],
)
def test_the_widened_model_predicts_what_its_parent_predicts(config):
    parent = _trained_like(config, seed=1)
    wider = widen_model(parent, 7, seed=2)
    assert wider.config.width == 7 and wider.n_parameters() > 2 * parent.n_parameters()
    x = torch.rand(3, 1, *[config.input_size] * config.dims)
    for mode in ("eval", "train"):  # running statistics, then batch statistics
        parent.train(mode == "train")
        wider.train(mode == "train")
        with torch.no_grad():
            (amp, phase), (amp_w, phase_w) = parent(x), wider(x)
        assert torch.allclose(amp_w, amp, atol=1e-5), mode
        assert torch.allclose(phase_w, phase, atol=1e-4), mode
        assert not torch.allclose(amp, torch.zeros_like(amp), atol=1e-3)


def test_copied_channels_grow_apart_under_training():
    config = ModelConfig(dims=3, input_size=16, output_size=8, width=4, depth=2)
    wider = widen_model(_trained_like(config, seed=3), 8, seed=4)
    stem = wider.encoder.stem[3].weight  # (8, 8, 3, 3, 3): its outputs 4..7 copy outputs 0..3
    copies = [(o, c) for o in range(4, 8) for c in range(4) if torch.equal(stem[o], stem[c])]
    assert len(copies) == 4  # each new channel starts as an exact copy of an old one
    optimiser = torch.optim.SGD(wider.parameters(), lr=0.1)
    amp, phase = wider(torch.rand(2, 1, 16, 16, 16))
    ((amp - 0.3) ** 2).mean().add((phase**2).mean()).backward()
    optimiser.step()
    for o, c in copies:  # the unequal split of their outgoing weights broke the symmetry
        assert not torch.allclose(stem[o], stem[c])


def test_a_narrower_width_is_refused():
    parent = PhaseNet(ModelConfig(dims=3, input_size=16, output_size=8, width=4, depth=2))
    with pytest.raises(ConfigError, match="only be widened"):
        widen_model(parent, 3)
    assert widen_model(parent, 4).n_parameters() == parent.n_parameters()
