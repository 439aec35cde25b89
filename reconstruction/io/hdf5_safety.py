"""Open HDF5 files defensively: refuse anything that points outside the file, before reading data.

HDF5 can make a file read other files: external links, datasets with external raw storage,
and virtual datasets whose sources live in other files. We never follow them: the whole tree is
inspected link by link (``getlink=True``) and the file is refused if any is present.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import h5py

from reconstruction.errors import HostileFileError, ReconstructionError, UnreadableFileError

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
MAX_OBJECTS = 200_000


@dataclass
class Hdf5Tree:
    """What a walk of the file found: its real datasets (by path) and soft links (path -> target)."""

    datasets: dict[str, h5py.Dataset] = field(default_factory=dict)
    soft_links: dict[str, str] = field(default_factory=dict)


def is_hdf5(path: str | os.PathLike) -> bool:
    """True if the file carries the HDF5 signature (at offset 0 or a user-block boundary)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
            if head == HDF5_SIGNATURE:
                return True
            size = os.fstat(fh.fileno()).st_size
            offset = 512
            while offset + 8 <= min(size, 1 << 20):
                fh.seek(offset)
                if fh.read(8) == HDF5_SIGNATURE:
                    return True
                offset *= 2
    except OSError:
        return False
    return False


@contextmanager
def open_hdf5(path: str | os.PathLike) -> Iterator[tuple[h5py.File, Hdf5Tree]]:
    """Open ``path`` read-only, check it is self-contained, and yield ``(file, tree)``.

    Raises ``UnreadableFileError`` for corrupt or truncated files (also for HDF5 read errors
    raised inside the ``with`` block) and ``HostileFileError`` for external links, external
    storage and virtual datasets reading other files.
    """
    try:
        handle = h5py.File(path, "r", locking=False)
    except OSError as exc:
        raise UnreadableFileError(
            f"{os.fspath(path)} is not a readable HDF5 file (corrupt or truncated?): {_short(exc)}"
        ) from exc
    try:
        try:
            tree = walk(handle)
        except (OSError, KeyError, RuntimeError, ValueError) as exc:
            raise UnreadableFileError(
                f"{os.fspath(path)}: the HDF5 structure cannot be read (corrupt or truncated?): "
                f"{_short(exc)}"
            ) from exc
        try:
            yield handle, tree
        except ReconstructionError:
            raise
        except (OSError, RuntimeError, KeyError, ValueError) as exc:  # json errors are ValueErrors
            raise UnreadableFileError(
                f"{os.fspath(path)}: corrupt HDF5 content (truncated or damaged file?): {_short(exc)}"
            ) from exc
    finally:
        handle.close()


def walk(handle: h5py.File) -> Hdf5Tree:
    """Visit every link of the file without reading data; refuse links leaving the file."""
    tree = Hdf5Tree()
    hostile: list[str] = []
    seen: set = set()
    stack: list[tuple[str, h5py.Group]] = [("", handle)]
    count = 0
    while stack:
        prefix, group = stack.pop()
        for name in group:
            count += 1
            if count > MAX_OBJECTS:
                raise HostileFileError(
                    f"the file has more than {MAX_OBJECTS} HDF5 objects; refusing to scan it"
                )
            path = f"{prefix}/{name}"
            link = group.get(name, getlink=True)
            if isinstance(link, h5py.ExternalLink):
                hostile.append(f"{path} is an external link to {link.filename}:{link.path}")
                continue
            if isinstance(link, h5py.SoftLink):
                tree.soft_links[path] = link.path
                continue
            if not isinstance(link, h5py.HardLink):
                hostile.append(f"{path} is a user-defined link")
                continue
            obj = group[name]
            key = obj.id.__hash__()
            if isinstance(obj, h5py.Group):
                if key not in seen:
                    seen.add(key)
                    stack.append((path, obj))
            elif isinstance(obj, h5py.Dataset):
                problem = _dataset_problem(obj)
                if problem:
                    hostile.append(f"{path} {problem}")
                elif obj.shape is not None:  # a null dataspace holds nothing
                    tree.datasets[path] = obj
    if hostile:
        listed = "; ".join(hostile[:5]) + (
            f"; and {len(hostile) - 5} more" if len(hostile) > 5 else ""
        )
        raise HostileFileError(
            "the file points outside itself, which we never follow: "
            f"{listed}. Copy the data into one self-contained HDF5 file (e.g. with h5copy or "
            "h5py) and load that."
        )
    return tree


def _dataset_problem(dset: h5py.Dataset) -> str:
    """Describe how a dataset would read other files, or return ''."""
    external = dset.external
    if external:
        files = ", ".join(str(entry[0]) for entry in external[:3])
        return f"stores its data in external raw files ({files})"
    if dset.is_virtual:
        sources = {vs.file_name for vs in dset.virtual_sources()}
        outside = sorted(s for s in sources if s != ".")
        if outside:
            return f"is a virtual dataset reading {', '.join(outside[:3])}"
    return ""


def resolve_dataset(handle: h5py.File, path: str) -> h5py.Dataset | None:
    """Return the dataset at ``path`` (soft links inside the file followed), or None.

    None too for a dataset with a null dataspace (``h5py.Empty``), which holds no data.
    """
    try:
        obj = handle.get(path)
    except (KeyError, OSError, RuntimeError, ValueError):
        return None
    if not isinstance(obj, h5py.Dataset) or obj.shape is None:
        return None
    return obj


def read_dataset(dset: h5py.Dataset, *, what: str):
    """Read a whole dataset, turning HDF5 read errors into ``UnreadableFileError``."""
    try:
        return dset[()]
    except (OSError, RuntimeError, ValueError) as exc:
        raise UnreadableFileError(
            f"cannot read {what} {dset.name} (truncated file, or a compression filter "
            f"that is not installed?): {_short(exc)}"
        ) from exc


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
