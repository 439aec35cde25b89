"""``generate_sample``: one simulated pattern with its truth, from a recipe and a random generator."""

from __future__ import annotations

from typing import Any

import numpy as np

from reconstruction.simulate.detector import detect, draw_detector
from reconstruction.simulate.objects import draw_object
from reconstruction.simulate.recipe import Recipe


def sample_rng(seed: int, index: int) -> np.random.Generator:
    """Return the generator of sample ``index`` of a data set seeded ``seed`` (no global state)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(index)]))


def generate_sample(recipe: Recipe, rng: np.random.Generator) -> dict[str, Any]:
    """Draw one object and record its diffraction pattern as a detector would.

    Returns a dict of numpy arrays, all ``(N,)*dims`` and centred:
    "intensity" float32 photon counts (>= 0, zero frequency at N // 2), "mask" bool
    (True = excluded pixel), "amplitude" float32 truth amplitude (max 1), "phase" float32 truth
    phase (rad, 0 where the amplitude is 0), "object" complex64 (amplitude * exp(i phase));
    and "params", a JSON-safe dict of every drawn parameter.
    """
    if recipe.kind == "mixed":
        family = "crystal" if rng.random() < recipe.crystal_fraction else "superellipsoid"
    else:
        family = recipe.kind
    if recipe.dims == 3:
        view = "volume"
    elif recipe.view_2d == "mixed":
        view = "slice" if rng.random() < 0.5 else "projection"
    else:
        view = recipe.view_2d
    obj, params = draw_object(recipe, rng, family=family, view=view)
    options = draw_detector(recipe, rng)
    intensity, mask, effects = detect(obj, rng, **options)
    amplitude = np.abs(obj).astype(np.float32)
    phase = np.where(amplitude > 0, np.angle(obj), 0).astype(np.float32)
    return {
        "intensity": intensity,
        "mask": mask,
        "amplitude": amplitude,
        "phase": phase,
        "object": obj,
        "params": {**params, "detector": effects, "shape": recipe.shape, "dims": recipe.dims},
    }
