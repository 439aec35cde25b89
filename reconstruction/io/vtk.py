"""Legacy VTK files (structured points) of 3D scalar fields, for ParaView, VisIt and Mayavi."""

from __future__ import annotations

import os
import re

import numpy as np

from reconstruction.errors import InvalidDataError
from reconstruction.io.atomic import atomic_path

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def vtk_bytes(
    fields: dict[str, np.ndarray],
    *,
    spacing: float | tuple[float, float, float],
    title: str = "reconstruction",
) -> bytes:
    """A binary legacy VTK structured-points file of 3D scalar ``fields`` (same (z, y, x)
    shape; 2D (y, x) fields become one slice), cells of ``spacing`` (one value, or per axis
    (z, y, x); any length unit), the grid's centre N // 2 at the origin."""
    fields = {k: (v[None] if np.ndim(v) == 2 else v) for k, v in fields.items()}
    shapes = {np.shape(v) for v in fields.values()}
    if not fields or len(shapes) != 1 or len(next(iter(shapes))) != 3:
        raise InvalidDataError("VTK export needs one or more 2D or 3D fields of the same shape")
    steps = tuple(float(v) for v in np.broadcast_to(np.asarray(spacing, dtype=np.float64), (3,)))
    if not all(np.isfinite(v) and v > 0 for v in steps):
        raise InvalidDataError(f"VTK spacing must be > 0, got {spacing}")
    nz, ny, nx = next(iter(shapes))
    sz, sy, sx = steps
    origin = [-(n // 2) * d for n, d in ((nx, sx), (ny, sy), (nz, sz))]
    header = (
        "# vtk DataFile Version 3.0\n"
        f"{title.replace(chr(10), ' ')[:200]}\n"
        "BINARY\n"
        "DATASET STRUCTURED_POINTS\n"
        f"DIMENSIONS {nx} {ny} {nz}\n"
        f"ORIGIN {origin[0]:.9g} {origin[1]:.9g} {origin[2]:.9g}\n"
        f"SPACING {sx:.9g} {sy:.9g} {sz:.9g}\n"
        f"POINT_DATA {nx * ny * nz}\n"
    )
    parts = [header.encode("ascii")]
    for name, values in fields.items():
        if not _NAME.match(name):
            raise InvalidDataError(f"bad VTK field name {name!r}")
        parts.append(f"SCALARS {name} float 1\nLOOKUP_TABLE default\n".encode("ascii"))
        parts.append(np.ascontiguousarray(values, dtype=">f4").tobytes())  # x fastest
        parts.append(b"\n")
    return b"".join(parts)


def write_vtk(
    path: str | os.PathLike,
    fields: dict[str, np.ndarray],
    *,
    spacing: float | tuple[float, float, float],
    title: str = "reconstruction",
) -> None:
    """Write ``vtk_bytes(fields, spacing=, title=)`` to ``path`` atomically."""
    payload = vtk_bytes(fields, spacing=spacing, title=title)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write(payload)


def read_vtk(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], float]:
    """Read back a file of ``write_vtk``: ({name: (z, y, x) float32 array}, spacing)."""
    with open(path, "rb") as handle:
        data = handle.read()
    lines = data.split(b"\n", 8)
    dims = [int(v) for v in lines[4].split()[1:4]]
    spacing = float(lines[6].split()[1])  # along x
    rest, n = lines[8], dims[0] * dims[1] * dims[2]
    fields: dict[str, np.ndarray] = {}
    while rest.startswith(b"SCALARS"):
        head, _, rest = rest.partition(b"\n")
        _, _, rest = rest.partition(b"\n")  # LOOKUP_TABLE
        values = np.frombuffer(rest[: 4 * n], dtype=">f4").astype(np.float32)
        fields[head.split()[1].decode()] = values.reshape(dims[2], dims[1], dims[0])
        rest = rest[4 * n + 1:]
    return fields, spacing


__all__ = ["read_vtk", "vtk_bytes", "write_vtk"]
