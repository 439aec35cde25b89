"""``load_data``: one entry point for diffraction data in every format we read."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from reconstruction.errors import (
    AmbiguousDataError,
    InvalidDataError,
    NotAVolumeError,
    UnreadableFileError,
)
from reconstruction.io.corrections import apply_dark_flat
from reconstruction.io.edf import looks_like_edf, read_edf
from reconstruction.io.hdf5_reader import NOT_DATA, RawDiffraction, read_hdf5_diffraction
from reconstruction.io.hdf5_safety import is_hdf5
from reconstruction.io.limits import resolve_max_bytes
from reconstruction.io.numpy_files import (
    NPY_MAGIC,
    ZIP_MAGIC,
    npz_members,
    read_npy,
    read_npz_member,
)
from reconstruction.io.sanitize import mask_from_cxi, sanitize_intensity, squeeze_like
from reconstruction.io.types import DiffractionData, Metadata, Provenance

FORMATS = "CXI / HDF5 / NeXus (.cxi .h5 .nxs), NumPy (.npy .npz) or EDF (.edf)"
PREFERRED_KEYS = ("data", "intensity", "intensities", "iobs")


def sha256_of(path: str | os.PathLike) -> str:
    """Return the hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sniff_format(path: str | os.PathLike) -> str:
    """Return "hdf5", "npy", "npz" or "edf" from a file's first bytes; raise if unknown or empty."""
    name = os.fspath(path)
    p = Path(path)
    if not p.exists():
        raise UnreadableFileError(f"{name}: no such file")
    if not p.is_file():
        raise UnreadableFileError(f"{name} is not a regular file")
    if p.stat().st_size == 0:
        raise UnreadableFileError(f"{name} is empty (0 bytes)")
    with open(p, "rb") as fh:
        head = fh.read(4096)
    if is_hdf5(p):
        return "hdf5"
    if head.startswith(NPY_MAGIC):
        return "npy"
    if head.startswith(ZIP_MAGIC):
        return "npz"
    if looks_like_edf(head):
        return "edf"
    if p.suffix.lower() in (".h5", ".hdf5", ".cxi", ".nxs", ".nx5", ".hdf"):
        raise UnreadableFileError(
            f"{name} has an HDF5 extension but no HDF5 signature: it is not HDF5 (corrupt, or "
            "truncated at the start?)"
        )
    raise UnreadableFileError(f"{name} is not in a format we read: expected {FORMATS}")


def load_data(
    path: str | os.PathLike, *, dataset_path: str | None = None, max_bytes: int | None = None
) -> DiffractionData:
    """Read measured diffraction intensities from a file.

    Parameters
    ----------
    path : CXI / HDF5 / NeXus, .npy, .npz, .edf, or a file we prepared (returned as written)
    dataset_path : path of the dataset inside an HDF5 file, or the key of an .npz; auto if None
    max_bytes : refuse datasets larger than this in memory (default ``$CDI_MAX_DATASET_BYTES``
        or 4 GiB), checked before reading

    Returns
    -------
    DiffractionData
        intensity (Z, Y, X) or (Y, X) float32 counts >= 0, mask bool (True = excluded), metadata
        in SI units, provenance with the file's SHA-256 and every correction applied.

    Raises
    ------
    UnreadableFileError, HostileFileError, DataTooLargeError, AmbiguousDataError,
    InvalidDataError, NotAVolumeError (a stack of 2D frames, e.g. ptychography)
    """
    return read_diffraction(path, dataset_path=dataset_path, max_bytes=max_bytes)


def read_diffraction(
    path: str | os.PathLike,
    *,
    dataset_path: str | None = None,
    max_bytes: int | None = None,
    allow_frame_stack: bool = False,
) -> DiffractionData:
    """``load_data`` that, with ``allow_frame_stack=True``, also returns a stack of 2D frames.

    A frame stack is flagged in ``metadata.extra["frame_stack"]`` (the reason, as text).
    """
    name = os.fspath(path)
    limit = resolve_max_bytes(max_bytes)
    fmt = sniff_format(path)
    if fmt == "hdf5":
        raw = read_hdf5_diffraction(path, dataset_path=dataset_path, max_bytes=limit)
    elif fmt == "npy":
        raw = RawDiffraction(
            read_npy(path, max_bytes=limit), None, None, None, Metadata(), "", "npy"
        )
    elif fmt == "npz":
        raw = _read_npz(path, dataset_path=dataset_path, max_bytes=limit)
    else:
        array, header = read_edf(path, max_bytes=limit)
        raw = RawDiffraction(array, None, None, None, _edf_metadata(header), "", "edf")

    sha = sha256_of(path)
    if raw.stored_provenance:
        return _prepared(raw, name=name, sha=sha)

    provenance = Provenance(
        source_path=str(Path(path).resolve()),
        source_sha256=sha,
        source_format=raw.source_format,
        dataset_path=raw.dataset_path,
    )
    provenance.add_step(
        "load",
        format=raw.source_format,
        dataset_path=raw.dataset_path,
        shape=list(raw.data.shape),
        dtype=str(raw.data.dtype),
    )
    what = f"{name}:{raw.dataset_path}" if raw.dataset_path else name
    intensity, mask = sanitize_intensity(raw.data, raw.mask, provenance, what=what)
    if raw.mask is not None:
        provenance.add_step("detector_mask", masked=int(np.count_nonzero(raw.mask)))
    if raw.dark is not None or raw.flat is not None:
        intensity, mask = apply_dark_flat(
            intensity, mask, dark=raw.dark, flat=raw.flat, provenance=provenance
        )
        if not np.any(intensity > 0):
            raise InvalidDataError(
                f"{what}: no positive intensity is left after the dark/flat correction"
            )
    metadata = raw.metadata
    if metadata.rocking_angles_deg is not None and len(metadata.rocking_angles_deg) != (
        intensity.shape[0] if intensity.ndim == 3 else -1
    ):
        metadata.rocking_angles_deg = None
        metadata.rocking_axis = None
    if raw.frame_stack_reason:
        if not allow_frame_stack:
            raise NotAVolumeError(
                f"{what} {tuple(raw.data.shape)} is not a Bragg CDI volume: {raw.frame_stack_reason}. "
                "Phasing needs a 3D rocking scan or one 2D pattern; `info` describes this file"
            )
        metadata.extra["frame_stack"] = raw.frame_stack_reason
    return DiffractionData(intensity=intensity, mask=mask, metadata=metadata, provenance=provenance)


def _prepared(raw: RawDiffraction, *, name: str, sha: str) -> DiffractionData:
    """A file we prepared (or a result file's prepared intensity): return it as written."""
    try:
        stored = json.loads(raw.stored_provenance)
    except json.JSONDecodeError as exc:
        raise UnreadableFileError(f"{name}: the stored provenance is not valid JSON") from exc
    provenance = Provenance(
        **{k: v for k, v in stored.items() if k in Provenance.__dataclass_fields__}
    )
    provenance.loaded_from = str(Path(name).resolve())
    provenance.loaded_sha256 = sha
    intensity = np.asarray(raw.data)
    if not np.issubdtype(intensity.dtype, np.floating) or intensity.ndim not in (2, 3):
        raise InvalidDataError(
            f"{name}: a prepared intensity must be a 2D/3D float array, got "
            f"{intensity.dtype} {intensity.shape}"
        )
    mask = np.zeros(intensity.shape, bool) if raw.mask is None else raw.mask
    if mask.shape != intensity.shape:
        raise InvalidDataError(
            f"{name}: mask {mask.shape} does not match the intensity {intensity.shape}"
        )
    intensity = np.nan_to_num(intensity.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    return DiffractionData(
        intensity=np.clip(intensity, 0, None),
        mask=mask,
        metadata=raw.metadata,
        provenance=provenance,
    )


def _read_npz(path, *, dataset_path: str | None, max_bytes: int) -> RawDiffraction:
    name = os.fspath(path)
    members = npz_members(path)
    if not members:
        raise UnreadableFileError(f"{name} holds no arrays")
    if dataset_path:
        if dataset_path not in members:
            raise InvalidDataError(f"{name} has no array {dataset_path!r}; keys: {_keys(members)}")
        key = dataset_path
    else:
        key = next((k for k in PREFERRED_KEYS if k in members), None)
        if key is None:
            candidates = [
                k
                for k, (shape, dtype) in members.items()
                if len(squeeze_like(shape)) in (2, 3)
                and not NOT_DATA.search(k)
                and (np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating))
                and dtype != bool
            ]
            if len(candidates) == 1:
                key = candidates[0]
            elif not candidates:
                complex_ = [
                    k for k, (_, d) in members.items() if np.issubdtype(d, np.complexfloating)
                ]
                if complex_:
                    raise InvalidDataError(
                        f"{name} holds complex arrays {complex_}: a reconstructed object, not "
                        "intensities; read it with load_object (or `info`)"
                    )
                raise InvalidDataError(
                    f"{name} has no 2D or 3D numeric array; keys: {_keys(members)}"
                )
            else:
                raise AmbiguousDataError(
                    f"{name} holds several candidate arrays: {_keys({k: members[k] for k in candidates})}; "
                    "choose one with --path KEY (dataset_path=KEY), or name it 'data'"
                )
    data = read_npz_member(path, key, max_bytes=max_bytes)
    mask = None
    if "mask" in members and key != "mask":
        mask = mask_from_cxi(read_npz_member(path, "mask", max_bytes=max_bytes))
    return RawDiffraction(data, mask, None, None, Metadata(), key, "npz")


def _keys(members) -> str:
    return "; ".join(f"{k} {tuple(shape)} {dtype}" for k, (shape, dtype) in members.items())


def _edf_metadata(header: dict[str, str]) -> Metadata:
    """Pick the few SI quantities some EDF headers carry (ESRF SAXS keywords, in metres)."""
    meta = Metadata()
    low = {k.lower(): v for k, v in header.items()}

    def number(key: str) -> float | None:
        try:
            value = float(low[key].split()[0])
        except (KeyError, ValueError, IndexError):
            return None
        return value if np.isfinite(value) and value > 0 else None

    meta.distance_m = number("sampledistance")
    meta.x_pixel_size_m = number("psize_1")
    meta.y_pixel_size_m = number("psize_2")
    meta.wavelength_m = number("wavelength")
    meta.extra["edf_header"] = {k: v for k, v in header.items() if len(v) < 200}
    return meta
