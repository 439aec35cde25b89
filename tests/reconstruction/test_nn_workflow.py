"""Predict, refine, fine-tune and per-pattern optimisation through the workflow functions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reconstruction.errors import CheckpointError, InvalidDataError
from reconstruction.io import read_result, write_prepared
from reconstruction.io.types import DiffractionData
from reconstruction.nn import load_checkpoint, optimise_on_pattern, predict_objects
from reconstruction.nn.checkpoint import save_checkpoint
from reconstruction.nn.config import ModelConfig
from reconstruction.nn.model import PhaseNet
from reconstruction.nn.testing import ellipsoid_object
from reconstruction.nn.workflow import file_sha256, finetune_model, predict_file

TINY = ModelConfig(dims=3, input_size=16, output_size=8, width=2, depth=2)


@pytest.fixture()
def tiny_model(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "tiny.pt"
    save_checkpoint(path, PhaseNet(TINY), name="tiny-3d")
    return path


def _prepared(path, seed: int = 0):
    _, intensity = ellipsoid_object(16, seed=seed)
    mask = np.zeros(intensity.shape, bool)
    mask[8, 8, 9] = True
    write_prepared(path, DiffractionData(intensity=intensity, mask=mask))
    return path


def test_predict_writes_a_result_whose_chi2_matches_fourier_errors_recomputed(tmp_path, tiny_model):
    from reconstruction.metrics import fourier_errors, free_pixel_mask

    data = _prepared(tmp_path / "prepared.cxi")
    summary = predict_file(data, tmp_path / "pred.cxi", checkpoint_path=tiny_model, device="cpu")
    record = read_result(summary["out_path"])
    assert record.obj.shape == (16, 16, 16) and record.obj.dtype == np.complex64
    assert record.support.sum() > 0 and not record.support[:4].any()  # inside the half box
    again = fourier_errors(
        record.obj, record.intensity, mask=record.mask,
        free_mask=free_pixel_mask(record.mask, fraction=0.05, seed=0),
    )
    assert np.isclose(record.metrics["chi2"], again["chi2"], rtol=1e-5)
    assert np.isclose(summary["metrics"]["chi2_free"], again["chi2_free"], rtol=1e-5)
    assert record.provenance["model_sha256"] == load_checkpoint(tiny_model).weights_sha256
    assert summary["timings"]["predict"] > 0 and summary["curves"]["chi2"]


def test_refine_from_the_prediction_does_not_increase_chi2(tmp_path, tiny_model):
    from reconstruction.phasing.workflow import refine_file

    data = _prepared(tmp_path / "prepared.cxi")
    pred = predict_file(data, tmp_path / "pred.cxi", checkpoint_path=tiny_model, device="cpu")
    refined = refine_file(data, tmp_path / "refined.cxi", initial_path=pred["out_path"],
                          algorithm="ER**20", support_threshold=0.1, device="cpu")
    assert refined["metrics"]["chi2"] <= pred["metrics"]["chi2"] * (1 + 1e-6)


def test_a_pattern_of_the_wrong_size_is_refused_with_advice(tmp_path, tiny_model):
    _, intensity = ellipsoid_object(32, seed=0)
    model, _ = load_checkpoint(tiny_model)
    with pytest.raises(InvalidDataError, match="prepare it first"):
        predict_objects(model, intensity)


def test_predict_without_a_shipped_2d_model_says_how_to_get_one(tmp_path, monkeypatch):
    from reconstruction.nn import workflow

    monkeypatch.setattr(workflow, "MODELS_DIR", tmp_path)
    data = _prepared(tmp_path / "prepared.cxi")
    with pytest.raises(CheckpointError, match="train one"):
        predict_file(data, tmp_path / "pred.cxi", device="cpu")


def test_finetune_records_parent_and_pattern_sha256_and_lowers_the_loss(tmp_path, tiny_model):
    patterns = [_prepared(tmp_path / "a.cxi", seed=1), _prepared(tmp_path / "b.cxi", seed=2)]
    out = tmp_path / "ft.pt"
    summary = finetune_model(tiny_model, patterns, out, steps=12, lr=3e-3, batch_size=2,
                             device="cpu")
    model, payload = load_checkpoint(out)
    parent = load_checkpoint(tiny_model)
    assert payload["parent"] == {"name": "tiny-3d", "weights_sha256": parent.weights_sha256}
    assert payload["patterns_sha256"] == [file_sha256(p) for p in patterns]
    assert payload["weights_sha256"] != parent.weights_sha256
    assert summary["metrics"]["steps"] == 12
    assert summary["metrics"]["loss_after"] < summary["metrics"]["loss_before"]


def test_finetune_with_a_frozen_encoder_changes_only_the_decoders(tmp_path, tiny_model):
    out = tmp_path / "ft.pt"
    finetune_model(tiny_model, [_prepared(tmp_path / "a.cxi")], out, steps=3, lr=1e-2,
                   batch_size=2, freeze_encoder=True, augment=False, device="cpu")
    before, _ = load_checkpoint(tiny_model)
    after, _ = load_checkpoint(out)
    for (name, p0), p1 in zip(before.named_parameters(), after.parameters()):
        if name.startswith("encoder."):
            assert torch.equal(p0, p1), name
    assert not torch.equal(before.phase_decoder.head.weight, after.phase_decoder.head.weight)


def test_a_negative_number_of_per_pattern_steps_is_refused_before_anything_is_written(tmp_path, tiny_model):
    from reconstruction.errors import ConfigError

    data = _prepared(tmp_path / "prepared.cxi")
    with pytest.raises(ConfigError, match="steps >= 0"):
        predict_file(data, tmp_path / "out.cxi", checkpoint_path=tiny_model, optimise_steps=-3, device="cpu")
    with pytest.raises(ConfigError, match="learning rate > 0"):
        predict_file(data, tmp_path / "out.cxi", checkpoint_path=tiny_model, optimise_steps=5, optimise_lr=0.0,
                     device="cpu")
    assert not (tmp_path / "out.cxi").exists()


def test_per_pattern_optimisation_lowers_the_loss_on_that_pattern():
    torch.manual_seed(0)
    model = PhaseNet(TINY)
    _, intensity = ellipsoid_object(16, seed=5)
    tuned, info = optimise_on_pattern(model, intensity, steps=15, lr=3e-3, from_scratch=True)
    assert len(info["loss"]) == 15
    assert np.mean(info["loss"][-3:]) < info["loss"][0]


def test_per_pattern_optimisation_on_the_cpu_doubles_the_batch_without_changing_the_result(monkeypatch):
    """The pattern goes in twice per CPU batch (a faster convolution path): the same losses and
    weights as a batch of one, step for step (from given weights, BatchNorm frozen)."""
    from reconstruction.nn import predict

    _, intensity = ellipsoid_object(16, seed=5)
    runs = {}
    for copies in (1, predict.CPU_BATCH_COPIES):
        monkeypatch.setattr(predict, "CPU_BATCH_COPIES", copies)
        torch.manual_seed(0)
        runs[copies] = optimise_on_pattern(PhaseNet(TINY), intensity, steps=6, lr=3e-3)
    (one, info1), (two, info2) = runs[1], runs[predict.CPU_BATCH_COPIES]
    assert predict.CPU_BATCH_COPIES == 2 and len(info1["loss"]) == len(info2["loss"]) == 6
    np.testing.assert_allclose(info2["loss"], info1["loss"], rtol=1e-5)
    for a, b in zip(one.state_dict().values(), two.state_dict().values()):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-6)


def test_pipeline_prepares_predicts_and_refines_a_raw_file(tmp_path, tiny_model):
    from reconstruction.nn.workflow import pipeline_file

    _, intensity = ellipsoid_object(32, seed=6, radius_frac=0.08)
    raw = tmp_path / "raw.npy"
    np.save(raw, intensity)
    summary = pipeline_file(raw, tmp_path / "out", checkpoint_path=tiny_model, shape=16,
                            refine_algorithm="ER**10", device="cpu")
    for name in ("prepared.cxi", "predicted.cxi", "refined.cxi"):
        assert (tmp_path / "out" / name).is_file()
    assert summary["metrics"]["chi2"] <= summary["predicted"]["metrics"]["chi2"] * (1 + 1e-6)
    refined = read_result(summary["out_path"])
    assert "initial_chi2" in refined.curves and "chi2" in refined.curves
    predicted = read_result(tmp_path / "out" / "predicted.cxi")
    assert predicted.config["flips"] == 4 and predicted.algorithm.endswith("×4flips")  # the default


def test_the_pipeline_refinement_can_model_partial_coherence(tmp_path, tiny_model, capsys):
    import json

    from reconstruction.cli import main

    data = _prepared(tmp_path / "prepared.cxi")
    assert main(["pipeline", str(data), "--out", str(tmp_path / "pipe"), "--checkpoint",
                 str(tiny_model), "--algorithm", "ER**20", "--psf", "gaussian,0.8,2",
                 "--device", "cpu", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    refined = read_result(summary["out_path"])
    assert refined.arrays["psf"].shape == refined.obj.shape and "--psf gaussian,0.8,2" in refined.command
    assert summary["metrics"]["psf_fwhm_px"] > 0 and summary["refined"]["config"]["psf_updates"] > 0
    assert "psf" not in read_result(summary["predicted_path"]).arrays  # the network's own result


def test_a_mirrored_pattern_is_the_diffraction_of_the_mirrored_object():
    from reconstruction.fourier import farfield
    from reconstruction.nn.predict import flip_centred

    obj, _ = ellipsoid_object(16, seed=3)
    obj = obj * np.exp(1j * np.indices(obj.shape)[2] / 3.0)  # not symmetric
    for axes in ((0,), (1, 2), (0, 1, 2)):
        assert np.allclose(np.abs(farfield(flip_centred(obj, axes))), flip_centred(np.abs(farfield(obj)), axes), atol=1e-5)
        assert np.array_equal(flip_centred(flip_centred(obj, axes), axes), obj)  # an involution


def test_averaged_prediction_of_one_view_is_the_plain_prediction_and_more_views_fit_the_data(tiny_model):
    from reconstruction.errors import ConfigError
    from reconstruction.metrics import fourier_errors
    from reconstruction.nn import predict_averaged

    model, _ = load_checkpoint(tiny_model)
    _, intensity = ellipsoid_object(16, seed=1)
    plain, plain_support = predict_objects(model, intensity)
    one, one_support = predict_averaged(model, intensity, flips=1)
    assert np.allclose(one, plain[0], atol=1e-4 * np.abs(plain).max())  # the rescale differs by the root's EPS
    assert np.array_equal(one_support, plain_support[0])
    for flips in (4, 8):
        obj, support = predict_averaged(model, intensity, flips=flips)
        assert obj.shape == intensity.shape and support.any() and np.isfinite(obj).all()
        assert fourier_errors(obj, intensity)["scale"] == pytest.approx(1.0, rel=1e-3)  # scaled to the data
    with pytest.raises(ConfigError, match="flips must be 1, 4 or 8"):
        predict_averaged(model, intensity, flips=3)


def test_refine_and_pipeline_update_the_predicted_support_unless_told_not_to(tmp_path, tiny_model,
                                                                           capsys):
    """By default (or with ``--shrinkwrap``) the seeded run reshapes the prediction's support by
    shrink-wrap; with ``--no-shrinkwrap`` the support stays the prediction's. In this 16³ box
    an update may also be refused (more than half the box): shrink-wrap ran either way."""
    import json

    from reconstruction.cli import main

    data = _prepared(tmp_path / "prepared.cxi")
    pred = predict_file(data, tmp_path / "pred.cxi", checkpoint_path=tiny_model, device="cpu")
    reshaped = {}
    for flag in ([], ["--shrinkwrap"], ["--no-shrinkwrap"]):
        out = tmp_path / f"refined{'-'.join(flag)}.cxi"
        assert main(["refine", str(data), "--initial", pred["out_path"], "--out", str(out),
                     "--algorithm", "HIO**30,ER**10", "--device", "cpu", "--json", *flag]) == 0
        summary = json.loads(capsys.readouterr().out)
        reshaped[" ".join(flag)] = (np.ptp(read_result(out).curves["support_fraction"]) > 0
                                    or summary["config"]["shrinkwrap_refused"] > 0)
        assert (summary["config"]["shrinkwrap"] is None) == (flag == ["--no-shrinkwrap"])
        assert summary["metrics"]["chi2"] <= pred["metrics"]["chi2"] * (1 + 1e-6)
    assert reshaped == {"": True, "--shrinkwrap": True, "--no-shrinkwrap": False}
    for flag, updated in (([], True), (["--no-shrinkwrap"], False)):
        assert main(["pipeline", str(data), "--out", str(tmp_path / f"pipe{len(flag)}"),
                     "--checkpoint", str(tiny_model), "--algorithm", "HIO**30,ER**10", *flag,
                     "--device", "cpu", "--json"]) == 0
        piped = json.loads(capsys.readouterr().out)
        assert (np.ptp(read_result(piped["out_path"]).curves["support_fraction"]) > 0
                or piped["refined"]["config"]["shrinkwrap_refused"] > 0) is updated
