"""Simulated training data: random objects, their detector patterns, and datasets.

``Recipe`` describes a data set; ``generate_sample(recipe, rng)`` draws one sample;
``SimulatedDataset(recipe, n, seed)`` streams samples (deterministic per index) and
``StoredDataset(path)`` reads shards written by ``reconstruction.simulate.workflow``.
Families, displacement model, detector model and file formats: docs/simulation.md.
"""

from reconstruction.simulate.dataset import SimulatedDataset, StoredDataset
from reconstruction.simulate.recipe import Recipe
from reconstruction.simulate.sample import generate_sample, sample_rng

__all__ = ["Recipe", "SimulatedDataset", "StoredDataset", "generate_sample", "sample_rng"]
