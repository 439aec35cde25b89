"""Twin-averaged predictions: the amplitude spread that marks them, and the pipeline's fallback."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from reconstruction.io import read_result
from reconstruction.metrics import twin_of
from reconstruction.nn.checkpoint import save_checkpoint
from reconstruction.nn.model import PhaseNet
from reconstruction.nn.trust import amplitude_spread, is_twin_averaged, twin_averaged_threshold
from tests.reconstruction.test_nn_workflow import TINY, _prepared
from tests.reconstruction.test_symmetry import tetrahedron


def _smooth(body: np.ndarray) -> np.ndarray:
    """A body with the simulator's smooth edge (Gaussian, sigma 0.7 voxel)."""
    from scipy import ndimage

    return ndimage.gaussian_filter(body.astype(float), 0.7)


def test_a_uniform_crystal_has_little_spread_and_its_average_with_its_twin_has_much():
    crystal = _smooth(tetrahedron())
    support = crystal > 0.1 * crystal.max()
    hedge = 0.5 * (crystal + np.abs(twin_of(crystal)))
    hedge_support = hedge > 0.1 * hedge.max()
    assert amplitude_spread(crystal, support) < 0.15  # its corners are blurred a little
    # the apices only one of the two holds are at half height
    assert amplitude_spread(hedge, hedge_support) > twin_averaged_threshold(3, 1) + 0.05
    # phase and scale do not matter; an empty support scores 0
    assert amplitude_spread(3 * crystal * np.exp(0.4j), support) == pytest.approx(
        amplitude_spread(crystal, support)
    )
    assert amplitude_spread(crystal, np.zeros_like(support)) == 0.0


def test_thresholds_are_for_3d_only_and_lower_for_averaged_views():
    assert twin_averaged_threshold(2, 1) is None and twin_averaged_threshold(2, 4) is None
    assert twin_averaged_threshold(3, 4) == twin_averaged_threshold(3, 8) < twin_averaged_threshold(3, 1)
    assert is_twin_averaged(0.3, twin_averaged_threshold(3, 1)) and not is_twin_averaged(0.1, 0.22)
    assert not is_twin_averaged(9.9, twin_averaged_threshold(2, 1))  # never in 2D


def test_the_shipped_model_flags_its_predictions_of_tetrahedra_and_not_of_rounded_bodies():
    """Simulated held-out patterns: lopsided {111} crystals (4 planes: tetrahedra) against
    superellipsoids, which are centrosymmetric; the shipped 3D model, one view."""
    from reconstruction.nn import load_checkpoint, predict_objects
    from reconstruction.nn.workflow import HELD_OUT_SEED, default_checkpoint_path
    from reconstruction.simulate import Recipe, SimulatedDataset

    model, _ = load_checkpoint(default_checkpoint_path(3))
    threshold = twin_averaged_threshold(3, 1)
    recipes = {
        "tetrahedra": Recipe(kind="crystal", crystal_families=("111",), crystal_planes=(4, 4)),
        "rounded": Recipe(kind="superellipsoid"),
    }
    spreads = {}
    for name, recipe in recipes.items():
        data = SimulatedDataset(recipe, 8, HELD_OUT_SEED + 7_000)
        batch = [data[i] for i in range(8)]
        intensity = np.stack([b["intensity"][0].numpy() for b in batch])
        mask = np.stack([b["mask"][0].numpy() for b in batch]).astype(bool)
        objs, supports = predict_objects(model, intensity, mask, batch_size=8)
        spreads[name] = np.array([amplitude_spread(o, s) for o, s in zip(objs, supports)])
    # calibration (200 other patterns): 87 % of lopsided crystals flagged, 10 % of the others
    assert np.median(spreads["tetrahedra"]) > threshold > np.median(spreads["rounded"]), spreads
    assert np.sum(spreads["tetrahedra"] > threshold) >= 2 * max(1, np.sum(spreads["rounded"] > threshold))


@pytest.fixture()
def prepared_and_model(tmp_path):
    torch.manual_seed(0)
    model = tmp_path / "tiny.pt"
    save_checkpoint(model, PhaseNet(TINY), name="tiny-3d")
    return _prepared(tmp_path / "prepared.cxi"), model


@pytest.mark.parametrize("flagged", [True, False])
def test_the_pipeline_phases_from_random_starts_too_when_the_prediction_is_twin_averaged(
    tmp_path, prepared_and_model, monkeypatch, flagged
):
    from reconstruction.nn import workflow

    data, model = prepared_and_model
    # the tiny model's spread is arbitrary: set the threshold so that it is (not) flagged
    monkeypatch.setattr(workflow, "twin_averaged_threshold", lambda dims, views: -1.0 if flagged else 1e9)
    out = tmp_path / "out"
    summary = workflow.pipeline_file(data, out, checkpoint_path=model, refine_algorithm="ER**10",
                                     fallback_runs=2, device="cpu")  # fmt: skip
    assert summary["predicted"]["twin_averaged"] is flagged
    assert (out / "phased.cxi").is_file() is flagged
    if not flagged:
        assert summary["route"] == "refined" and summary["phased"] is None and not summary["warnings"]
        return
    assert "twin" in summary["warnings"][0] and len(summary["phased"]["runs"]) == 2
    refined, phased = summary["refined"]["metrics"], summary["phased"]["metrics"]
    better = "phased" if phased["llk_free"] < refined["llk_free"] else "refined"
    assert summary["route"] == better
    assert summary["out_path"] == summary[better]["out_path"]
    assert summary["metrics"] == summary[better]["metrics"]
    assert read_result(summary["out_path"]).obj.shape == (16, 16, 16)
    # the predicted file records the spread and the threshold it was held to
    predicted = read_result(summary["predicted_path"])
    assert predicted.metrics["amplitude_spread"] == pytest.approx(summary["predicted"]["metrics"]["amplitude_spread"])
    assert predicted.config["twin_averaged_threshold"] == -1.0


def test_no_fallback_with_zero_runs_and_a_negative_count_is_refused(tmp_path, prepared_and_model, monkeypatch, capsys):
    from reconstruction.cli import main
    from reconstruction.nn import workflow

    data, model = prepared_and_model
    monkeypatch.setattr(workflow, "twin_averaged_threshold", lambda dims, views: -1.0)
    assert main(["pipeline", str(data), "--out", str(tmp_path / "none"), "--checkpoint", str(model),
                 "--algorithm", "ER**5", "--fallback-runs", "0", "--device", "cpu", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["route"] == "refined" and summary["warnings"] and not (tmp_path / "none" / "phased.cxi").exists()
    assert main(["pipeline", str(data), "--out", str(tmp_path / "text"), "--checkpoint", str(model),
                 "--algorithm", "ER**5", "--fallback-runs", "1", "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    assert "warning" in text and "phased" in text and "the better fit" in text
    assert main(["pipeline", str(data), "--out", str(tmp_path / "bad"), "--checkpoint", str(model),
                 "--fallback-runs", "-1", "--device", "cpu"]) != 0
    assert "fallback_runs must be 0" in capsys.readouterr().err
