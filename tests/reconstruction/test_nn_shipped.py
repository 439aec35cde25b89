"""The shipped default model loads offline and predicts held-out simulated crystals sensibly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reconstruction.nn import default_checkpoint_path, load_checkpoint, predict_objects
from reconstruction.nn.workflow import HELD_OUT_SEED

# Held-out median amplitude SSIM of the shipped model is recorded in docs/network.md; this bound
# sits well below it so that the test fails on a broken model (an all-zero or random object
# scores < 0.3), not on the spread of 4 patterns.
MIN_MEDIAN_SSIM = 0.5


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
    data = SimulatedDataset(Recipe(kind="mixed", shape=64, dims=3), 4, HELD_OUT_SEED)
    items = [data[i] for i in range(4)]
    intensity = np.stack([it["intensity"][0].numpy() for it in items])
    mask = np.stack([it["mask"][0].numpy() for it in items])
    obj, support = predict_objects(shipped.model, intensity, mask, batch_size=4)
    assert obj.shape == (4, 64, 64, 64) and support.any(axis=(1, 2, 3)).all()
    ssim = []
    for it, o in zip(items, obj):
        truth = it["amplitude"][0].numpy() * np.exp(1j * it["phase"][0].numpy())
        ssim.append(compare_to_truth(o, truth)["ssim"])
    assert np.median(ssim) >= MIN_MEDIAN_SSIM, ssim
