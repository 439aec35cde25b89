"""Mode decomposition of aligned runs (the first mode's weight, as PyNX reports it)."""

from __future__ import annotations

import numpy as np
import pytest

from reconstruction.errors import InvalidDataError
from reconstruction.metrics import mode_decomposition


def _crystal(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z, y, x = np.indices((16, 16, 16)) - 8
    amp = ((x / 5.0) ** 2 + (y / 4.0) ** 2 + (z / 3.0) ** 2 < 1).astype(float)
    return amp * np.exp(1j * (0.3 * x + rng.normal(0, 0.05, amp.shape)))


def test_identical_runs_are_one_mode_whatever_their_brightness():
    obj = _crystal()
    out = mode_decomposition(np.stack([obj, 3 * obj, 0.5 * obj]))
    assert out["weights"] == pytest.approx([1.0, 0.0, 0.0], abs=1e-9)
    overlap = abs(np.vdot(out["modes"][0], obj)) / np.linalg.norm(obj)
    assert overlap == pytest.approx(1.0, abs=1e-9)


def test_two_orthogonal_objects_share_the_weight_and_noise_lowers_the_first_mode():
    a = _crystal()
    b = np.roll(a, 8, axis=2) * (np.abs(np.roll(a, 8, axis=2)) > 0) * (np.abs(a) == 0)  # disjoint
    out = mode_decomposition(np.stack([a / np.linalg.norm(a), b / np.linalg.norm(b)]))
    assert out["weights"] == pytest.approx([0.5, 0.5], abs=1e-9)
    rng = np.random.default_rng(1)
    weights = []
    for noise in (0.05, 0.2, 0.5):
        runs = [a + noise * np.abs(a).max() * (rng.normal(size=a.shape) + 1j * rng.normal(size=a.shape)) * (np.abs(a) > 0)
                for _ in range(4)]  # fmt: skip
        weights.append(mode_decomposition(np.stack(runs))["weights"][0])
    assert weights[0] > 0.99 and weights[0] > weights[1] > weights[2] > 0.25
    with pytest.raises(InvalidDataError, match="all zero"):
        mode_decomposition(np.stack([a, np.zeros_like(a)]))


def test_phasing_with_kept_runs_reports_the_first_mode_weight():
    from reconstruction.fourier import intensity_of
    from reconstruction.phasing import phase_retrieve

    obj = np.zeros((32, 32, 32), complex)
    obj[8:24, 8:24, 8:24] = _crystal()
    intensity = intensity_of(obj) * 1e6 / np.abs(obj).sum() ** 2
    res = phase_retrieve(intensity, algorithm="ER**10,HIO**40,ER**20", n_cycles=1, runs=3, keep=2, seed=0)
    assert 0.3 < res.metrics["mode1_fraction"] <= 1.0
    single = phase_retrieve(intensity, algorithm="ER**5", n_cycles=1, runs=1, seed=0)
    assert "mode1_fraction" not in single.metrics
