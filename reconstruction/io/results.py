"""Result files: ``write_result`` / ``read_result`` (CXI 1.6, see ``reconstruction.io.layout``)."""

from __future__ import annotations

import json
import math
import os

import h5py
import numpy as np

from reconstruction import __version__
from reconstruction.errors import InvalidDataError, UnreadableFileError
from reconstruction.io import layout
from reconstruction.io.atomic import atomic_path
from reconstruction.io.hdf5_safety import open_hdf5, read_dataset
from reconstruction.io.jsonable import dumps, jsonable
from reconstruction.io.limits import check_size, resolve_max_bytes
from reconstruction.io.prepared import _compression, write_cxi_entry
from reconstruction.io.types import ResultRecord


def write_result(path: str | os.PathLike, record: ResultRecord) -> None:
    """Write a reconstruction as a CXI 1.6 result file (readable by silx and PyNX), atomically.

    ``record.obj`` (Z, Y, X) or (Y, X) complex64, centred, on the grid of ``record.intensity``;
    ``support``, ``intensity`` and ``mask`` of the same shape. See ``reconstruction.io.layout``.
    """
    obj = np.asarray(record.obj).astype(np.complex64, copy=False)
    arrays = {
        "support": np.asarray(record.support, dtype=bool),
        "intensity": np.asarray(record.intensity, dtype=np.float32),
        "mask": np.asarray(record.mask, dtype=bool),
    }
    if obj.ndim not in (2, 3):
        raise InvalidDataError(f"the object must be 2D or 3D, got shape {obj.shape}")
    for name, arr in arrays.items():
        if arr.shape != obj.shape:
            raise InvalidDataError(
                f"the {name} has shape {arr.shape} but the object has shape {obj.shape}"
            )
    for name in list(record.curves) + list(record.arrays) + list(record.metrics):
        if not name or "/" in name or name.startswith("."):
            raise InvalidDataError(f"invalid curve/array/metric name {name!r} (no '/' allowed)")
    provenance = {"program_version": __version__, **jsonable(record.provenance)}
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        entry = write_cxi_entry(f)
        entry.attrs["provenance_json"] = json.dumps(provenance)
        for key, value in provenance.items():
            if key in ("provenance_json", "NX_class", "default"):
                continue
            if isinstance(value, (str, int, float, bool)):
                entry.attrs[key] = value
            elif value is not None:
                entry.attrs[key] = json.dumps(value)
        image = f.create_group(layout.IMAGE)
        image.attrs["NX_class"] = "NXdata"
        image.attrs["signal"] = "data"
        image.attrs["interpretation"] = "image"
        image.create_dataset("data", data=obj, **_compression(obj))
        image.create_dataset("mask", data=arrays["support"], **_compression(arrays["support"]))
        image["is_fft_shifted"] = 0
        process = f.create_group(layout.PROCESS)
        process["command"] = record.command
        process["algorithm"] = record.algorithm
        process["configuration"] = dumps(record.config)
        process["program"] = layout.PROGRAM
        process["version"] = __version__
        process["timings"] = dumps(record.timings)
        curves = f.create_group(layout.CURVES)
        for name, curve in record.curves.items():
            curves[name] = np.asarray(curve, dtype=np.float64)
        extra = f.create_group(layout.EXTRA_ARRAYS)
        for name, arr in record.arrays.items():
            arr = np.asarray(arr)
            extra.create_dataset(name, data=arr, **_compression(arr))
        data1 = entry.create_group("data_1")
        data1.attrs["NX_class"] = "NXdata"
        data1.attrs["signal"] = "data"
        f[layout.DATA_LINK] = h5py.SoftLink(layout.IMAGE_DATA)
        data2 = entry.create_group("data_2")
        data2.attrs["NX_class"] = "NXdata"
        data2.attrs["signal"] = "data"
        f.create_dataset(layout.PREPARED_INTENSITY, data=arrays["intensity"], **_compression(obj))
        f.create_dataset(layout.PREPARED_MASK, data=arrays["mask"], **_compression(obj))
        metrics = f.create_group(layout.RESULT_METRICS)
        for name, value in record.metrics.items():
            value = jsonable(value)
            if isinstance(value, bool):
                metrics[name] = value
            elif isinstance(value, (int, float)) or value is None:
                metrics[name] = float("nan") if value is None else float(value)
            else:
                metrics[name] = json.dumps(value)
                metrics[name].attrs["json"] = True


def read_result(path: str | os.PathLike, *, max_bytes: int | None = None) -> ResultRecord:
    """Read a result file written by ``write_result``; every field round-trips."""
    name = os.fspath(path)
    limit = resolve_max_bytes(max_bytes)
    with open_hdf5(path) as (f, _tree):
        if not is_result_file(f):
            raise UnreadableFileError(
                f"{name} is not a result file of this program (no {layout.PROCESS}/program = "
                f"{layout.PROGRAM!r}); read PyNX / cohere objects with load_object"
            )

        def read(p: str, what: str) -> np.ndarray:
            dset = f.get(p)
            if not isinstance(dset, h5py.Dataset) or dset.shape is None:
                raise UnreadableFileError(f"{name}: missing {p} ({what})")
            check_size(dset.shape, dset.dtype.itemsize, what=f"{name}:{p}", max_bytes=limit)
            return np.asarray(read_dataset(dset, what=what))

        obj = read(layout.IMAGE_DATA, "object").astype(np.complex64)
        support = read(layout.IMAGE_MASK, "support").astype(bool)
        intensity = read(layout.PREPARED_INTENSITY, "intensity").astype(np.float32)
        mask = read(layout.PREPARED_MASK, "mask").astype(bool)
        process = f[layout.PROCESS]
        curves = {k: read(f"{layout.CURVES}/{k}", "curve") for k in _members(f, layout.CURVES)}
        arrays = {
            k: read(f"{layout.EXTRA_ARRAYS}/{k}", "array") for k in _members(f, layout.EXTRA_ARRAYS)
        }
        metrics = {}
        for k in _members(f, layout.RESULT_METRICS):
            d = f[f"{layout.RESULT_METRICS}/{k}"]
            if not isinstance(d, h5py.Dataset) or d.shape != ():
                raise UnreadableFileError(f"{name}: metric {k} is not a scalar dataset")
            value = d[()]
            if d.attrs.get("json"):
                metrics[k] = json.loads(_text(value))
            elif isinstance(value, (np.bool_, bool)):
                metrics[k] = bool(value)
            else:
                number = float(value)
                metrics[k] = None if math.isnan(number) else number
        provenance = json.loads(_text(f[layout.ENTRY].attrs.get("provenance_json", "{}")))
        return ResultRecord(
            obj=obj,
            support=support,
            intensity=intensity,
            mask=mask,
            algorithm=_scalar_text(process, "algorithm"),
            config=json.loads(_scalar_text(process, "configuration") or "{}"),
            curves=curves,
            metrics=metrics,
            timings=json.loads(_scalar_text(process, "timings") or "{}"),
            command=_scalar_text(process, "command"),
            provenance=provenance,
            arrays=arrays,
        )


def _members(f: h5py.File, path: str) -> list[str]:
    """Names in the group at ``path`` (empty if there is no such group)."""
    group = f.get(path)
    return list(group) if isinstance(group, h5py.Group) else []


def _scalar_text(group: h5py.Group, name: str) -> str:
    """The text of a scalar string dataset ``name`` of ``group``, or ''."""
    d = group.get(name)
    if isinstance(d, h5py.Dataset) and d.shape == ():
        return _text(d[()])
    return ""


def is_result_file(handle: h5py.File) -> bool:
    """True if an open HDF5 file is a result file of this program."""
    process = handle.get(layout.PROCESS)
    if not isinstance(process, h5py.Group):
        return False
    return _scalar_text(process, "program") == layout.PROGRAM and isinstance(
        handle.get(layout.PREPARED_INTENSITY), h5py.Dataset
    )


def _text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray) and value.shape == ():
        return _text(value[()])
    return str(value)
