"""Workflows used by the CLI (``info``, ``prepare``) and by the web app's Celery tasks.

Each returns a JSON-serialisable summary dict and raises ``ReconstructionError`` subclasses for
user errors.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from reconstruction.io import layout
from reconstruction.io.hdf5_safety import open_hdf5
from reconstruction.io.jsonable import jsonable
from reconstruction.io.load import load_data, read_diffraction, sniff_format
from reconstruction.io.numpy_files import npy_info, npz_members
from reconstruction.io.objects import load_object
from reconstruction.io.prepared import write_prepared
from reconstruction.io.results import is_result_file
from reconstruction.io.types import DiffractionData, Metadata
from reconstruction.preprocess import estimate_oversampling, find_peak, prepare
from reconstruction.progress import CancelLike, ProgressCallback, ProgressEvent, check, report


def metadata_summary(meta: Metadata) -> dict[str, Any]:
    """Metadata as a JSON-friendly dict (rocking angles summarised, SI units)."""
    out = {
        k: v
        for k, v in dataclasses.asdict(meta).items()
        if k not in ("rocking_angles_deg", "extra")
    }
    out["axes"] = list(meta.axes) if meta.axes else None
    angles = meta.rocking_angles_deg
    if angles is not None and len(angles):
        angles = np.asarray(angles, dtype=float)
        out["rocking_angles_deg"] = {
            "count": int(angles.size),
            "first": float(angles[0]),
            "last": float(angles[-1]),
            "step": float(np.median(np.diff(angles))) if angles.size > 1 else 0.0,
        }
    else:
        out["rocking_angles_deg"] = None
    out["extra"] = {k: v for k, v in meta.extra.items() if k != "edf_header"}
    return jsonable(out)


def is_prepared(data: DiffractionData) -> bool:
    """True if ``data`` was read from a file this program prepared (or a result file)."""
    return bool(data.provenance.loaded_from)


def _object_kind(path: str | os.PathLike, fmt: str, dataset_path: str | None) -> bool:
    """True if the file holds a reconstructed (complex) object rather than intensities."""
    if dataset_path:
        return False
    if fmt == "npy":
        return np.issubdtype(npy_info(path)[1], np.complexfloating)
    if fmt == "npz":
        members = npz_members(path)
        return any(np.issubdtype(d, np.complexfloating) for _, d in members.values()) and not any(
            k in members for k in ("data", "intensity")
        )
    if fmt == "hdf5":
        with open_hdf5(path) as (f, _tree):
            if is_result_file(f):
                return True
            dset = f.get(layout.IMAGE_DATA)
            return isinstance(dset, h5py.Dataset) and np.issubdtype(dset.dtype, np.complexfloating)
    return False


def inspect_file(path: str | os.PathLike, *, dataset_path: str | None = None) -> dict[str, Any]:
    """Describe a data file without changing it.

    Returns a dict with ``kind`` ("diffraction-3d" | "diffraction-2d" | "frame-stack" |
    "object"), ``format``, ``shape``, ``dtype``, ``mask`` statistics, ``metadata`` (SI units),
    ``peak`` position, estimated ``oversampling`` per axis, ``warnings`` and more.
    A stack of 2D frames (ptychography) is described, not refused.
    """
    start = time.monotonic()
    fmt = sniff_format(path)
    p = Path(path)
    out: dict[str, Any] = {"path": str(p.resolve()), "size_bytes": p.stat().st_size, "format": fmt}
    if _object_kind(path, fmt, dataset_path):
        obj = load_object(path)
        amplitude = np.abs(obj.obj)
        out.update(
            kind="object",
            format=obj.provenance.source_format,
            sha256=obj.provenance.source_sha256,
            shape=list(obj.obj.shape),
            dtype=str(obj.obj.dtype),
            amplitude_max=float(amplitude.max()),
            support_fraction=None if obj.support is None else float(obj.support.mean()),
            modes_weights=None if obj.modes_weights is None else obj.modes_weights.tolist(),
            metadata=metadata_summary(obj.metadata),
            warnings=list(obj.provenance.warnings),
            steps=obj.provenance.steps,
        )
        out["seconds"] = round(time.monotonic() - start, 3)
        return jsonable(out)

    data = read_diffraction(path, dataset_path=dataset_path, allow_frame_stack=True)
    load_step = next((s for s in data.provenance.steps if s.get("step") == "load"), {})
    stack = data.metadata.extra.get("frame_stack")
    intensity, mask = data.intensity, data.mask
    if stack:
        kind = "frame-stack"
        frame_sum = np.where(mask, 0.0, intensity).sum(axis=0)
        frame_mask = mask.all(axis=0)
        peak = find_peak(frame_sum, frame_mask)
        oversampling = estimate_oversampling(frame_sum, frame_mask)
        out.update(
            n_frames=int(intensity.shape[0]),
            frame_shape=list(intensity.shape[1:]),
            frame_stack_reason=stack,
            usable_for_phasing=False,
        )
    else:
        kind = f"diffraction-{intensity.ndim}d"
        peak = find_peak(intensity, mask, method="auto")  # the centre `prepare` will use
        oversampling = estimate_oversampling(intensity, mask)
        out["usable_for_phasing"] = True
    unmasked = intensity[~mask]
    out.update(
        kind=kind,
        format="prepared-cxi" if is_prepared(data) else data.provenance.source_format,
        source_format=data.provenance.source_format,
        sha256=data.provenance.loaded_sha256 or data.provenance.source_sha256,
        source_sha256=data.provenance.source_sha256,
        prepared=is_prepared(data),
        dataset_path=data.provenance.dataset_path,
        shape=list(intensity.shape),
        source_shape=load_step.get("shape", list(intensity.shape)),
        dtype=str(intensity.dtype)
        if is_prepared(data)
        else load_step.get("dtype", str(intensity.dtype)),
        mask={"masked": int(mask.sum()), "fraction": float(mask.mean())},
        intensity={
            "max": float(unmasked.max()) if unmasked.size else 0.0,
            "total": float(unmasked.sum(dtype=np.float64)),
            "mean": float(unmasked.mean()) if unmasked.size else 0.0,
        },
        peak=list(peak),
        oversampling=list(oversampling),
        metadata=metadata_summary(data.metadata),
        warnings=list(data.provenance.warnings),
        steps=data.provenance.steps,
    )
    if intensity.ndim == 3 and not stack:
        out["geometry"] = geometry_summary(data.metadata, intensity.shape)
    out["seconds"] = round(time.monotonic() - start, 3)
    return jsonable(out)


def geometry_summary(metadata: Metadata, shape: tuple[int, ...]) -> dict[str, Any]:
    """Whether a 3D scan's diffractometer geometry is known (lab frame and strain possible):
    ``available`` with the diffractometer, 2θ (deg), rocking circle and step (deg) and the
    largest angle (deg) of the data grid from orthogonal, else ``reason``."""
    from reconstruction.errors import ReconstructionError
    from reconstruction.geometry.workflow import lab_basis_m

    try:
        _, info = lab_basis_m(metadata, tuple(shape))
    except ReconstructionError as exc:
        return {"available": False, "reason": str(exc)}
    keys = ("diffractometer_title", "two_theta_deg", "rocking_circle", "rocking_step_deg", "max_shear_deg")
    return {"available": True, **{k: info[k] for k in keys}}


def prepare_file(
    input_path: str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    dataset_path: str | None = None,
    shape: int | tuple[int, ...] | str = 64,
    oversampling: float | tuple[float, ...] | None = 3.0,
    threshold: float = 0.0,
    peak: str = "auto",
    progress: ProgressCallback | None = None,
    cancel: CancelLike | None = None,
) -> dict[str, Any]:
    """Read a raw data file, prepare it (see ``reconstruction.preprocess.prepare``), write CXI.

    Returns a summary: ``out_path``, ``seconds``, ``shape``, ``oversampling_before`` /
    ``oversampling_after`` (per axis), ``bin_factors``, ``peak_position``, ``masked_fraction``,
    ``input_sha256``, ``warnings``. Refuses frame stacks (``NotAVolumeError``).
    """
    start = time.monotonic()
    report(progress, ProgressEvent(0.0, stage="load", message=f"reading {os.fspath(input_path)}"))
    data = load_data(input_path, dataset_path=dataset_path)
    check(cancel)
    report(progress, ProgressEvent(0.4, stage="prepare"))
    prepared = prepare(data, shape=shape, oversampling=oversampling, threshold=threshold, peak=peak)
    check(cancel)
    report(progress, ProgressEvent(0.8, stage="write"))
    write_prepared(out_path, prepared)
    extra = prepared.metadata.extra
    summary = {
        "out_path": str(Path(out_path).resolve()),
        "seconds": round(time.monotonic() - start, 3),
        "input_path": str(Path(input_path).resolve()),
        "input_sha256": data.provenance.source_sha256,
        "input_shape": list(data.shape),
        "shape": list(prepared.shape),
        "oversampling_before": extra["oversampling_before"],
        "oversampling_after": extra["oversampling_after"],
        "oversampling_target": list(oversampling)
        if isinstance(oversampling, (list, tuple))
        else None
        if oversampling is None
        else float(oversampling),
        "bin_factors": extra["bin_factors"],
        "peak_position": extra["peak_position"],
        "masked_fraction": float(prepared.mask.mean()),
        "warnings": list(prepared.provenance.warnings),
    }
    report(progress, ProgressEvent(1.0, stage="done"))
    return jsonable(summary)


def default_phasing_shape(ndim: int) -> int | str:
    """Grid a raw pattern is phased on by default: 64 per axis in 3D (the network's box, so
    that phasing and prediction results compare voxel by voxel and a 600-iteration run takes
    seconds), the whole measured pattern ("full") in 2D, where that costs milliseconds."""
    return 64 if ndim == 3 else "full"


def load_prepared(
    path: str | os.PathLike,
    *,
    shape: int | tuple[int, ...] | str | None = 64,
    oversampling: float | tuple[float, ...] | None = 3.0,
    dataset_path: str | None = None,
    threshold: float = 0.0,
) -> DiffractionData:
    """Return phasing-ready data: a file we prepared as is, a raw file prepared on the fly
    (``shape`` None: ``default_phasing_shape``; ``oversampling`` None: no binning)."""
    data = load_data(path, dataset_path=dataset_path)
    return as_prepared(data, shape=shape, oversampling=oversampling, threshold=threshold)


def as_prepared(
    data: DiffractionData,
    *,
    shape: int | tuple[int, ...] | str | None = 64,
    oversampling: float | tuple[float, ...] | None = 3.0,
    threshold: float = 0.0,
) -> DiffractionData:
    """``data`` as is when read from a file we prepared, else prepared (``shape`` None:
    ``default_phasing_shape``; ``oversampling`` None: no binning)."""
    if is_prepared(data):
        return data
    if shape is None:
        shape = default_phasing_shape(data.intensity.ndim)
    return prepare(data, shape=shape, oversampling=oversampling, threshold=threshold)


def load_prepared_on_grid(
    path: str | os.PathLike, *, shape: tuple[int, ...], provenance: dict | None = None
) -> DiffractionData:
    """Data on a result's grid: a prepared file as is, a raw file prepared to ``shape`` (pixels
    per axis) and binned as that result's phasing did (its provenance's ``prepare_oversampling``:
    a target oversampling, or "none" for no binning; default 3)."""
    binning = (provenance or {}).get("prepare_oversampling", 3.0)
    return load_prepared(
        path, shape=tuple(shape), oversampling=None if binning == "none" else float(binning)
    )


__all__ = [
    "as_prepared",
    "default_phasing_shape",
    "inspect_file",
    "is_prepared",
    "load_prepared",
    "load_prepared_on_grid",
    "metadata_summary",
    "prepare_file",
]
