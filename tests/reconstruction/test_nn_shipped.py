"""The shipped default model loads offline and predicts held-out simulated crystals sensibly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reconstruction.nn import default_checkpoint_path, load_checkpoint, predict_objects
from reconstruction.nn.testing import object_ssim
from reconstruction.nn.workflow import HELD_OUT_SEED

# Amplitude SSIM inside the object's bounding box (``object_ssim``; the whole-box SSIM is
# dominated by the empty background: an all-zero object scores ~0.93 there). On these 6 held-out
# patterns the shipped model scores a median of ~0.72; an empty object scores <= 0.33 and a
# centred ball of the right size 0.51, so 0.6 separates "learned something" from trivial guesses.
MIN_MEDIAN_OBJECT_SSIM = 0.6
N_PATTERNS = 6


@pytest.fixture(scope="module")
def shipped():
    path = default_checkpoint_path(3)
    if not path.is_file():
        pytest.skip("no shipped default model in reconstruction/nn/models/")
    return load_checkpoint(path)


def test_the_shipped_model_is_small_and_describes_its_training(shipped):
    path = default_checkpoint_path(3)
    assert path.stat().st_size < 20 * 1024 * 1024
    assert shipped.config["input_size"] == 64 and shipped.config["dims"] == 3
    assert shipped.recipe["simulation"]["kind"] == "mixed"
    assert shipped.history["val_loss"] and shipped.metrics["epochs_run"] >= 1


def test_the_shipped_model_predicts_held_out_simulated_crystals_with_a_sane_ssim(shipped):
    from reconstruction.metrics import compare_to_truth
    from reconstruction.simulate import Recipe, SimulatedDataset

    torch.set_num_threads(2)
    data = SimulatedDataset(Recipe(kind="mixed", shape=64, dims=3), N_PATTERNS, HELD_OUT_SEED)
    items = [data[i] for i in range(N_PATTERNS)]
    intensity = np.stack([it["intensity"][0].numpy() for it in items])
    mask = np.stack([it["mask"][0].numpy() for it in items])
    obj, support = predict_objects(shipped.model, intensity, mask, batch_size=N_PATTERNS)
    assert obj.shape == (N_PATTERNS, 64, 64, 64) and support.any(axis=(1, 2, 3)).all()
    ssim = []
    for it, o in zip(items, obj):
        truth = it["amplitude"][0].numpy() * np.exp(1j * it["phase"][0].numpy())
        ssim.append(object_ssim(compare_to_truth(o, truth)["aligned"], truth))
    assert np.median(ssim) >= MIN_MEDIAN_OBJECT_SSIM, ssim
