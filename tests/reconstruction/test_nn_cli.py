"""The train / predict / finetune commands end to end on a tiny simulated recipe."""

from __future__ import annotations

import json

import numpy as np

from reconstruction.cli import main
from reconstruction.io import write_prepared
from reconstruction.io.types import DiffractionData
from reconstruction.nn import load_checkpoint
from reconstruction.nn.testing import ellipsoid_object


def test_train_command_writes_a_checkpoint_with_recipe_and_history(tmp_path, capsys):
    out = tmp_path / "tiny.pt"
    code = main(["train", "--recipe", "tiny", "--out", str(out), "--epochs", "2",
                 "--set", "n_train=8", "--device", "cpu", "--json"])
    assert code == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    # not a terminal: no bar, but one log line per epoch for runs under nohup or a batch system
    epoch_lines = [line for line in captured.err.splitlines() if line.startswith("epoch ")]
    assert len(epoch_lines) == 2 and "val_loss=" in epoch_lines[1] and "\r" not in captured.err
    assert summary["out_path"] == str(out.resolve()) and len(summary["history"]["train_loss"]) == 2
    loaded = load_checkpoint(out)
    assert loaded.recipe["simulation"]["shape"] == 16 and loaded.recipe["n_train"] == 8
    assert loaded.history["val_loss"] and loaded.weights_sha256 == summary["model_sha256"]
    # a second stage warm-started from the first, annealing over its whole budget
    code = main(["train", "--recipe", "tiny", "--out", str(tmp_path / "stage2.pt"), "--epochs",
                 "1", "--set", "n_train=8", "--init-from", str(out), "--minutes", "1",
                 "--anneal-minutes", "1", "--device", "cpu", "--json"])
    assert code == 0
    stage2 = json.loads(capsys.readouterr().out)
    assert stage2["parent"]["weights_sha256"] == summary["model_sha256"]
    assert stage2["recipe"]["init_from"] == str(out) and stage2["recipe"]["anneal_minutes"] == 1


def test_predict_and_finetune_commands_run_on_a_prepared_file(tmp_path, capsys):
    ckpt = tmp_path / "tiny.pt"
    assert main(["train", "--recipe", "tiny", "--out", str(ckpt), "--epochs", "1",
                 "--set", "n_train=4", "--device", "cpu", "--json"]) == 0
    capsys.readouterr()
    _, intensity = ellipsoid_object(16, seed=2)
    data = tmp_path / "prepared.cxi"
    write_prepared(data, DiffractionData(intensity=intensity, mask=np.zeros(intensity.shape, bool)))
    assert main(["predict", str(data), "--out", str(tmp_path / "p.cxi"), "--checkpoint",
                 str(ckpt), "--device", "cpu", "--json"]) == 0
    predicted = json.loads(capsys.readouterr().out)
    assert 0 <= predicted["metrics"]["chi2"] < 10
    assert main(["finetune", str(data), "--out", str(tmp_path / "ft.pt"), "--checkpoint",
                 str(ckpt), "--steps", "2", "--batch-size", "2", "--device", "cpu"]) == 0
    assert "parent" in capsys.readouterr().out


def test_a_corrupt_checkpoint_is_one_error_line_and_exit_status_2(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00" * 64)
    _, intensity = ellipsoid_object(16, seed=2)
    data = tmp_path / "prepared.cxi"
    write_prepared(data, DiffractionData(intensity=intensity, mask=np.zeros(intensity.shape, bool)))
    code = main(["predict", str(data), "--out", str(tmp_path / "p.cxi"), "--checkpoint", str(bad)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error:") and "checkpoint" in err[0]


def test_a_2d_pattern_is_predicted_by_the_shipped_2d_model_without_naming_it(tmp_path, capsys):
    import pytest

    from reconstruction.nn import default_checkpoint_path
    from reconstruction.simulate import Recipe, SimulatedDataset

    if not default_checkpoint_path(2).is_file():
        pytest.skip("no shipped 2D model")
    item = SimulatedDataset(Recipe(kind="mixed", shape=64, dims=2), 1, 123)[0]
    raw = tmp_path / "pattern2d.npy"
    np.save(raw, item["intensity"][0].numpy())
    assert main(["predict", str(raw), "--out", str(tmp_path / "p.cxi"), "--device", "cpu", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["model_sha256"] == load_checkpoint(default_checkpoint_path(2)).weights_sha256
