"""``train_model(data_path=...)``: the network learns from a stored simulated set (a simulate
job's output) instead of simulating its own data; validation stays on disjoint seeds."""

from __future__ import annotations

import pytest

from reconstruction.errors import ConfigError, InvalidDataError
from reconstruction.nn.checkpoint import read_checkpoint
from reconstruction.nn.config import get_recipe
from reconstruction.nn.workflow import file_sha256, train_model
from reconstruction.simulate.workflow import simulate_dataset


def _tiny_set(
    path, *, seed: int | None = None, shape: int | None = None, n: int | None = None
) -> str:
    """The "tiny" recipe's training data, simulated to ``path`` (as a simulate job writes it)."""
    rec = get_recipe("tiny")
    simulate_dataset(
        path,
        kind=rec.kind,
        n=n or rec.n_train,
        shape=shape or rec.shape,
        dims=rec.dims,
        photons=rec.photons,
        seed=rec.seed if seed is None else seed,
    )
    return str(path)


def test_training_from_the_stored_set_equals_training_on_the_same_simulated_patterns(tmp_path):
    data = _tiny_set(tmp_path / "simulated.h5")
    stored = train_model(
        tmp_path / "stored.pt", recipe="tiny", data_path=data, epochs=1, device="cpu"
    )
    simulated = train_model(tmp_path / "simulated.pt", recipe="tiny", epochs=1, device="cpu")
    assert stored["metrics"]["epochs_run"] == 1 and len(stored["history"]["train_loss"]) == 1
    # the stored patterns are exactly the ones the recipe would simulate (seeds 0..7): same run
    assert stored["history"]["train_loss"] == pytest.approx(
        simulated["history"]["train_loss"], rel=1e-5
    )
    assert stored["history"]["val_loss"] == pytest.approx(
        simulated["history"]["val_loss"], rel=1e-5
    )
    recipe = read_checkpoint(tmp_path / "stored.pt")["recipe"]
    assert recipe["training_data"]["sha256"] == file_sha256(data)
    assert recipe["training_data"]["n"] == 8 and recipe["training_data"]["n_used"] == 8
    assert (
        recipe["simulation"]["shape"] == 16
        and recipe["n_train"] == 8
        and recipe["fresh_each_epoch"] is False
    )


def test_a_different_stored_set_gives_a_different_run(tmp_path):
    data = _tiny_set(tmp_path / "other.h5", seed=123, n=12)
    stored = train_model(
        tmp_path / "other.pt", recipe="tiny", data_path=data, epochs=1, device="cpu"
    )
    simulated = train_model(tmp_path / "sim.pt", recipe="tiny", epochs=1, device="cpu")
    assert stored["history"]["train_loss"] != pytest.approx(
        simulated["history"]["train_loss"], rel=1e-5
    )
    training_data = read_checkpoint(tmp_path / "other.pt")["recipe"]["training_data"]
    assert training_data["seed"] == 123 and training_data["n_used"] == 12  # all of it by default


def test_n_train_takes_the_first_patterns_of_the_set_and_cannot_exceed_it(tmp_path):
    data = _tiny_set(tmp_path / "set.h5", n=12)
    summary = train_model(
        tmp_path / "m.pt", recipe="tiny", data_path=data, epochs=1, n_train=4, device="cpu"
    )
    assert summary["recipe"]["training_data"]["n_used"] == 4 and summary["recipe"]["n_train"] == 4
    with pytest.raises(ConfigError, match="holds only 12 patterns"):
        train_model(
            tmp_path / "m2.pt", recipe="tiny", data_path=data, epochs=1, n_train=20, device="cpu"
        )


def test_a_set_of_another_shape_is_refused_with_a_clear_message(tmp_path):
    data = _tiny_set(tmp_path / "big.h5", shape=32, n=2)
    with pytest.raises(
        InvalidDataError,
        match=r"holds 32x32x32 patterns but recipe 'tiny' trains a network on 16x16x16",
    ):
        train_model(tmp_path / "m.pt", recipe="tiny", data_path=data, epochs=1, device="cpu")
    assert not (tmp_path / "m.pt").exists()


def test_a_file_that_is_not_a_simulated_set_is_refused(tmp_path):
    import h5py

    with h5py.File(tmp_path / "plain.h5", "w") as handle:
        handle["data"] = [1.0, 2.0]
    with pytest.raises(InvalidDataError, match="not a simulated data shard"):
        train_model(
            tmp_path / "m.pt",
            recipe="tiny",
            data_path=tmp_path / "plain.h5",
            epochs=1,
            device="cpu",
        )
