"""``metrics_file``: quality figures of a result file, against its own or other data and a truth."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from reconstruction.errors import InvalidDataError
from reconstruction.metrics.fourier_errors import fourier_errors, free_pixel_mask
from reconstruction.metrics.truth import compare_to_truth


def _load_truth(path: str | os.PathLike) -> np.ndarray:
    p = Path(path)
    if p.suffix == ".npy":
        return np.load(p, allow_pickle=False)
    from reconstruction.io import load_object

    return load_object(p).obj


def metrics_file(
    result_path: str | os.PathLike,
    *,
    data_path: str | os.PathLike | None = None,
    truth_path: str | os.PathLike | None = None,
    free_fraction: float = 0.05,
) -> dict[str, Any]:
    """Return chi2 / chi2_free / LLK of a result file's object and, with a truth, SSIM etc.

    ``data_path``: a raw or prepared file to compare with instead of the result's own
    intensity; ``truth_path``: a true object (.npy complex or any object file) of the same
    shape. The free pixels are drawn with the result's seed (0 if absent). JSON-serialisable.
    """
    from reconstruction.io import read_result

    start = time.monotonic()
    record = read_result(result_path)
    intensity, mask = record.intensity, record.mask
    if data_path is not None:
        from reconstruction.io.workflow import load_prepared_on_grid

        data = load_prepared_on_grid(
            data_path, shape=record.obj.shape, provenance=record.provenance
        )
        intensity, mask = data.intensity, data.mask
    if intensity.shape != record.obj.shape:
        raise InvalidDataError(
            f"the data has shape {intensity.shape} but the object has shape {record.obj.shape}"
        )
    seed = int(record.provenance.get("seed", 0) or 0)
    free = free_pixel_mask(mask, fraction=free_fraction, seed=seed)
    out: dict[str, Any] = {
        "result_path": str(Path(result_path).resolve()),
        "algorithm": record.algorithm,
        "shape": list(record.obj.shape),
        "fourier": fourier_errors(
            record.obj, intensity, mask=mask, free_mask=free, psf=record.arrays.get("psf")
        ),
        "support_size": int(record.support.sum()),
        "support_fraction": float(record.support.mean()),
        "stored_metrics": record.metrics,
    }
    if "psf" in record.arrays:  # a partially coherent fit: also the coherent model's errors
        out["fourier_coherent"] = fourier_errors(record.obj, intensity, mask=mask, free_mask=free)
    if "prtf" in record.arrays:
        out["prtf"] = {"freq": record.arrays.get("prtf_freq"), "prtf": record.arrays["prtf"]}
    if truth_path is not None:
        truth = _load_truth(truth_path)
        if truth.shape != record.obj.shape:
            raise InvalidDataError(
                f"the truth has shape {truth.shape} but the object has shape {record.obj.shape}"
            )
        cmp = compare_to_truth(record.obj, truth)
        cmp.pop("aligned")
        out["truth"] = cmp
    out["seconds"] = time.monotonic() - start
    from reconstruction.cli.common import to_jsonable

    return to_jsonable(out)
