"""ESRF Data Format (EDF) reader: an ASCII header ``{ key = value ; ... }`` then raw binary data.

The header is padded to a multiple of 512 bytes and ends with ``}`` and a newline. We read the
first image of the file only (``Dim_1`` is the fast axis, x).
"""

from __future__ import annotations

import os

import numpy as np

from reconstruction.errors import UnreadableFileError
from reconstruction.io.limits import check_size

EDF_TYPES = {
    "unsignedbyte": "u1",
    "unsignedchar": "u1",
    "signedbyte": "i1",
    "signedchar": "i1",
    "unsignedshort": "u2",
    "signedshort": "i2",
    "unsignedinteger": "u4",
    "signedinteger": "i4",
    "unsignedlong": "u4",
    "signedlong": "i4",
    "unsigned64": "u8",
    "signed64": "i8",
    "floatvalue": "f4",
    "float": "f4",
    "floatieee32": "f4",
    "doublevalue": "f8",
    "double": "f8",
    "doubleieee64": "f8",
}
MAX_HEADER = 1 << 20


def looks_like_edf(head: bytes) -> bool:
    """True if the first bytes of a file look like an EDF header."""
    return head.lstrip(b" \r\n\t")[:1] == b"{" and b"=" in head[:4096]


def read_edf_header(path: str | os.PathLike) -> tuple[dict[str, str], int]:
    """Return the header as a dict (original key case) and the data offset in bytes."""
    with open(path, "rb") as fh:
        blob = fh.read(MAX_HEADER)
    end = blob.find(b"}")
    if not blob.lstrip()[:1] == b"{" or end < 0:
        raise UnreadableFileError(
            f"{os.fspath(path)}: corrupt EDF header (no '{{ ... }}' block found)"
        )
    offset = end + 1
    if blob[offset : offset + 1] == b"\r":
        offset += 1
    if blob[offset : offset + 1] == b"\n":
        offset += 1
    try:
        text = blob[blob.find(b"{") + 1 : end].decode("ascii")
    except UnicodeDecodeError as exc:
        raise UnreadableFileError(f"{os.fspath(path)}: corrupt EDF header (not ASCII)") from exc
    header: dict[str, str] = {}
    for item in text.split(";"):
        if "=" in item:
            key, _, value = item.partition("=")
            header[key.strip()] = value.strip()
    if offset % 512:
        raise UnreadableFileError(
            f"{os.fspath(path)}: corrupt EDF header: its size {offset} bytes is not a multiple of 512"
        )
    return header, offset


def edf_shape_dtype(header: dict[str, str], *, path: str) -> tuple[tuple[int, ...], np.dtype]:
    """Return the (Z, Y, X) or (Y, X) shape and the numpy dtype that an EDF header declares."""
    low = {k.lower(): v for k, v in header.items()}
    compression = low.get("compression", "none").lower()
    if compression not in ("", "none", "no"):
        raise UnreadableFileError(f"{path}: compressed EDF ({compression}) is not supported")
    kind = low.get("datatype", "").replace(" ", "").lower()
    if kind not in EDF_TYPES:
        raise UnreadableFileError(
            f"{path}: corrupt EDF header: unknown DataType {low.get('datatype')!r}"
        )
    order = low.get("byteorder", "LowByteFirst").lower()
    if order not in ("lowbytefirst", "highbytefirst"):
        raise UnreadableFileError(f"{path}: corrupt EDF header: unknown ByteOrder {order!r}")
    dtype = np.dtype(("<" if order == "lowbytefirst" else ">") + EDF_TYPES[kind])
    dims = []
    for key in ("dim_3", "dim_2", "dim_1"):
        if key in low:
            try:
                value = int(low[key])
            except ValueError as exc:
                raise UnreadableFileError(
                    f"{path}: corrupt EDF header: {key} = {low[key]!r}"
                ) from exc
            if value <= 0:
                raise UnreadableFileError(f"{path}: corrupt EDF header: {key} = {value}")
            dims.append(value)
    if "dim_1" not in low or "dim_2" not in low:
        raise UnreadableFileError(f"{path}: corrupt EDF header: Dim_1 and Dim_2 are required")
    return tuple(dims), dtype


def read_edf(path: str | os.PathLike, *, max_bytes: int) -> tuple[np.ndarray, dict[str, str]]:
    """Read the first image of an EDF file; return the array (native byte order) and the header."""
    name = os.fspath(path)
    header, offset = read_edf_header(path)
    shape, dtype = edf_shape_dtype(header, path=name)
    check_size(shape, dtype.itemsize, what=f"{name} (EDF image)", max_bytes=max_bytes)
    count = int(np.prod(shape))
    size = os.path.getsize(path)
    declared = header.get("Size") or header.get("size")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) != count * dtype.itemsize:
        raise UnreadableFileError(
            f"{name}: corrupt EDF header: Size = {declared} but the dimensions need "
            f"{count * dtype.itemsize} bytes"
        )
    if size < offset + count * dtype.itemsize:
        raise UnreadableFileError(
            f"{name}: truncated EDF file: {size - offset} data bytes, the header declares "
            f"{count * dtype.itemsize}"
        )
    data = np.fromfile(path, dtype=dtype, count=count, offset=offset).reshape(shape)
    return data.astype(dtype.newbyteorder("="), copy=False), header
