"""Learning-rate annealing and warm starts of a training run."""

from __future__ import annotations

import math

import pytest

from reconstruction.errors import ConfigError
from reconstruction.nn import load_checkpoint
from reconstruction.nn.config import get_recipe
from reconstruction.nn.train import anneal_lr
from reconstruction.nn.workflow import train_model


def test_the_anneal_is_a_half_cosine_from_start_to_end():
    assert anneal_lr(1e-3, 1e-5, 0.0) == pytest.approx(1e-3)
    assert anneal_lr(1e-3, 1e-5, 0.5) == pytest.approx(0.5 * (1e-3 + 1e-5))
    assert anneal_lr(1e-3, 1e-5, 1.0) == pytest.approx(1e-5)
    assert anneal_lr(1e-3, 1e-5, 7.0) == pytest.approx(1e-5)  # clipped after the end
    values = [anneal_lr(1e-3, 0.0, t / 10) for t in range(11)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_an_anneal_longer_than_the_budget_or_an_lr_min_above_lr_is_refused():
    with pytest.raises(ConfigError, match="anneal_minutes"):
        get_recipe("tiny", anneal_minutes=5.0)  # no time budget
    with pytest.raises(ConfigError, match="anneal_minutes"):
        get_recipe("tiny", minutes=1.0, anneal_minutes=2.0)
    with pytest.raises(ConfigError, match="lr_min"):
        get_recipe("tiny", lr_min=0.5)


def test_a_warm_start_begins_from_the_parent_records_it_and_anneals_the_lr(tmp_path):
    parent = train_model(tmp_path / "parent.pt", recipe="tiny", device="cpu")
    child = train_model(
        tmp_path / "child.pt", recipe="tiny", device="cpu", init_from=str(tmp_path / "parent.pt"),
        epochs=3, minutes=0.5, anneal_minutes=0.5,
    )
    assert child["parent"] == {"name": "tiny-3d", "weights_sha256": parent["model_sha256"]}
    assert load_checkpoint(tmp_path / "child.pt").payload["parent"] == child["parent"]
    # the whole run is the anneal: the lr falls below its start from the first epoch on
    lrs = child["history"]["lr"]
    assert lrs[0] < 1e-3 and all(a >= b for a, b in zip(lrs, lrs[1:]))
    # the warm start continues from the parent's loss, not from a random model's
    fresh = train_model(tmp_path / "fresh.pt", recipe="tiny", device="cpu", epochs=1)
    assert child["history"]["val_loss"][0] < fresh["history"]["val_loss"][0]
    assert math.isfinite(child["metrics"]["best_val_loss"])


def test_a_warm_start_of_another_architecture_is_refused_with_the_differing_fields(tmp_path):
    train_model(tmp_path / "parent.pt", recipe="tiny", device="cpu")
    for change, field in (({"depth": 1}, "depth"), ({"width": 2}, "width")):  # a narrower model
        with pytest.raises(ConfigError, match=field):
            train_model(
                tmp_path / "child.pt", recipe="tiny", device="cpu",
                init_from=str(tmp_path / "parent.pt"), **change,
            )
    assert not (tmp_path / "child.pt").exists()


def test_a_warm_start_to_a_larger_width_widens_the_parent_and_records_it(tmp_path):
    parent = train_model(tmp_path / "parent.pt", recipe="tiny", device="cpu", epochs=3)
    child = train_model(
        tmp_path / "child.pt", recipe="tiny", device="cpu", init_from=str(tmp_path / "parent.pt"),
        width=6, epochs=1, lr=1e-5,
    )
    assert child["parent"] == {
        "name": "tiny-3d", "weights_sha256": parent["model_sha256"], "widened_from_width": 4,
    }
    assert load_checkpoint(tmp_path / "child.pt").model.config.width == 6
    # it goes on from the parent's loss, not from a random model's of its width
    fresh = train_model(tmp_path / "fresh.pt", recipe="tiny", device="cpu", width=6, epochs=1)
    assert child["history"]["val_loss"][0] < fresh["history"]["val_loss"][0]
