"""align_to_reference: a shifted, twinned, phase-offset, ramped copy aligns back onto the original."""

from __future__ import annotations

import numpy as np
import pytest

from reconstruction.errors import InvalidDataError
from reconstruction.metrics import align_to_reference, fourier_shift, twin_of


def _crystal(n: int = 32) -> np.ndarray:
    """An asymmetric complex crystal (not its own twin): an off-centre blob plus a wing."""
    z, y, x = np.mgrid[:n, :n, :n] - n // 2
    amp = np.clip(7 - np.sqrt((x - 1) ** 2 + (y / 0.8) ** 2 + (z / 0.9) ** 2), 0, 1)
    amp += 0.6 * np.clip(3 - np.sqrt((x - 6) ** 2 + (y - 3) ** 2 + z**2), 0, 1)
    phase = 0.8 * np.cos(x / 4.0) + 0.4 * (y / 8.0) ** 2 + 0.3 * np.sin(z / 3.0 + 0.5)
    return amp * np.exp(1j * phase)


def test_shifted_twinned_phase_offset_copy_aligns_back_below_1e_3():
    ref = _crystal()
    moving = fourier_shift(twin_of(ref), (3, -2, 1)) * np.exp(1.1j)
    aligned, support, info = align_to_reference(moving, ref, support=np.abs(moving) > 0.1)
    assert np.linalg.norm(aligned - ref) / np.linalg.norm(ref) < 1e-3
    assert info["twin"] is True
    assert abs(info["phase_offset_rad"]) == pytest.approx(1.1, abs=1e-6)
    assert info["rel_error"] < 1e-3
    np.testing.assert_array_equal(support, np.abs(ref) > 0.1)


def test_sub_voxel_shift_and_phase_ramp_are_removed():
    ref = _crystal()
    grid = np.indices(ref.shape, dtype=float) - 16
    ramp = np.exp(1j * (0.05 * grid[2] - 0.03 * grid[0]))
    moving = fourier_shift(ref * ramp, (1.25, -0.5, 2.0)) * np.exp(-0.7j)
    aligned, _, info = align_to_reference(moving, ref)
    assert info["twin"] is False
    assert info["shift_px"] == pytest.approx([-1.25, 0.5, -2.0], abs=1e-6)
    assert np.linalg.norm(aligned - ref) / np.linalg.norm(ref) < 1e-3


def test_aligning_objects_of_different_shapes_says_so():
    with pytest.raises(InvalidDataError, match="cannot align an object of shape"):
        align_to_reference(np.ones((8, 8, 8), complex), np.ones((8, 8, 6), complex))
