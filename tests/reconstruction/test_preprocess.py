"""Preprocessing against analytic truth: peak, oversampling, masked binning, centred preparation."""

from __future__ import annotations

import numpy as np
import pytest

from reconstruction.errors import ConfigError, NotAVolumeError
from reconstruction.fourier import intensity_of
from reconstruction.io.types import DiffractionData
from reconstruction.preprocess import (
    bin_factors,
    bin_masked,
    crop_pad,
    estimate_oversampling,
    find_peak,
    friedel_centre,
    prepare,
    resolve_peak_method,
)


def _box(n, width, ndim=3):
    obj = np.zeros((n,) * ndim)
    c = n // 2
    obj[tuple(slice(c - width // 2, c - width // 2 + width) for _ in range(ndim))] = 1.0
    return obj


def _forward_pattern_behind_a_beamstop(n=128, centre=(61, 67), seed=3):
    """Poisson counts of a real object (Friedel-symmetric) with its zero frequency at ``centre``
    and a beamstop of radius 5 pixels masking it, offset so its edge is the brightest pixel."""
    rng = np.random.default_rng(seed)
    obj = np.zeros((n, n))
    grid = np.indices((n, n)) - n // 2
    scale = n / 128  # the same oversampling (about 3) at every size
    for _ in range(12):  # a sparse object of discs
        cy, cx = scale * rng.integers(-20, 21, size=2)
        obj[(grid[0] - cy) ** 2 + (grid[1] - cx) ** 2 <= (scale * rng.integers(2, 6)) ** 2] = 1.0
    intensity = intensity_of(obj)  # zero frequency at n // 2
    intensity = np.roll(intensity, (centre[0] - n // 2, centre[1] - n // 2), axis=(0, 1))
    intensity = rng.poisson(intensity / intensity.max() * 1e6).astype(np.float64)
    yy, xx = np.indices((n, n))
    mask = (yy - centre[0] - 2) ** 2 + (xx - centre[1]) ** 2 <= 5**2  # beamstop a bit off
    return intensity, mask


def test_the_centre_of_a_forward_pattern_behind_a_beamstop_is_its_friedel_centre():
    intensity, mask = _forward_pattern_behind_a_beamstop()
    brightest = find_peak(intensity, mask, method="max")
    assert brightest != (61, 67)  # at the beamstop's edge
    assert resolve_peak_method(intensity, mask) == "friedel"
    assert friedel_centre(intensity, mask) == (61, 67)
    assert find_peak(intensity, mask, method="auto") == (61, 67)
    # a frame larger than the search crop (512²): the crop is placed around the brightest pixel
    big, big_mask = _forward_pattern_behind_a_beamstop(n=1024, centre=(600, 420))
    assert friedel_centre(big, big_mask) == (600, 420)
    # without a mask next to it the brightest pixel is the centre (Bragg peaks)
    assert resolve_peak_method(intensity, None) == "max"
    assert find_peak(intensity, None, method="auto") == (61, 67)


def test_prepare_puts_the_friedel_centre_at_n_over_2_and_records_it():
    intensity, mask = _forward_pattern_behind_a_beamstop()
    out = prepare(DiffractionData(intensity=intensity, mask=mask), shape=64, oversampling=None)
    assert [st["method"] for st in out.provenance.steps if st["step"] == "find_peak"] == ["friedel"]
    assert out.metadata.extra["peak_position"] == [61, 67]
    flipped = np.roll(out.intensity[::-1, ::-1], (1, 1), axis=(0, 1))  # q -> -q about index 32
    valid = ~out.mask & np.roll(~out.mask[::-1, ::-1], (1, 1), axis=(0, 1))
    assert np.corrcoef(out.intensity[valid], flipped[valid])[0, 1] > 0.99
    binned = prepare(DiffractionData(intensity=intensity, mask=mask), shape=32, oversampling=1.0)
    assert binned.metadata.extra["bin_factors"] != [1, 1]  # not re-centred on a bright bin
    assert binned.metadata.extra["peak_position"] == [61, 67]


def test_auto_centring_beats_the_brightest_pixel_on_simulated_3d_patterns_behind_a_beamstop():
    from reconstruction.simulate import Recipe, SimulatedDataset

    data = SimulatedDataset(Recipe(kind="mixed", shape=64, dims=3, beamstop_probability=1.0), 8, 777)
    off = {"max": [], "auto": []}
    for i in range(len(data)):
        item = data[i]
        intensity, mask = item["intensity"][0].numpy(), item["mask"][0].numpy().astype(bool)
        for method, offsets in off.items():
            peak = find_peak(intensity, mask, method=method)
            offsets.append(max(abs(p - 32) for p in peak))
    assert min(off["max"]) >= 1  # the beamstop hides the zero frequency
    assert sum(o <= 1 for o in off["auto"]) >= 6 and sum(off["auto"]) < sum(off["max"])


def test_find_peak_returns_the_brightest_unmasked_pixel_or_the_centre_of_mass():
    intensity = np.zeros((20, 20))
    intensity[5, 7] = 100  # a hot pixel, masked
    intensity[12, 9] = 10
    intensity[12, 10] = 10
    intensity[11, 9] = 5
    mask = np.zeros_like(intensity, bool)
    mask[5, 7] = True
    assert find_peak(intensity, mask) == (12, 9)
    assert find_peak(intensity, mask, method="com") == (12, 9)
    with pytest.raises(ConfigError):
        find_peak(intensity, mask, method="median")


@pytest.mark.parametrize("width", [8, 12, 16])
def test_oversampling_of_a_box_is_exactly_box_size_over_object_size(width):
    assert estimate_oversampling(intensity_of(_box(64, width))) == pytest.approx(
        (64 / width,) * 3, rel=1e-3
    )


def test_oversampling_of_a_ball_is_within_15_percent(ball_object):
    for diameter in (10, 16):
        estimate = estimate_oversampling(intensity_of(ball_object(64, diameter, 3)))
        assert estimate == pytest.approx((64 / diameter,) * 3, rel=0.15)


def test_oversampling_differs_per_axis_for_an_anisotropic_object():
    obj = np.zeros((48, 48))
    obj[20:28, 18:30] = 1.0  # 8 x 12 pixels
    assert estimate_oversampling(intensity_of(obj)) == pytest.approx((6.0, 4.0))


def test_a_masked_beamstop_moves_the_estimate_only_to_the_safe_lower_side(ball_object):
    intensity = intensity_of(ball_object(64, 16, 2))
    mask = np.zeros(intensity.shape, bool)
    mask[30:35, 30:35] = True
    free = estimate_oversampling(intensity)
    with_stop = estimate_oversampling(np.where(mask, 0, intensity), mask)
    assert all(0.85 * f <= w <= f for w, f in zip(with_stop, free))


def test_a_frame_invariant_mask_is_filled_frame_by_frame_like_the_3d_fill():
    import scipy.ndimage

    from reconstruction.preprocess.oversampling import fill_masked

    values = np.random.default_rng(0).random((6, 12, 12)).astype(np.float32)
    mask = np.zeros((6, 12, 12), bool)
    mask[:, 3, 4:7] = True
    index = scipy.ndimage.distance_transform_edt(mask, return_distances=False, return_indices=True)
    filled = fill_masked(values, mask)
    assert not np.array_equal(filled, values)
    np.testing.assert_array_equal(filled[~mask], values[~mask])
    np.testing.assert_array_equal(filled, values[tuple(index)])


def test_masked_binning_sums_rescales_and_masks_only_fully_masked_bins():
    intensity = np.arange(16, dtype=np.float32).reshape(4, 4)
    mask = np.zeros((4, 4), bool)
    mask[0, 0] = True  # one of four masked: value rescaled by 4/3
    mask[2:4, 2:4] = True  # all four masked
    binned, binned_mask = bin_masked(intensity, mask, (2, 2))
    assert binned[0, 0] == pytest.approx((1 + 4 + 5) * 4 / 3)
    assert binned[0, 1] == 2 + 3 + 6 + 7
    assert binned_mask.tolist() == [[False, False], [False, True]] and binned[1, 1] == 0


def test_crop_pad_masks_pixels_outside_the_measured_area():
    intensity = np.ones((4, 4), np.float32)
    _, out_mask, padded = crop_pad(intensity, np.zeros((4, 4), bool), start=(-2, 1), shape=(6, 6))
    assert padded == 36 - 4 * 3
    assert out_mask[:2].all() and out_mask[:, 3:].all() and not out_mask[2:, :3].any()


def test_bin_factor_is_floor_of_oversampling_over_target_and_at_least_one():
    assert bin_factors((6.7, 5.2, 2.0, float("nan")), (3.0, 3.0, 3.0, 3.0)) == (2, 1, 1, 1)


def test_prepare_centres_the_peak_and_bins_an_oversampled_volume(ball_object):
    obj = np.roll(ball_object(48, 8, 3), (3, -2, 1), axis=(0, 1, 2))  # oversampling 6
    intensity = intensity_of(obj) * 1e6
    intensity = np.roll(intensity, (5, -4, 2), axis=(0, 1, 2))  # peak off-centre
    data = DiffractionData(
        intensity=intensity.astype(np.float32), mask=np.zeros(intensity.shape, bool)
    )
    out = prepare(data, shape=16, oversampling=3.0)
    assert out.shape == (16, 16, 16)
    assert np.unravel_index(np.argmax(out.intensity), out.shape) == (8, 8, 8)
    assert out.metadata.extra["bin_factors"] == [2, 2, 2]
    assert out.metadata.extra["oversampling_before"] == pytest.approx([6.0] * 3, rel=0.15)
    assert out.metadata.extra["oversampling_after"] == pytest.approx([3.0] * 3, rel=0.2)
    assert out.metadata.extra["peak_position"] == [29, 20, 26]
    steps = [s["step"] for s in out.provenance.steps]
    assert steps == [
        "find_peak",
        "estimate_oversampling",
        "crop_centred",
        "bin",
        "estimate_oversampling",
        "prepare",
    ]
    start = out.provenance.steps[2]["start"]
    box = intensity[tuple(slice(a, a + 32) for a in start)]
    assert out.intensity.sum() == pytest.approx(box.sum(), rel=1e-5)  # binning conserves counts


def test_prepare_keeps_a_well_sampled_pattern_unbinned_and_pads_with_masked_pixels(tiny_pattern):
    out = prepare(tiny_pattern, shape=48)
    assert out.shape == (48, 48) and out.metadata.extra["bin_factors"] == [1, 1]
    assert np.unravel_index(np.argmax(out.intensity), out.shape) == (24, 24)
    assert out.mask.sum() == 48 * 48 - 32 * 32


def test_prepare_updates_pixel_sizes_and_rocking_angles(tiny_volume):
    out = prepare(tiny_volume, shape=8, oversampling=2.0)  # oversampling 4 -> bin 2
    assert out.metadata.extra["bin_factors"] == [2, 2, 2]
    assert out.metadata.x_pixel_size_m == pytest.approx(110e-6)
    angles = tiny_volume.metadata.rocking_angles_deg
    step = angles[1] - angles[0]
    assert len(out.metadata.rocking_angles_deg) == 8
    np.testing.assert_allclose(np.diff(out.metadata.rocking_angles_deg), 2 * step)
    assert tiny_volume.metadata.x_pixel_size_m == 55e-6  # the input is not modified


def test_threshold_zeroes_counts_below_it(tiny_volume):
    out = prepare(tiny_volume, shape=24, threshold=5.0)
    assert out.intensity[(out.intensity > 0)].min() >= 5.0
    assert out.provenance.steps[0]["step"] == "threshold"


def test_prepare_refuses_frame_stacks_and_bad_options(tiny_volume):
    with pytest.raises(ConfigError):
        prepare(tiny_volume, shape=(16, 16))
    with pytest.raises(ConfigError):
        prepare(tiny_volume, oversampling=0)
    tiny_volume.metadata.extra["frame_stack"] = "translations"
    with pytest.raises(NotAVolumeError):
        prepare(tiny_volume)
