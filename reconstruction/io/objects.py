"""``load_object``: reconstructed complex objects from PyNX, cohere and our own result files."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from reconstruction.errors import AmbiguousDataError, InvalidDataError, UnreadableFileError
from reconstruction.io import layout
from reconstruction.io.hdf5_safety import open_hdf5, read_dataset
from reconstruction.io.limits import check_size, resolve_max_bytes
from reconstruction.io.load import sha256_of, sniff_format
from reconstruction.io.numpy_files import npy_info, npz_members, read_npy, read_npz_member
from reconstruction.io.results import _text, is_result_file, read_result
from reconstruction.io.types import Metadata, ObjectData, Provenance

OBJECT_KEYS = ("obj", "object", "image", "data")


def load_object(path: str | os.PathLike, *, max_bytes: int | None = None) -> ObjectData:
    """Read a reconstructed object.

    Accepts our result files, PyNX CXI/HDF5 results (``/entry_1/image_1/data``, optionally with
    a leading modes axis and ``/entry_1/data_2/data`` mode weights) and cohere ``.npy`` arrays
    (a ``support.npy`` next to ``image.npy`` is used as support) or ``.npz`` with a complex array.

    Returns
    -------
    ObjectData
        obj (Z, Y, X) or (Y, X) complex64 (the first mode), support bool or None,
        modes_weights (n_modes,) or None.
    """
    name = os.fspath(path)
    limit = resolve_max_bytes(max_bytes)
    fmt = sniff_format(path)
    provenance = Provenance(source_path=str(Path(path).resolve()), source_sha256=sha256_of(path))
    metadata = Metadata()
    support = None
    weights = None
    if fmt == "hdf5":
        with open_hdf5(path) as (f, _tree):
            if is_result_file(f):
                fmt = "result-cxi"
            else:
                obj, support, weights, metadata = _pynx(f, name=name, limit=limit)
                fmt = "pynx-result"
        if fmt == "result-cxi":
            record = read_result(path, max_bytes=limit)
            obj, support = record.obj, record.support
            metadata.extra.update(
                {
                    "algorithm": record.algorithm,
                    "metrics": record.metrics,
                    "provenance": record.provenance,
                }
            )
    elif fmt == "npy":
        obj = read_npy(path, max_bytes=limit)
        support_path = Path(path).with_name("support.npy")
        if support_path.exists() and support_path != Path(path):
            shape, _ = npy_info(support_path)
            if tuple(shape) == tuple(obj.shape):
                support = read_npy(support_path, max_bytes=limit) != 0
                provenance.add_step("support_from_sibling", path=str(support_path))
        fmt = "cohere-npy"
    elif fmt == "npz":
        members = npz_members(path)
        key = next((k for k in OBJECT_KEYS if k in members), None)
        if key is None:
            complex_ = [k for k, (_, d) in members.items() if np.issubdtype(d, np.complexfloating)]
            if len(complex_) != 1:
                raise AmbiguousDataError(
                    f"{name}: cannot tell which array is the object; keys {sorted(members)} "
                    "(name it 'obj')"
                )
            key = complex_[0]
        obj = read_npz_member(path, key, max_bytes=limit)
        if "support" in members:
            support = read_npz_member(path, "support", max_bytes=limit) != 0
    else:
        raise InvalidDataError(
            f"{name} is an EDF image; a reconstructed object is complex (HDF5/CXI, .npy, .npz)"
        )

    obj = np.asarray(obj)
    if not np.issubdtype(obj.dtype, np.complexfloating):
        if np.issubdtype(obj.dtype, np.floating) or np.issubdtype(obj.dtype, np.integer):
            provenance.warnings.append(
                "the object is real-valued; taken as an amplitude with zero phase"
            )
        else:
            raise InvalidDataError(f"{name}: an object must be numeric, got dtype {obj.dtype}")
    if obj.ndim == 4 or (obj.ndim == 3 and weights is not None and obj.shape[0] <= len(weights)):
        provenance.add_step("first_mode", n_modes=int(obj.shape[0]))
        obj = obj[0]
    while obj.ndim > 2 and obj.shape[0] == 1:
        obj = obj[0]
    if obj.ndim not in (2, 3):
        raise InvalidDataError(f"{name}: expected a 2D or 3D object, got shape {obj.shape}")
    if support is not None:
        support = np.asarray(support, dtype=bool)
        while support.ndim > obj.ndim and support.shape[0] == 1:
            support = support[0]
        if support.ndim == obj.ndim + 1:
            support = support[0]
        if support.shape != obj.shape:
            provenance.warnings.append(
                f"ignored a support of shape {support.shape} (object {obj.shape})"
            )
            support = None
    provenance.source_format = fmt
    return ObjectData(
        obj=obj.astype(np.complex64),
        support=support,
        modes_weights=None if weights is None else np.asarray(weights, dtype=np.float32),
        metadata=metadata,
        provenance=provenance,
    )


def _pynx(f: h5py.File, *, name: str, limit: int):
    """Read a PyNX result: /entry_1/image_1/data (+ mask = support, data_2/data = mode weights)."""
    dset = f.get(layout.IMAGE_DATA)
    if not isinstance(dset, h5py.Dataset) or dset.shape is None:
        complex_ = []

        def visit(path, obj):
            if (
                isinstance(obj, h5py.Dataset)
                and obj.shape is not None
                and np.issubdtype(obj.dtype, np.complexfloating)
            ):
                complex_.append(path)

        f.visititems(visit)
        if len(complex_) != 1:
            raise UnreadableFileError(
                f"{name} has no {layout.IMAGE_DATA} (PyNX/CXI object) and "
                f"{len(complex_)} complex datasets {complex_[:5]}: cannot tell which is the object"
            )
        dset = f[complex_[0]]
    check_size(dset.shape, dset.dtype.itemsize * 2, what=f"{name}:{dset.name}", max_bytes=limit)
    obj = read_dataset(dset, what="the object")
    support = None
    mask = dset.parent.get("mask")
    if isinstance(mask, h5py.Dataset) and mask.shape is not None:
        check_size(mask.shape, mask.dtype.itemsize, what=f"{name}:{mask.name}", max_bytes=limit)
        support = np.asarray(read_dataset(mask, what="the support")) != 0
    weights = None
    w = f.get(f"{layout.ENTRY}/data_2/data")
    if isinstance(w, h5py.Dataset) and w.shape is not None and w.ndim == 1 and w.size < 10_000:
        weights = np.asarray(w[()])
    metadata = Metadata()
    for key, p in (
        ("command", f"{dset.parent.name}/process_1/command"),
        ("program_name", f"{layout.ENTRY}/program_name"),
    ):
        d = f.get(p)
        if isinstance(d, h5py.Dataset) and d.shape == ():
            metadata.extra[key] = _text(d[()])
    return obj, support, weights, metadata
