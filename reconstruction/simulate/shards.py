"""HDF5 shards of simulated samples (read back by ``StoredDataset``).

Layout of one shard (all arrays chunked one sample per chunk, compressed):

    attrs  format = "reconstruction.simulate/1", recipe (JSON of ``Recipe.to_dict()``), seed,
           shape, dims, n
    /index      (n,) int64           the sample indices (item i of the streamed data set)
    /intensity  (n, N, N[, N]) float32 photon counts, centred
    /mask       (n, N, N[, N]) bool  True = excluded pixel
    /amplitude  (n, N, N[, N]) float32 truth amplitude (max 1)
    /phase      (n, N, N[, N]) float32 truth phase (rad, 0 outside)
    /params     (n,) str          drawn parameters of each sample, JSON
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import h5py
import numpy as np

from reconstruction import __version__
from reconstruction.io.atomic import atomic_path
from reconstruction.io.jsonable import dumps
from reconstruction.simulate.dataset import ARRAYS, FORMAT
from reconstruction.simulate.recipe import Recipe

DTYPES = {"intensity": np.float32, "mask": bool, "amplitude": np.float32, "phase": np.float32}


def write_shard(
    path: str | os.PathLike,
    samples: Iterable[tuple[int, dict[str, Any]]],
    *,
    recipe: Recipe,
    seed: int,
    n: int,
    compression: str = "lzf",
) -> None:
    """Write ``n`` (index, sample) pairs (``generate_sample`` dicts) to one HDF5 shard, atomically.

    ``compression`` is "lzf" (fast) or "gzip"; every array is chunked one sample per chunk.
    """
    side = (recipe.shape,) * recipe.dims
    options: dict[str, Any] = {"compression": compression}
    if compression == "gzip":
        options["compression_opts"] = 4
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["format"] = FORMAT
        f.attrs["creator"] = f"reconstruction {__version__}"
        f.attrs["recipe"] = dumps(recipe.to_dict())
        f.attrs["seed"] = int(seed)
        f.attrs["shape"] = recipe.shape
        f.attrs["dims"] = recipe.dims
        f.attrs["n"] = int(n)
        index = f.create_dataset("index", shape=(n,), dtype=np.int64)
        arrays = {
            name: f.create_dataset(
                name, shape=(n, *side), dtype=DTYPES[name], chunks=(1, *side), **options
            )
            for name in ARRAYS
        }
        params = f.create_dataset("params", shape=(n,), dtype=h5py.string_dtype())
        count = 0
        for row, (i, sample) in enumerate(samples):
            index[row] = i
            for name in ARRAYS:
                arrays[name][row] = sample[name]
            params[row] = dumps(sample["params"])
            count += 1
        if count != n:
            raise ValueError(f"write_shard expected {n} samples, got {count}")
