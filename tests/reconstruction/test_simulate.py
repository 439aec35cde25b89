"""Simulated training data: object geometry, phase models, detector noise, datasets."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from reconstruction.errors import ConfigError
from reconstruction.simulate import (
    Recipe,
    SimulatedDataset,
    StoredDataset,
    generate_sample,
    sample_rng,
)
from reconstruction.simulate.detector import detect
from reconstruction.simulate.geometry import Superellipsoid, random_rotation, rasterise
from reconstruction.simulate.shards import write_shard

QUIET = {  # no optional detector effects
    "readout_probability": 0.0,
    "beamstop_probability": 0.0,
    "gaps_probability": 0.0,
    "coherence_probability": 0.0,
}


def flip_centred(a: np.ndarray) -> np.ndarray:
    """Return a(-q) for a centred even-sized array (zero frequency at N // 2)."""
    return np.roll(a[(slice(None, None, -1),) * a.ndim], 1, axis=tuple(range(a.ndim)))


def boundary(support: np.ndarray) -> np.ndarray:
    """Voxels of ``support`` with at least one face neighbour outside it."""
    inner = support.copy()
    for axis in range(support.ndim):
        inner &= np.roll(support, 1, axis) & np.roll(support, -1, axis)
    return support & ~inner


def test_superellipsoid_with_unit_exponents_is_a_sphere_of_the_right_volume():
    body = Superellipsoid(20.0, 20.0, 20.0, 1.0, 1.0)
    amp = rasterise(body, 64, rotation=random_rotation(np.random.default_rng(1)), scale=1.0)
    volume = amp.sum()
    assert volume == pytest.approx(4 / 3 * math.pi * 20**3, rel=0.02)


def test_smoothed_superellipsoid_is_full_inside_including_its_centre():
    amp = rasterise(
        Superellipsoid(8.0, 6.0, 7.0, 0.5, 1.5), 32, rotation=np.eye(3), scale=1.0, edge_sigma=1.0
    )
    assert amp[16, 16, 16] == pytest.approx(1.0) and amp[16, 16, 17] == pytest.approx(1.0)
    assert amp[16, 16, 16 + 7] == pytest.approx(0.5, abs=0.02)  # half height on the surface (c = 7)
    assert amp[16, 16, 16 + 11] < 0.01


def test_superellipsoid_with_exponents_two_is_an_octahedron():
    a = 20.0
    body = Superellipsoid(a, a, a, 2.0, 2.0)
    tilted = rasterise(body, 64, rotation=random_rotation(np.random.default_rng(2)), scale=1.0)
    assert tilted.sum() == pytest.approx(4 / 3 * a**3, rel=0.03)  # unaligned: no lattice-plane bias
    amp = rasterise(body, 64, rotation=np.eye(3), scale=1.0)
    c = 32
    assert amp[c, c, c + 19] == 1 and amp[c + 19, c, c] == 1  # vertices reach |x| = a
    assert amp[c + 6, c + 6, c + 6] == 1  # inside the {111} face |x|+|y|+|z| <= a
    assert amp[c + 8, c + 8, c + 8] == 0  # a sphere of radius a would contain this point


def test_superellipsoid_phase_stays_in_its_range_and_is_zero_outside():
    recipe = Recipe(kind="superellipsoid", shape=32, phase_range=(1.0, 1.0), **QUIET)
    for index in range(3):
        s = generate_sample(recipe, sample_rng(0, index))
        inside = s["amplitude"] >= 0.5
        assert np.abs(s["phase"]).max() <= 1.0 + 1e-5
        assert np.abs(s["phase"][inside]).max() == pytest.approx(1.0, abs=1e-3)
        assert (s["phase"][s["amplitude"] == 0] == 0).all()
        assert s["amplitude"].max() == pytest.approx(1.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_crystal_faces_lie_on_the_drawn_fcc_planes(seed):
    recipe = Recipe(kind="crystal", shape=48, edge_sigma=(0.0, 0.0), **QUIET)
    s = generate_sample(recipe, sample_rng(seed, 0))
    p = s["params"]
    normals, distances = np.array(p["normals"]), np.array(p["distances"])
    rotation, scale = np.array(p["rotation"]), p["scale_vox"]
    assert 4 <= len(normals) <= 20
    # every normal is an fcc direction: sorted |components| proportional to a small-index family
    for nrm in normals:
        hkl = np.sort(np.abs(nrm))[::-1] / np.abs(nrm).max()
        assert any(
            np.allclose(hkl, np.array(f) / max(f), atol=1e-9)
            for f in [(1, 1, 1), (1, 0, 0), (1, 1, 0), (3, 1, 1)]
        )
    edge = np.argwhere(boundary(s["amplitude"] > 0)) - 24
    body = edge @ rotation / scale  # p = R^T x / s, row-wise
    gap_vox = np.abs(distances[None, :] - body @ normals.T).min(axis=1) * scale
    assert gap_vox.max() <= 1.0  # each surface voxel is within a voxel of one of the planes
    assert np.median(gap_vox) < 0.6


def test_crystal_phase_is_wrapped_and_zero_outside():
    recipe = Recipe(
        kind="crystal",
        shape=32,
        crystal_phase_at_max_strain=12.0,
        crystal_dislocation_probability=1.0,
        **QUIET,
    )
    s = generate_sample(recipe, sample_rng(3, 0))
    assert s["phase"].min() > -math.pi - 1e-6 and s["phase"].max() <= math.pi + 1e-6
    assert np.ptp(s["phase"][s["amplitude"] > 0.5]) > 3.0  # a vortex winds through the full circle
    assert (s["phase"][s["amplitude"] == 0] == 0).all()
    assert len(s["params"]["dislocations"]) == 1


def test_poisson_counts_have_variance_equal_to_their_mean():
    obj = rasterise(
        Superellipsoid(4.0, 3.0, 5.0, 1.0, 1.0), 16, rotation=np.eye(3), scale=1.0, dims=2
    )
    rng = np.random.default_rng(5)
    draws = np.stack([detect(obj, rng, photons=2e4)[0] for _ in range(400)])
    mean, var = draws.mean(axis=0), draws.var(axis=0, ddof=1)
    bright = mean > 5
    assert bright.sum() > 20
    assert (var[bright] / mean[bright]).mean() == pytest.approx(1.0, abs=0.05)
    assert draws.sum(axis=(1, 2)).mean() == pytest.approx(2e4, rel=0.01)


def test_phase_free_centrosymmetric_object_gives_a_centrosymmetric_pattern_and_a_strained_one_does_not():
    flat = Recipe(
        kind="superellipsoid", shape=32, phase_range=(0.0, 0.0), photons=(1e14, 1e14), **QUIET
    )
    s = generate_sample(flat, sample_rng(0, 0))
    rng = np.random.default_rng(0)
    counts = detect(s["object"], rng, photons=1e14)[0]
    assert np.abs(counts - flip_centred(counts)).sum() / counts.sum() < 1e-4
    strained = Recipe(
        kind="crystal", shape=32, photons=(1e14, 1e14), crystal_phase_at_max_strain=6.0, **QUIET
    )
    s = generate_sample(strained, sample_rng(0, 1))
    counts = detect(s["object"], rng, photons=1e14)[0]
    assert np.abs(counts - flip_centred(counts)).sum() / counts.sum() > 0.01


@pytest.mark.parametrize(
    "kind,dims,view",
    [
        ("superellipsoid", 3, "mixed"),
        ("crystal", 3, "mixed"),
        ("mixed", 2, "slice"),
        ("mixed", 2, "projection"),
    ],
)
def test_oversampling_and_centre_of_mass_lie_where_requested(kind, dims, view):
    lo, hi = 2.5, 4.0
    # a projection thins out towards its edges: measure it with hard edges and amplitude > 0
    edge, threshold = ((0.0, 0.0), 1e-6) if view == "projection" else ((0.4, 1.0), 0.5)
    recipe = Recipe(
        kind=kind,
        shape=48,
        dims=dims,
        view_2d=view,
        oversampling=(lo, hi),
        edge_sigma=edge,
        **QUIET,
    )
    for index in range(4):
        s = generate_sample(recipe, sample_rng(11, index))
        drawn = np.array(s["params"]["oversampling"])
        assert ((drawn >= lo - 1e-9) & (drawn <= hi + 1e-9)).all()
        amp = s["amplitude"]
        for axis in range(dims):
            occupied = np.flatnonzero(
                (amp >= threshold).any(axis=tuple(k for k in range(dims) if k != axis))
            )
            extent = occupied[-1] - occupied[0] + 1
            assert 48 / (extent + 1.5) <= hi and 48 / max(extent - 1.5, 1) >= lo
        grid = np.indices(amp.shape).reshape(dims, -1)
        com = (grid * amp.ravel()).sum(axis=1) / amp.sum()
        assert np.abs(com - 24).max() <= 1.0


def test_item_tensors_have_the_contract_shapes_and_types():
    ds = SimulatedDataset(Recipe(kind="mixed", shape=16), 2, seed=0)
    item = ds[1]
    for name, dtype in [
        ("intensity", torch.float32),
        ("mask", torch.bool),
        ("amplitude", torch.float32),
        ("phase", torch.float32),
    ]:
        assert item[name].shape == (1, 16, 16, 16) and item[name].dtype == dtype
    assert item["index"].item() == 1 and item["intensity"].min() >= 0
    assert item["amplitude"].max().item() == pytest.approx(1.0)
    assert ds.params(1)["family"] in ("superellipsoid", "crystal")
    item2 = SimulatedDataset(Recipe(kind="mixed", shape=16, dims=2), 2, seed=0)[0]
    assert item2["intensity"].shape == (1, 16, 16) and item2["mask"].dtype == torch.bool


def test_same_seed_gives_identical_samples_in_any_worker_order():
    ds = SimulatedDataset(Recipe(kind="mixed", shape=16), 6, seed=42)
    serial = {
        int(b["index"]): b for b in torch.utils.data.DataLoader(ds, batch_size=None, num_workers=0)
    }
    parallel = torch.utils.data.DataLoader(
        ds, batch_size=None, num_workers=2, sampler=list(reversed(range(6)))
    )
    for item in parallel:
        ref = serial[int(item["index"])]
        for name in ("intensity", "mask", "amplitude", "phase"):
            assert torch.equal(item[name], ref[name])
    other = SimulatedDataset(Recipe(kind="mixed", shape=16), 6, seed=43)[0]
    assert not torch.equal(other["intensity"], serial[0]["intensity"])


def test_stored_and_streamed_datasets_give_the_same_sample(tmp_path):
    recipe = Recipe(kind="mixed", shape=16, beamstop_probability=1.0)
    ds = SimulatedDataset(recipe, 3, seed=9)
    write_shard(
        tmp_path / "shard.h5", ((i, ds.sample(i)) for i in range(3)), recipe=recipe, seed=9, n=3
    )
    stored = StoredDataset(tmp_path / "shard.h5")
    assert len(stored) == 3 and stored.recipe == recipe
    for i in range(3):
        a, b = ds[i], stored[i]
        assert all(torch.equal(a[k], b[k]) for k in a)
        assert stored.params(i) == json.loads(json.dumps(ds.params(i)))
        assert bool(b["mask"].any())  # the beamstop is masked


def test_recipe_survives_a_json_round_trip_and_rejects_nonsense():
    recipe = Recipe(kind="crystal", dims=2, photons=(1e6, 1e7), crystal_families=("111", "100"))
    assert Recipe.from_dict(json.loads(json.dumps(recipe.to_dict()))) == recipe
    with pytest.raises(ConfigError):
        Recipe(kind="banana")
    with pytest.raises(ConfigError):
        Recipe(photons=(1e9, 1e5))
    with pytest.raises(ConfigError):
        Recipe.from_dict({"kind": "mixed", "colour": "red"})


def test_beamstop_and_module_gaps_are_masked_and_read_zero():
    obj = rasterise(Superellipsoid(5.0, 5.0, 5.0, 1.0, 1.0), 32, rotation=np.eye(3), scale=1.0)
    _, stop, _ = detect(obj, np.random.default_rng(0), photons=1e8, beamstop_radius=2.5)
    assert stop[16, 16, 16] and stop[16, 16, 18] and not stop[16, 16, 19]
    assert stop.sum() == sum(1 for p in np.ndindex(7, 7, 7) if sum((c - 3) ** 2 for c in p) <= 6.25)
    counts, mask, effects = detect(
        obj, np.random.default_rng(0), photons=1e8, beamstop_radius=2.5, gaps=2, gap_width=(1, 1)
    )
    assert len(effects["gaps"]) == 2 and (mask | stop).sum() == mask.sum()
    assert (counts[mask] == 0).all() and counts[~mask].sum() > 0
    for gap in effects["gaps"]:
        index = [slice(None)] * 3
        index[gap["axis"]] = gap["start"]
        assert mask[tuple(index)].all()  # a gap masks a whole plane of the detector


def test_partial_coherence_blur_spreads_a_single_pixel_into_a_gaussian_of_the_given_width():
    from reconstruction.simulate.detector import coherence_blur

    delta = np.zeros((32, 32), np.float32)
    delta[16, 16] = 1000.0
    blurred = coherence_blur(delta, 1.5)
    assert blurred.sum() == pytest.approx(1000.0, rel=1e-4)
    y = np.arange(32) - 16
    variance = (blurred.sum(axis=1) * y**2).sum() / blurred.sum()
    assert variance == pytest.approx(1.5**2, rel=0.02)


def test_homogeneous_strain_gives_the_phase_ramp_k_eps_q_dot_r():
    from reconstruction.simulate.displacement import Displacement, displacement_phase

    eps = ((0.01, 0.002, 0.0), (0.002, -0.005, 0.001), (0.0, 0.001, 0.003))
    q = np.array([1.0, 1.0, 1.0]) / math.sqrt(3)
    model = Displacement(k_rad_per_vox=15.0, q=tuple(q), strain=eps)
    points = np.random.default_rng(0).uniform(-10, 10, size=(3, 50))
    phase = displacement_phase(tuple(points), model)
    np.testing.assert_allclose(phase, 15.0 * (np.array(eps) @ q) @ points, rtol=1e-12)


def test_point_defect_phase_is_odd_and_falls_as_inverse_square_distance():
    from reconstruction.simulate.displacement import Displacement, PointDefect, displacement_phase

    q = (0.0, 0.6, 0.8)
    centre = np.array([1.0, -2.0, 3.0])
    model = Displacement(k_rad_per_vox=10.0, q=q, defects=(PointDefect(tuple(centre), 1.2),))
    d = np.array([0.0, 1.8, 2.4])  # along q, 3 voxels away (outside the 1.5-voxel core)
    at = [displacement_phase(tuple(centre + f * d), model) for f in (1.0, -1.0, 2.0)]
    assert at[0] == pytest.approx(1.2 * 1.5**2 / 3.0**2)
    assert at[1] == pytest.approx(-at[0]) and at[2] == pytest.approx(at[0] / 4)


def test_dislocation_phase_winds_by_two_pi_around_its_line():
    from reconstruction.simulate.displacement import Dislocation, Displacement, displacement_phase

    line = np.array([1.0, 2.0, 2.0]) / 3.0
    centre = np.array([0.5, 0.0, -1.0])
    model = Displacement(
        k_rad_per_vox=0.0,
        q=(0.0, 0.0, 1.0),
        dislocations=(Dislocation(tuple(centre), tuple(line), -1.0),),
    )
    e1 = np.cross(line, [0.0, 0.0, 1.0])
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(line, e1)
    t = np.linspace(0, 2 * math.pi, 65)
    loop = centre[:, None] + 4.0 * (np.cos(t) * e1[:, None] + np.sin(t) * e2[:, None])
    phase = displacement_phase(tuple(loop), model)
    steps = np.angle(np.exp(1j * np.diff(phase)))
    assert steps.sum() == pytest.approx(-2 * math.pi)


def test_crystal_voxel_size_gives_the_requested_phase_for_the_maximum_strain():
    recipe = Recipe(kind="crystal", shape=32, **QUIET)
    p = generate_sample(recipe, sample_rng(0, 2))["params"]
    extent_vox = 32 / min(p["oversampling"])
    phase = (
        2 * math.pi / p["d_spacing_m"] * recipe.crystal_strain_max * extent_vox * p["voxel_size_m"]
    )
    assert phase == pytest.approx(recipe.crystal_phase_at_max_strain)
    assert 1e-10 < p["voxel_size_m"] < 1e-8  # a few angstroms: a crystal of ~10 nm
