"""The network, its physics layer, checkpoints, augmentation and a few training steps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reconstruction.errors import CheckpointError, ConfigError
from reconstruction.fourier import farfield
from reconstruction.nn.augment import (
    AugmentedPatterns,
    augment_pattern,
    centred_flip,
    centred_rot90,
)
from reconstruction.nn.checkpoint import load_checkpoint, save_checkpoint, weights_sha256
from reconstruction.nn.config import ModelConfig, get_recipe
from reconstruction.nn.model import PhaseNet
from reconstruction.nn.physics import (
    amplitude_loss,
    assemble_object,
    farfield_amplitude,
    network_input,
    pad_to_box,
    supervised_loss,
    twin_truth,
)
from reconstruction.nn.testing import EllipsoidPatterns, ellipsoid_object
from reconstruction.nn.train import CachedItems, NetworkItems, batch_loss, evaluate, fit

TINY = ModelConfig(dims=3, input_size=16, output_size=8, width=2, depth=2)


def test_both_decoders_return_the_half_box_and_padding_fills_the_input_box():
    model = PhaseNet(TINY)
    with torch.no_grad():
        amp, phase = model(torch.rand(2, 1, 16, 16, 16))
    assert amp.shape == phase.shape == (2, 1, 8, 8, 8)
    assert float(amp.min()) >= 0.0 and float(amp.max()) <= 1.0
    assert float(phase.abs().max()) <= np.pi
    obj = assemble_object(amp, phase, box=16, soft_width=None, threshold=0.0)
    assert obj.shape == (2, 1, 16, 16, 16) and obj.dtype == torch.complex64
    # the zero padding is the support: nothing outside the central 8^3 (indices 4..11)
    outside = obj.abs().clone()
    outside[..., 4:12, 4:12, 4:12] = 0
    assert float(outside.max()) == 0.0
    assert float(obj[..., 4:12, 4:12, 4:12].abs().min()) > 0.0


def test_padding_keeps_the_centre_index_on_the_centre():
    x = torch.zeros(1, 1, 8, 8)
    x[0, 0, 4, 4] = 1.0
    assert pad_to_box(x, 16)[0, 0, 8, 8] == 1.0


def test_the_2d_variant_runs_and_predicts_2d_objects():
    model = PhaseNet(ModelConfig(dims=2, input_size=32, output_size=16, width=2, depth=2))
    amp, phase = model(torch.rand(3, 1, 32, 32))
    assert amp.shape == phase.shape == (3, 1, 16, 16)


def test_config_refuses_an_output_that_is_not_half_the_input():
    with pytest.raises(ConfigError):
        ModelConfig(input_size=64, output_size=40)


def test_loss_is_zero_for_the_exact_object_and_positive_otherwise():
    obj, intensity = ellipsoid_object(16, seed=1)
    measured = torch.sqrt(torch.from_numpy(intensity))[None, None]
    exact = torch.from_numpy(np.abs(farfield(obj)).astype(np.float32))[None, None]
    assert float(amplitude_loss(exact * 37.0, measured)[0]) < 1e-5  # any scale
    t = torch.from_numpy(obj)[None, None]
    assert float(amplitude_loss(farfield_amplitude(t), measured)[0]) < 1e-3
    without_phase = np.abs(farfield(np.abs(obj))).astype(np.float32)
    wrong = torch.from_numpy(without_phase)[None, None]
    assert float(amplitude_loss(wrong, measured)[0]) > 0.01
    for kind in ("mae", "chi2_pearson"):
        assert float(amplitude_loss(exact, measured, kind=kind)[0]) < 1e-5
        assert float(amplitude_loss(exact.flip(-1) + 1.0, measured, kind=kind)[0]) > 1e-3


def test_masked_pixels_do_not_contribute_to_the_loss():
    rng = np.random.default_rng(0)
    calc = torch.from_numpy(rng.random((1, 1, 16, 16, 16)).astype(np.float32))
    measured = torch.from_numpy(rng.random((1, 1, 16, 16, 16)).astype(np.float32))
    mask = torch.from_numpy(rng.random((1, 1, 16, 16, 16)) < 0.2)
    changed = measured.clone()
    changed[mask] = 1e6
    for kind in ("mae", "chi2_pearson"):
        a = amplitude_loss(calc, measured, mask, kind=kind)
        b = amplitude_loss(calc, changed, mask, kind=kind)
        assert torch.allclose(a, b, rtol=1e-6)
        assert not torch.allclose(a, amplitude_loss(calc, changed, None, kind=kind))


def test_network_input_is_the_masked_amplitude_divided_by_its_maximum():
    intensity = torch.tensor([[[4.0, 16.0, 100.0]]])[None]
    mask = torch.tensor([[[False, False, True]]])[None]
    x = network_input(intensity, mask)
    assert torch.allclose(x, torch.tensor([[[[0.5, 1.0, 0.0]]]]))


def test_centred_flip_and_rotation_keep_the_zero_frequency_in_place():
    x = np.zeros((8, 8, 8))
    x[4, 4, 4] = 1.0
    x[5, 4, 4] = 2.0
    f = centred_flip(x, 0)
    assert f[4, 4, 4] == 1.0 and f[3, 4, 4] == 2.0
    r = centred_rot90(x, (0, 1))
    assert r[4, 4, 4] == 1.0 and np.count_nonzero(r == 2.0) == 1
    assert np.argwhere(r == 2.0)[0].tolist() in ([4, 3, 4], [4, 5, 4])


def test_flipped_pattern_is_the_pattern_of_the_flipped_object():
    obj, intensity = ellipsoid_object(16, seed=3)
    flipped_obj = centred_flip(obj, 1)
    expected = np.abs(farfield(flipped_obj)) ** 2
    expected = expected / expected.sum() * 1e6
    assert np.allclose(centred_flip(intensity, 1), expected, rtol=1e-3, atol=1e-2)


def test_augmented_patterns_keep_shape_masking_and_determinism():
    _, intensity = ellipsoid_object(16, seed=4)
    mask = np.zeros_like(intensity, bool)
    mask[0] = True
    rng = np.random.default_rng(0)
    for _ in range(5):
        i2, m2 = augment_pattern(intensity, mask, rng)
        assert i2.shape == intensity.shape and m2.shape == mask.shape
        assert np.all(i2[m2] == 0) and np.all(i2 >= 0)
    data = AugmentedPatterns([(intensity, mask)], 4, seed=7)
    assert torch.equal(data[2]["intensity"], data[2]["intensity"])
    assert data[2]["intensity"].shape == (1, 16, 16, 16)


def test_checkpoint_round_trip_keeps_weights_and_description(tmp_path):
    model = PhaseNet(TINY)
    path = tmp_path / "m.pt"
    saved = save_checkpoint(
        path,
        model,
        name="tiny",
        recipe={"kind": "ellipsoids"},
        history={"train_loss": [1.0, 0.5]},
        metrics={"best_val_loss": 0.5},
    )
    loaded, payload = load_checkpoint(path)
    assert payload["weights_sha256"] == saved["weights_sha256"]
    assert payload["config"] == TINY.to_dict() and payload["recipe"] == {"kind": "ellipsoids"}
    assert payload["history"]["train_loss"] == [1.0, 0.5] and payload["code_version"]
    assert weights_sha256(loaded.state_dict()) == saved["weights_sha256"]
    x = torch.rand(2, 1, 16, 16, 16)
    model.eval()
    assert torch.equal(model(x)[0], loaded(x)[0])


def test_every_bad_checkpoint_raises_a_clear_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="not a model checkpoint"):
        load_checkpoint(junk)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(CheckpointError, match="not a model checkpoint"):
        load_checkpoint(other)
    good = tmp_path / "good.pt"
    payload = save_checkpoint(good, PhaseNet(TINY), name="tiny")
    tampered = dict(payload)
    tampered["state_dict"] = {k: v.clone() for k, v in payload["state_dict"].items()}
    next(iter(tampered["state_dict"].values())).add_(1.0)
    torch.save(tampered, tmp_path / "tampered.pt")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(tmp_path / "tampered.pt")
    newer = dict(payload, config={**payload["config"], "attention_heads": 4})
    torch.save(newer, tmp_path / "newer.pt")
    with pytest.raises(CheckpointError, match="incompatible model config"):
        load_checkpoint(tmp_path / "newer.pt")
    mismatch = dict(payload, config={**payload["config"], "width": 3})
    torch.save(mismatch, tmp_path / "mismatch.pt")
    with pytest.raises(CheckpointError, match="do not fit"):
        load_checkpoint(tmp_path / "mismatch.pt")
    with pytest.raises(CheckpointError, match="2D model was asked"):
        load_checkpoint(good, dims=2)


def test_a_few_training_steps_decrease_the_loss():
    torch.manual_seed(0)
    recipe = get_recipe(
        "tiny", width=4, epochs=12, n_train=8, batch_size=4, lr=3e-3, threshold_ramp_epochs=0
    )
    model = PhaseNet(recipe.model_config())
    data = CachedItems(NetworkItems(EllipsoidPatterns(8, 16, seed=0)))
    before = evaluate(model, data, recipe=recipe, device=torch.device("cpu"))
    result = fit(model, data, None, recipe=recipe, device=torch.device("cpu"))
    after = evaluate(model, data, recipe=recipe, device=torch.device("cpu"))
    assert result.steps == 24
    assert after < 0.8 * before, (before, after, result.history["train_loss"])


def test_bf16_autocast_loss_matches_float32_and_training_records_its_precision(monkeypatch):
    monkeypatch.delenv("CDI_CPU_BF16", raising=False)
    recipe = get_recipe("tiny", width=4, epochs=1, n_train=4, batch_size=4)
    torch.manual_seed(0)
    model = PhaseNet(recipe.model_config())
    data = CachedItems(NetworkItems(EllipsoidPatterns(4, 16, seed=0)))
    batch = {k: torch.stack([data[i][k] for i in range(4)]) for k in data[0]}
    cpu = torch.device("cpu")
    with torch.no_grad():
        full, half = (
            batch_loss(model, batch, recipe=recipe, threshold=0.1, device=cpu, mixed_precision=m)
            for m in (False, True)
        )
    assert abs(float(half) - float(full)) < 0.02 * float(full)
    assert fit(model, data, None, recipe=recipe, device=cpu).mixed_precision is False


@pytest.mark.parametrize("opted_in", [False, True])
def test_a_nan_loss_stops_training_with_a_message_naming_cpu_bf16_when_on(monkeypatch, opted_in):
    import reconstruction.nn.train as train_module

    monkeypatch.setenv("CDI_CPU_BF16", "1" if opted_in else "0")
    monkeypatch.setattr(
        train_module, "batch_loss", lambda *a, **k: torch.tensor(float("nan"), requires_grad=True)
    )
    recipe = get_recipe("tiny", epochs=1, n_train=4)
    model = PhaseNet(recipe.model_config())
    data = NetworkItems(EllipsoidPatterns(4, 16))
    with pytest.raises(FloatingPointError, match="training loss became nan at epoch 0") as err:
        fit(model, data, None, recipe=recipe, device=torch.device("cpu"))
    assert ("CDI_CPU_BF16" in str(err.value)) is opted_in


def test_hybrid_loss_trains_with_truths():
    recipe = get_recipe("tiny", loss="hybrid", epochs=1, n_train=4)
    model = PhaseNet(recipe.model_config())
    data = NetworkItems(EllipsoidPatterns(4, 16), truths=True)
    assert "amplitude" in data[0]
    result = fit(model, data, None, recipe=recipe, device=torch.device("cpu"))
    assert np.isfinite(result.history["train_loss"][0])


def _asymmetric_object(n: int, dims: int) -> np.ndarray:
    """A centred, non-centrosymmetric object (ellipsoid + off-centre lobe, phase with an even part)."""
    grid = np.indices((n,) * dims, dtype=float) - n // 2
    r2 = sum((g / (a * n)) ** 2 for g, a in zip(grid, (0.18, 0.14, 0.2)[:dims], strict=True))
    lobe = sum((g - s * n) ** 2 for g, s in zip(grid, (0.12, -0.06, 0.05)[:dims], strict=True))
    amp = (r2 < 1).astype(float) + 0.6 * np.exp(-lobe / (0.05 * n) ** 2)
    phase = 1.2 * np.cos(grid[0] / n * 6) + 0.8 * grid[-1] / n * 4
    return (amp * np.exp(1j * phase) * (amp > 0.05)).astype(np.complex64)


@pytest.mark.parametrize("dims", [2, 3])
def test_the_supervised_loss_cannot_tell_the_twin_it_is_not_the_truth(dims):
    n = 32 if dims == 3 else 64
    obj = _asymmetric_object(n, dims)
    amp = torch.from_numpy(np.abs(obj))[None, None].float()
    phase = torch.from_numpy(np.angle(obj))[None, None].float()
    twin_amp, twin_phase = twin_truth(amp, phase)
    twin = (twin_amp * torch.exp(1j * twin_phase))[0, 0].numpy()
    # the twin diffracts exactly like the object, and is a different object
    np.testing.assert_allclose(
        np.abs(farfield(twin)), np.abs(farfield(obj)), atol=1e-4 * np.abs(farfield(obj)).max()
    )
    assert np.abs(twin - obj).max() > 0.5
    half = (slice(None), slice(None)) + (slice(n // 4, n // 4 + n // 2),) * dims
    for pred_amp, pred_phase in ((amp, phase), (twin_amp, twin_phase)):
        loss = supervised_loss(pred_amp[half], pred_phase[half], amp, phase)
        assert float(loss) < 1e-6
    # the average of the two, which a twin-blind loss would reward, scores worse than either
    mean = 0.5 * (amp * torch.exp(1j * phase) + twin_amp * torch.exp(1j * twin_phase))
    hedge = supervised_loss(mean.abs()[half], mean.angle()[half], amp, phase)
    assert float(hedge) > 0.05


def test_a_checkpoint_with_arbitrary_objects_is_refused_without_advising_to_run_its_code(tmp_path):
    from fractions import Fraction  # any class outside torch's allow-list needs weights_only=False

    hostile = tmp_path / "hostile.pt"
    torch.save({"format": "x", "obj": Fraction(1, 3)}, hostile)
    with pytest.raises(CheckpointError, match="not a model checkpoint") as info:
        load_checkpoint(hostile)
    assert "weights_only" not in str(info.value) and "could run code" in str(info.value)
    random = tmp_path / "random.pt"
    random.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint archive"):
        load_checkpoint(random)


@pytest.mark.parametrize("batch", [1, 3])
def test_cpu_prediction_in_channels_last_format_gives_the_same_outputs(batch):
    """The CPU path converts a 3D model to channels-last (faster oneDNN convolutions); the
    outputs and the weights' hash are those of the plain model."""
    from reconstruction.nn.predict import _forward

    torch.manual_seed(0)
    model = PhaseNet(TINY).eval()
    x = torch.rand(batch, 1, 16, 16, 16)
    sha = weights_sha256(model.state_dict())
    with torch.no_grad():
        ref_amp, ref_phase = model(x if batch > 1 else torch.cat([x, x]))
        amp, phase = _forward(model, x)
    conv_weights = [p for p in model.parameters() if p.dim() == 5]
    assert conv_weights and all(
        w.is_contiguous(memory_format=torch.channels_last_3d) for w in conv_weights
    )
    assert torch.allclose(amp, ref_amp[:batch], atol=1e-5)
    assert torch.allclose(phase, ref_phase[:batch], atol=1e-4)
    assert weights_sha256(model.state_dict()) == sha
