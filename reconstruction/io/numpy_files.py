"""NumPy ``.npy`` / ``.npz`` readers: headers checked before reading, never unpickling."""

from __future__ import annotations

import os
import struct
import tokenize
import zipfile
import zlib
from typing import BinaryIO

import numpy as np

from reconstruction.errors import UnreadableFileError
from reconstruction.io.limits import check_size

# what a corrupt .npy header or .npz archive can raise while being parsed
HEADER_ERRORS = (ValueError, OSError, EOFError, SyntaxError, tokenize.TokenError, struct.error)
ARCHIVE_ERRORS = (zipfile.BadZipFile, zlib.error, NotImplementedError, KeyError, *HEADER_ERRORS)

NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK\x03\x04"


def _header(fh: BinaryIO, *, name: str) -> tuple[tuple[int, ...], np.dtype]:
    """Read an npy header from an open binary stream: (shape, dtype)."""
    try:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, _fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        else:
            shape, _fortran, dtype = np.lib.format.read_array_header_2_0(fh)
    except HEADER_ERRORS as exc:
        raise UnreadableFileError(f"{name}: corrupt .npy header: {exc}") from exc
    if dtype.hasobject:
        raise UnreadableFileError(
            f"{name} holds Python objects, which would need pickle to load; we never unpickle "
            "(allow_pickle=False). Save the array with a numeric dtype (np.save(path, array.astype(np.float32)))"
        )
    return tuple(int(s) for s in shape), dtype


def npy_info(path: str | os.PathLike) -> tuple[tuple[int, ...], np.dtype]:
    """Return (shape, dtype) declared by an .npy file without reading its data."""
    with open(path, "rb") as fh:
        return _header(fh, name=os.fspath(path))


def read_npy(path: str | os.PathLike, *, max_bytes: int) -> np.ndarray:
    """Read an .npy file after checking its declared size against ``max_bytes``."""
    name = os.fspath(path)
    shape, dtype = npy_info(path)
    check_size(shape, dtype.itemsize, what=name, max_bytes=max_bytes)
    try:
        return np.load(path, allow_pickle=False)
    except HEADER_ERRORS as exc:
        raise UnreadableFileError(f"{name}: cannot read the .npy data (truncated?): {exc}") from exc


def npz_members(path: str | os.PathLike) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Return {key: (shape, dtype)} for every array of an .npz file, from headers only."""
    name = os.fspath(path)
    members: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with zf.open(info) as fh:
                    members[info.filename[:-4]] = _header(fh, name=f"{name}:{info.filename}")
    except UnreadableFileError:
        raise
    except ARCHIVE_ERRORS as exc:
        raise UnreadableFileError(f"{name}: corrupt or truncated .npz file: {exc}") from exc
    return members


def read_npz_member(path: str | os.PathLike, key: str, *, max_bytes: int) -> np.ndarray:
    """Read one array of an .npz file after checking its declared size."""
    name = os.fspath(path)
    members = npz_members(path)
    if key not in members:
        raise UnreadableFileError(f"{name} has no array {key!r}; it holds {sorted(members)}")
    shape, dtype = members[key]
    check_size(shape, dtype.itemsize, what=f"{name}:{key}", max_bytes=max_bytes)
    try:
        with np.load(path, allow_pickle=False) as npz:
            return npz[key]
    except ARCHIVE_ERRORS as exc:
        raise UnreadableFileError(f"{name}:{key}: cannot read the array (corrupt?): {exc}") from exc
