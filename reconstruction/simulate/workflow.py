"""``simulate_dataset``: write a simulated data set as HDF5 shards (and optional CXI files).

Called by ``python -m reconstruction simulate`` and the web app's simulate job.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import sys
import time
from collections import Counter, deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

from reconstruction.errors import ConfigError
from reconstruction.progress import ProgressCallback, ProgressEvent, check, report
from reconstruction.simulate.recipe import Recipe
from reconstruction.simulate.sample import generate_sample, sample_rng
from reconstruction.simulate.shards import write_shard

SHARD_SUFFIXES = (".h5", ".hdf5")


def _generate(
    recipe_dict: dict[str, Any], seed: int, index: int, keep_object: bool
) -> dict[str, Any]:
    """Generate sample ``index`` (top-level so that it can run in a worker process)."""
    sample = generate_sample(Recipe.from_dict(recipe_dict), sample_rng(seed, index))
    if not keep_object:
        del sample["object"]  # not stored in shards: do not send it back
    return sample


def _samples(
    recipe: Recipe, seed: int, indices: range, workers: int, cancel: Any, *, keep_object: bool
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (index, sample) in index order, generated here or by ``workers`` processes."""
    if workers <= 1:
        for i in indices:
            check(cancel)
            yield i, generate_sample(recipe, sample_rng(seed, i))
        return
    recipe_dict = recipe.to_dict()
    # fork on Linux (works from scripts, notebooks and stdin; the children only use NumPy/SciPy)
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    context = multiprocessing.get_context(method)
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        pending: deque[tuple[int, Future]] = deque()
        todo = iter(indices)
        try:
            for i in todo:
                pending.append((i, pool.submit(_generate, recipe_dict, seed, i, keep_object)))
                if len(pending) >= 4 * workers:
                    break
            while pending:
                check(cancel)
                i, future = pending.popleft()
                sample = future.result()
                nxt = next(todo, None)
                if nxt is not None:
                    pending.append(
                        (nxt, pool.submit(_generate, recipe_dict, seed, nxt, keep_object))
                    )
                yield i, sample
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _write_cxi(
    folder: Path, index: int, sample: dict[str, Any], recipe: Recipe, seed: int
) -> list[str]:
    """Write one pattern as a prepared CXI input file and its truth as a result file."""
    from reconstruction.io import (
        DiffractionData,
        Metadata,
        Provenance,
        ResultRecord,
        write_prepared,
        write_result,
    )

    params = sample["params"]
    voxel = params.get("voxel_size_m")
    provenance = Provenance(source_format="simulated")
    provenance.add_step("simulate", seed=seed, index=index, recipe=recipe.to_dict(), params=params)
    data = DiffractionData(
        intensity=sample["intensity"],
        mask=sample["mask"],
        metadata=Metadata(
            extra={"simulated": True, "seed": seed, "index": index, "voxel_size_m": voxel}
        ),
        provenance=provenance,
    )
    pattern = folder / f"sample_{index:06d}.cxi"
    truth = folder / f"sample_{index:06d}_truth.cxi"
    write_prepared(pattern, data)
    record = ResultRecord(
        obj=sample["object"],
        support=sample["amplitude"] >= 0.5,
        intensity=sample["intensity"],
        mask=sample["mask"],
        algorithm="simulated truth",
        config={"recipe": recipe.to_dict(), "params": params},
        command=f"reconstruction simulate (seed {seed}, index {index})",
        provenance={
            "seed": seed,
            "index": index,
            "family": params["family"],
            "pattern_file": pattern.name,
        },
    )
    write_result(truth, record)
    return [str(pattern), str(truth)]


def simulate_dataset(
    out_path: str | os.PathLike,
    *,
    kind: str = "mixed",
    n: int = 16,
    shape: int = 64,
    dims: int = 3,
    photons: tuple[float, float] = (1e5, 1e9),
    seed: int = 0,
    cxi: bool = False,
    workers: int = 1,
    shard_size: int = 1000,
    compression: str = "lzf",
    recipe: Recipe | dict[str, Any] | None = None,
    progress: ProgressCallback | None = None,
    cancel: Any = None,
) -> dict[str, Any]:
    """Simulate ``n`` patterns (indices 0..n-1 of ``SimulatedDataset(recipe, n, seed)``) to disk.

    ``out_path`` ending in .h5/.hdf5 is one HDF5 file; otherwise it is a folder of shards
    ``shard_00000.h5`` ... of ``shard_size`` samples each. Read either with
    ``StoredDataset(out_path)``. With ``cxi``, every pattern is also written as a standalone
    prepared CXI file plus a ``_truth.cxi`` result file holding the true object, in
    ``<out_path stem>_cxi/`` (file) or ``<out_path>/cxi/`` (folder). ``recipe`` (optional)
    gives every other simulation parameter; ``kind``, ``shape``, ``dims``, ``photons`` override
    it. ``workers`` > 1 generates in that many processes (same samples).

    Returns {out_path, n, seconds, files, cxi_files, cxi_dir, recipe, seed, families,
    samples_per_second}.
    """
    start = time.monotonic()
    if isinstance(recipe, dict):
        recipe = Recipe.from_dict(recipe)
    base = (recipe or Recipe()).to_dict()
    base.update(kind=kind, shape=int(shape), dims=int(dims), photons=[float(p) for p in photons])
    rec = Recipe.from_dict(base)
    if n < 1:
        raise ConfigError(f"n must be at least 1, got {n}")
    if workers < 1 or shard_size < 1:
        raise ConfigError(
            f"workers and shard_size must be at least 1, got {workers} and {shard_size}"
        )
    if compression not in ("lzf", "gzip"):
        raise ConfigError(f"compression must be lzf or gzip, got {compression!r}")
    out = Path(out_path)
    single = out.suffix.lower() in SHARD_SUFFIXES
    if single:
        shards = [(out, range(n))]
        cxi_dir = out.with_name(f"{out.stem}_cxi")
    else:
        out.mkdir(parents=True, exist_ok=True)
        shards = [
            (out / f"shard_{k:05d}.h5", range(lo, min(lo + shard_size, n)))
            for k, lo in enumerate(range(0, n, shard_size))
        ]
        cxi_dir = out / "cxi"
        stale = sorted(set(out.glob("*.h5")) - {p for p, _ in shards})
        if stale:
            raise ConfigError(
                f"{out} already holds other shards ({stale[0].name} ...) that would be read as part of "
                "this data set: remove them or choose another folder"
            )
    if cxi:
        cxi_dir.mkdir(parents=True, exist_ok=True)
    families: Counter[str] = Counter()
    cxi_files: list[str] = []
    done = 0
    report(progress, ProgressEvent(0.0, "simulate", 0, n, message=f"simulating {n} patterns"))

    stream = _samples(rec, seed, range(n), workers, cancel, keep_object=cxi)

    def tracked(count: int) -> Iterator[tuple[int, dict[str, Any]]]:
        nonlocal done
        for i, sample in itertools.islice(stream, count):
            families[sample["params"]["family"]] += 1
            if cxi:
                cxi_files.extend(_write_cxi(cxi_dir, i, sample, rec, seed))
            done += 1
            report(progress, ProgressEvent(done / n, "simulate", done, n))
            yield i, sample

    try:
        for path, indices in shards:
            check(cancel)
            write_shard(
                path,
                tracked(len(indices)),
                recipe=rec,
                seed=seed,
                n=len(indices),
                compression=compression,
            )
    finally:
        stream.close()
    seconds = time.monotonic() - start
    return {
        "out_path": str(out),
        "n": n,
        "seconds": seconds,
        "files": [str(p) for p, _ in shards],
        "cxi_files": cxi_files,
        "cxi_dir": str(cxi_dir) if cxi else None,
        "recipe": rec.to_dict(),
        "seed": seed,
        "families": dict(families),
        "samples_per_second": n / seconds if seconds > 0 else float("inf"),
        "shape": [rec.shape] * rec.dims,
    }
