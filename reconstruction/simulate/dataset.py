"""Torch datasets of simulated patterns: streamed (generated on the fly) and stored (HDF5 shards)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from reconstruction.errors import InvalidDataError, UnreadableFileError
from reconstruction.simulate.recipe import Recipe
from reconstruction.simulate.sample import generate_sample, sample_rng

ARRAYS = ("intensity", "mask", "amplitude", "phase")
FORMAT = "reconstruction.simulate/1"


def to_item(sample: dict[str, Any], index: int) -> dict[str, torch.Tensor]:
    """Convert numpy arrays ``(N,)*dims`` into the item tensors ``(1, N, ...)`` plus "index"."""
    item = {name: torch.from_numpy(np.ascontiguousarray(sample[name]))[None] for name in ARRAYS}
    item["index"] = torch.tensor(index, dtype=torch.int64)
    return item


class SimulatedDataset(torch.utils.data.Dataset):
    """``n`` simulated patterns generated on the fly; item ``i`` depends only on (recipe, seed, i).

    Item: {"intensity": (1, N, N, N) float32 counts, "mask": (1, N, N, N) bool (True =
    excluded), "amplitude": (1, N, N, N) float32 truth (max 1), "phase": (1, N, N, N) float32
    truth (rad, 0 outside), "index": int64}; (1, N, N) for dims = 2. Each item's generator is
    seeded from ``numpy.random.SeedSequence([seed, i])``, so any DataLoader worker order gives
    the same samples.
    """

    def __init__(
        self, recipe: Recipe | dict[str, Any] | None = None, n: int = 16, seed: int = 0
    ) -> None:
        if recipe is None:
            recipe = Recipe()
        self.recipe = recipe if isinstance(recipe, Recipe) else Recipe.from_dict(recipe)
        if n < 0:
            raise InvalidDataError(f"a data set needs n >= 0 samples, got {n}")
        self.n = int(n)
        self.seed = int(seed)

    def __len__(self) -> int:
        return self.n

    def _check(self, index: int) -> int:
        if not -self.n <= index < self.n:
            raise IndexError(f"index {index} out of range for {self.n} samples")
        return index % self.n if self.n else index

    def sample(self, index: int) -> dict[str, Any]:
        """Return ``generate_sample``'s dict (numpy arrays, "object", "params") for ``index``."""
        index = self._check(int(index))
        return generate_sample(self.recipe, sample_rng(self.seed, index))

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        index = self._check(int(index))
        return to_item(self.sample(index), index)

    def params(self, index: int) -> dict[str, Any]:
        """Return the drawn parameters of sample ``index`` (JSON-safe dict)."""
        return self.sample(index)["params"]


class StoredDataset(torch.utils.data.Dataset):
    """Simulated patterns read from HDF5 shards written by ``write_shard`` (a file or a folder).

    Same items and ``params(i)`` as ``SimulatedDataset``; files are opened lazily in each
    process, so the data set is safe with several DataLoader workers.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        root = Path(path)
        if root.is_dir():
            files = sorted(root.glob("*.h5"))
        elif root.is_file():
            files = [root]
        else:
            raise UnreadableFileError(f"no simulated data set at {root}")
        if not files:
            raise UnreadableFileError(f"no .h5 shards in {root}")
        self.files = files
        self._index: dict[int, tuple[int, int]] = {}
        recipes, seeds = [], set()
        for k, file in enumerate(files):
            try:
                with h5py.File(file, "r") as f:
                    if f.attrs.get("format") != FORMAT:
                        raise InvalidDataError(f"{file} is not a simulated data shard ({FORMAT})")
                    recipes.append(str(f.attrs["recipe"]))
                    seeds.add(int(f.attrs["seed"]))
                    for row, index in enumerate(f["index"][()]):
                        self._index[int(index)] = (k, row)
            except OSError as exc:
                raise UnreadableFileError(f"cannot read simulated shard {file}: {exc}") from exc
        if len(set(recipes)) > 1 or len(seeds) > 1:
            raise InvalidDataError(f"the shards in {root} come from different recipes or seeds")
        self.recipe = Recipe.from_dict(json.loads(recipes[0]))
        self.seed = seeds.pop()
        self.indices = sorted(self._index)
        self._handles: dict[int, h5py.File] = {}
        self._pid = os.getpid()

    def __len__(self) -> int:
        return len(self.indices)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_handles"] = {}
        return state

    def _row(self, index: int) -> tuple[h5py.File, int]:
        if index not in self._index:
            raise IndexError(f"sample {index} is not in this stored data set")
        if os.getpid() != self._pid:
            self._handles, self._pid = {}, os.getpid()
        k, row = self._index[index]
        if k not in self._handles:
            self._handles[k] = h5py.File(self.files[k], "r")
        return self._handles[k], row

    def sample(self, index: int) -> dict[str, Any]:
        """Return the stored arrays (numpy) and "params" of sample ``index``."""
        f, row = self._row(int(index))
        out: dict[str, Any] = {name: f[name][row] for name in ARRAYS}
        out["params"] = json.loads(f["params"][row])
        return out

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return to_item(self.sample(int(index)), int(index))

    def params(self, index: int) -> dict[str, Any]:
        """Return the drawn parameters of sample ``index``."""
        f, row = self._row(int(index))
        return json.loads(f["params"][row])

    def close(self) -> None:
        """Close the open shard files."""
        for handle in self._handles.values():
            handle.close()
        self._handles = {}
