"""The shipped default models (3D and 2D) load offline and predict held-out simulated objects sensibly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reconstruction.nn import default_checkpoint_path, load_checkpoint, predict_objects
from reconstruction.nn.testing import object_ssim
from reconstruction.nn.workflow import HELD_OUT_SEED

# Amplitude SSIM inside the object's bounding box (``object_ssim``; the whole-box SSIM is
# dominated by the empty background: an all-zero object scores ~0.93 there). On these 6 held-out
# 3D patterns the shipped model scores a median of ~0.72; an empty object scores <= 0.33 and a
# centred ball of the right size 0.51, so 0.6 separates "learned something" from trivial guesses.
# The 2D model scores a median of 0.93 on its 6 (0.854 over 100 held-out patterns, docs/network.md).
MIN_MEDIAN_OBJECT_SSIM = {3: 0.6, 2: 0.75}
N_PATTERNS = 6


@pytest.fixture(scope="module", params=[3, 2], ids=["3d", "2d"])
def shipped(request):
    dims = request.param
    path = default_checkpoint_path(dims)
    if not path.is_file():
        pytest.skip(f"no shipped default {dims}D model in reconstruction/nn/models/")
    return dims, load_checkpoint(path)


def test_the_shipped_model_is_small_and_describes_its_training(shipped):
    dims, model = shipped
    path = default_checkpoint_path(dims)
    assert path.stat().st_size < 20 * 1024 * 1024
    assert model.config["input_size"] == 64 and model.config["dims"] == dims
    assert model.recipe["simulation"]["kind"] == "mixed"
    assert model.history["val_loss"] and model.metrics["epochs_run"] >= 1


def test_the_shipped_model_predicts_held_out_simulated_objects_with_a_sane_ssim(shipped):
    from reconstruction.metrics import compare_to_truth
    from reconstruction.simulate import Recipe, SimulatedDataset

    dims, model = shipped
    torch.set_num_threads(2)
    data = SimulatedDataset(Recipe(kind="mixed", shape=64, dims=dims), N_PATTERNS, HELD_OUT_SEED)
    items = [data[i] for i in range(N_PATTERNS)]
    intensity = np.stack([it["intensity"][0].numpy() for it in items])
    mask = np.stack([it["mask"][0].numpy() for it in items])
    obj, support = predict_objects(model.model, intensity, mask, batch_size=N_PATTERNS)
    assert obj.shape == (N_PATTERNS,) + (64,) * dims
    assert support.reshape(N_PATTERNS, -1).any(axis=1).all()
    ssim = []
    for it, o in zip(items, obj):
        truth = it["amplitude"][0].numpy() * np.exp(1j * it["phase"][0].numpy())
        ssim.append(object_ssim(compare_to_truth(o, truth)["aligned"], truth))
    assert np.median(ssim) >= MIN_MEDIAN_OBJECT_SSIM[dims], ssim
