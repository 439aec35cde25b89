"""Find and read diffraction data in CXI (1.4-1.6), NeXus and plain HDF5 files.

Selection order: the user's ``dataset_path``; for CXI, ``/entry_last`` or the single
``/entry_N``, then ``data_M/data`` and ``instrument_1/detector_N/data``; for NeXus the
``default``/``signal`` attributes; otherwise the single plausible 2D/3D numeric dataset.
Nothing is read before the file has been checked by ``open_hdf5`` and the size limit.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field

import h5py
import numpy as np

from reconstruction.errors import AmbiguousDataError, InvalidDataError
from reconstruction.io import layout
from reconstruction.io.hdf5_safety import Hdf5Tree, open_hdf5, read_dataset, resolve_dataset
from reconstruction.io.limits import check_size
from reconstruction.io.sanitize import mask_from_cxi
from reconstruction.io.types import Metadata

H_C = 6.62607015e-34 * 299792458.0  # J m
EV = 1.602176634e-19  # J
NOT_DATA = re.compile(
    r"(mask|dark|white|flat|background|bkg|support|weight|error|theta|angle)", re.IGNORECASE
)
DARK_NAMES = ("data_dark", "dark", "dark_field", "darkfield")
FLAT_NAMES = ("data_white", "white", "white_field", "whitefield", "flat", "flat_field", "flatfield")
ROCKING_NAMES = ("theta", "omega", "eta", "phi", "chi", "mu", "rocking_angle")
LENGTH_UNITS = {
    "m": 1.0,
    "mm": 1e-3,
    "um": 1e-6,
    "µm": 1e-6,
    "micron": 1e-6,
    "nm": 1e-9,
    "cm": 1e-2,
    "a": 1e-10,
    "angstrom": 1e-10,
    "å": 1e-10,
}
ENERGY_UNITS = {"j": 1.0, "ev": EV, "kev": 1e3 * EV}
ANGLE_UNITS = {"rad": 180.0 / np.pi, "radian": 180.0 / np.pi, "radians": 180.0 / np.pi}  # to deg


@dataclass
class RawDiffraction:
    """Arrays and metadata found in a file, before sanitising."""

    data: np.ndarray
    mask: np.ndarray | None
    dark: np.ndarray | None
    flat: np.ndarray | None
    metadata: Metadata
    dataset_path: str
    source_format: str
    frame_stack_reason: str = ""
    stored_provenance: str = ""  # JSON of a file we prepared
    notes: list[str] = field(default_factory=list)


def read_hdf5_diffraction(
    path: str | os.PathLike, *, dataset_path: str | None, max_bytes: int
) -> RawDiffraction:
    """Read the diffraction dataset of an HDF5 / CXI / NeXus file (see the module docstring)."""
    name = os.fspath(path)
    with open_hdf5(path) as (handle, tree):
        is_cxi = "cxi_version" in handle
        dset, link_path = _choose_dataset(handle, tree, dataset_path, name=name, is_cxi=is_cxi)
        check_size(dset.shape, dset.dtype.itemsize, what=f"{name}:{link_path}", max_bytes=max_bytes)
        if np.issubdtype(dset.dtype, np.complexfloating):
            raise InvalidDataError(
                f"{name}:{link_path} is complex {dset.shape}: a reconstructed object, not measured "
                "intensities; read it with load_object (or `info`)"
            )
        data = read_dataset(dset, what="the data")
        real_path = next((p for p, d in tree.datasets.items() if d.id == dset.id), dset.name)
        dset = handle[real_path]
        groups = _groups_for(handle, dset, link_path)
        mask = _find_mask(handle, groups, dset.shape, max_bytes=max_bytes, name=name)
        dark = _find_named(groups, DARK_NAMES, max_bytes=max_bytes)
        flat = _find_named(groups, FLAT_NAMES, max_bytes=max_bytes)
        entry = _entry_of(handle, dset, link_path)
        metadata = _metadata(handle, entry, groups, dset)
        reason = _frame_stack_reason(entry, dset, metadata)
        stored = ""
        prov = handle.get(layout.PREPARED_PROVENANCE)
        if isinstance(prov, h5py.Dataset) and dset.name == layout.DETECTOR_DATA:
            stored = _as_str(prov[()])
            extra = handle.get(layout.PREPARED_METADATA_EXTRA)
            if isinstance(extra, h5py.Dataset):
                metadata.extra = json.loads(_as_str(extra[()]))
        elif dset.name == layout.PREPARED_INTENSITY and _is_our_result(handle):
            stored = _as_str(handle[layout.ENTRY].attrs.get("input_provenance", "")) or json.dumps(
                {"source_format": "result-cxi", "dataset_path": layout.PREPARED_INTENSITY}
            )
        if stored:
            fmt = "prepared-cxi"
        elif is_cxi:
            fmt = "cxi"
        else:
            fmt = "nexus" if "NX_class" in entry.attrs else "hdf5"
    return RawDiffraction(
        data=data,
        mask=mask,
        dark=dark,
        flat=flat,
        metadata=metadata,
        dataset_path=link_path,
        source_format=fmt,
        frame_stack_reason=reason,
        stored_provenance=stored,
    )


# ---------------------------------------------------------------- choosing the dataset
def _choose_dataset(handle, tree: Hdf5Tree, dataset_path, *, name: str, is_cxi: bool):
    if dataset_path:
        dset = resolve_dataset(handle, dataset_path)
        if dset is None:
            listing = _listing(tree, _plausible(tree) or list(tree.datasets))
            raise InvalidDataError(
                f"{name} has no dataset {dataset_path!r} holding data; datasets: {listing}"
            )
        return dset, dataset_path
    if _is_our_result(handle):
        return handle[layout.PREPARED_INTENSITY], layout.PREPARED_INTENSITY
    if is_cxi or any(re.fullmatch(r"entry_\d+", k) for k in handle):
        found = _cxi_dataset(handle, name=name)
        if found is not None:
            return found
    found = _nexus_default(handle)
    if found is not None:
        return found
    candidates = _plausible(tree)
    if len(candidates) == 1:
        return tree.datasets[candidates[0]], candidates[0]
    if not candidates:
        complex_ = [
            p for p, d in tree.datasets.items() if np.issubdtype(d.dtype, np.complexfloating)
        ]
        if complex_:
            raise InvalidDataError(
                f"{name} holds complex arrays ({_listing(tree, complex_)}): a reconstructed "
                "object, not intensities; read it with load_object (or `info`)"
            )
        raise InvalidDataError(
            f"{name} has no 2D or 3D numeric dataset that could be diffraction data; datasets: "
            f"{_listing(tree, list(tree.datasets)) or 'none'}"
        )
    raise AmbiguousDataError(
        f"{name} holds several candidate datasets: {_listing(tree, candidates)}; "
        "choose one with --path (dataset_path=...)"
    )


def _is_our_result(handle) -> bool:
    """A result file of this program: its prepared intensity is the diffraction data."""
    program = handle.get(f"{layout.PROCESS}/program")
    return (
        isinstance(program, h5py.Dataset)
        and _as_str(program[()]) == layout.PROGRAM
        and isinstance(handle.get(layout.PREPARED_INTENSITY), h5py.Dataset)
    )


def _cxi_dataset(handle, *, name: str):
    entries = sorted((k for k in handle if re.fullmatch(r"entry_\d+", k)), key=lambda k: int(k[6:]))
    if "entry_last" in handle:
        chosen = ["entry_last"]
    elif len(entries) > 1:
        per_entry = []
        for e in entries:
            hit = _entry_dataset(handle, e)
            if hit is not None:
                per_entry.append(f"/{hit[1].lstrip('/')} {hit[0].shape} {hit[0].dtype}")
        if len(per_entry) > 1:
            raise AmbiguousDataError(
                f"{name} has several CXI entries with data: {'; '.join(per_entry)}; "
                "choose one with --path (dataset_path=...)"
            )
        chosen = entries
    else:
        chosen = entries
    for e in chosen:
        hit = _entry_dataset(handle, e)
        if hit is not None:
            return hit
    return None


def _entry_dataset(handle, entry: str):
    group = handle.get(entry)
    if not isinstance(group, h5py.Group):
        return None
    names = sorted((k for k in group if re.fullmatch(r"data_\d+", k)), key=lambda k: int(k[5:]))
    paths = [f"/{entry}/{k}/data" for k in names]
    inst = group.get("instrument_1")
    if isinstance(inst, h5py.Group):
        dets = sorted(
            (k for k in inst if re.fullmatch(r"detector_\d+", k)), key=lambda k: int(k[9:])
        )
        paths += [f"/{entry}/instrument_1/{k}/data" for k in dets]
    for p in paths:
        dset = resolve_dataset(handle, p)
        if dset is not None and dset.ndim >= 2 and _numeric(dset.dtype):
            return dset, p
    return None


def _nexus_default(handle):
    try:
        entry_name = _as_str(handle.attrs.get("default", ""))
        if not entry_name or entry_name not in handle:
            return None
        entry = handle[entry_name]
        data_name = _as_str(entry.attrs.get("default", ""))
        if not data_name or data_name not in entry:
            return None
        group = entry[data_name]
        signal = _as_str(group.attrs.get("signal", "data"))
        path = f"/{entry_name}/{data_name}/{signal}"
    except (KeyError, AttributeError, TypeError):
        return None
    dset = resolve_dataset(handle, path)
    if dset is not None and dset.ndim >= 2 and _numeric(dset.dtype):
        return dset, path
    return None


def _plausible(tree: Hdf5Tree) -> list[str]:
    out = []
    for p, d in tree.datasets.items():
        if not _numeric(d.dtype) or d.ndim < 2 or d.ndim > 4:
            continue
        shape = d.shape
        while len(shape) > 2 and shape[0] == 1:
            shape = shape[1:]
        if len(shape) not in (2, 3) or min(shape[-2:]) < 16:
            continue
        if NOT_DATA.search(p.rsplit("/", 1)[-1]):
            continue
        out.append(p)
    return sorted(out)


def _numeric(dtype) -> bool:
    return dtype != bool and (
        np.issubdtype(dtype, np.integer)
        or np.issubdtype(dtype, np.floating)
        or np.issubdtype(dtype, np.complexfloating)
    )


def _listing(tree: Hdf5Tree, paths: list[str]) -> str:
    parts = []
    for p in paths[:12]:
        d = tree.datasets.get(p)
        parts.append(f"{p} {tuple(d.shape)} {d.dtype}" if d is not None else p)
    more = f" (and {len(paths) - 12} more)" if len(paths) > 12 else ""
    return "; ".join(parts) + more


# ---------------------------------------------------------------- companions and metadata
def _groups_for(handle, dset: h5py.Dataset, link_path: str) -> list[h5py.Group]:
    """Groups to search for the mask, dark/flat and metadata: the real parent, the link's parent."""
    groups = [dset.parent]
    link_parent = handle.get(link_path.rsplit("/", 1)[0] or "/")
    if isinstance(link_parent, h5py.Group) and link_parent.name != dset.parent.name:
        groups.append(link_parent)
    return groups


def _find_mask(handle, groups, shape, *, max_bytes: int, name: str) -> np.ndarray | None:
    for g in groups:
        m = g.get("mask")
        if isinstance(m, h5py.Dataset) and m.shape is not None:
            check_size(m.shape, m.dtype.itemsize, what=f"{name}:{m.name}", max_bytes=max_bytes)
            return mask_from_cxi(np.asarray(read_dataset(m, what="the mask")))
    return None


def _find_named(groups, names, *, max_bytes: int) -> np.ndarray | None:
    for g in groups:
        for n in names:
            d = g.get(n)
            if (
                isinstance(d, h5py.Dataset)
                and d.shape is not None
                and d.ndim >= 2
                and _numeric(d.dtype)
            ):
                check_size(d.shape, d.dtype.itemsize, what=d.name, max_bytes=max_bytes)
                return np.asarray(read_dataset(d, what=n), dtype=np.float64)
    return None


def _entry_of(handle, dset: h5py.Dataset, link_path: str) -> h5py.Group:
    top = link_path.strip("/").split("/")[0]
    if top == "entry_last" or not top:
        top = dset.name.strip("/").split("/")[0]
    group = handle.get(top)
    return group if isinstance(group, h5py.Group) else handle


def _metadata(handle, entry: h5py.Group, groups, dset: h5py.Dataset) -> Metadata:
    meta = Metadata()
    det_groups = list(groups)
    inst = entry.get("instrument_1")
    if isinstance(inst, h5py.Group):
        det = inst.get("detector_1")
        if isinstance(det, h5py.Group):
            det_groups.append(det)
    meta.distance_m = _first(det_groups, ("distance",), LENGTH_UNITS)
    meta.x_pixel_size_m = _first(det_groups, ("x_pixel_size",), LENGTH_UNITS)
    meta.y_pixel_size_m = _first(det_groups, ("y_pixel_size",), LENGTH_UNITS)
    beam_groups = [
        entry.get(p)
        for p in (
            "instrument_1/source_1",
            "instrument_1/beam_1",
            "instrument/monochromator",
            "instrument_1/monochromator",
        )
    ]
    beam_groups = [g for g in beam_groups if isinstance(g, h5py.Group)]
    meta.energy_J = _first(beam_groups, ("energy", "incident_energy"), ENERGY_UNITS)
    meta.wavelength_m = _first(beam_groups, ("wavelength", "incident_wavelength"), LENGTH_UNITS)
    if meta.wavelength_m is None and meta.energy_J:
        meta.wavelength_m = H_C / meta.energy_J
    if meta.energy_J is None and meta.wavelength_m:
        meta.energy_J = H_C / meta.wavelength_m
    meta.axes = _axes(dset, groups)
    n_frames = dset.shape[-3] if dset.ndim >= 3 else 0
    if n_frames:
        sample = entry.get("sample_1")
        search = list(groups) + [
            g
            for g in (
                sample,
                sample.get("geometry_1") if isinstance(sample, h5py.Group) else None,
                entry.get("instrument_1/positioners"),
                entry.get("instrument/positioners"),  # NeXus (BLISS): the scanned motor's array
            )
            if isinstance(g, h5py.Group)
        ]
        names = [meta.axes[0]] if meta.axes and len(meta.axes) == dset.ndim else list(ROCKING_NAMES)
        for axis_name in names:
            for g in search:
                d = g.get(axis_name)
                if isinstance(d, h5py.Dataset) and d.shape == (n_frames,) and _numeric(d.dtype):
                    angles = np.asarray(d[()], dtype=np.float64)
                    if _as_str(d.attrs.get("units", "deg")).lower().startswith("rad"):
                        angles = np.degrees(angles)
                    meta.rocking_angles_deg = angles
                    meta.rocking_axis = axis_name
                    break
            if meta.rocking_axis:
                break
        _bragg_angle(entry, meta)
        _positioners(entry, meta)
    return meta


MAX_POSITIONERS = 64


def _positioners(entry: h5py.Group, meta: Metadata) -> None:
    """Put the instrument's name and its scalar positioners (deg) in ``meta.extra``
    (``instrument_name``, ``positioners_deg``): the diffractometer angles of the scan, which
    ``reconstruction.geometry`` needs to put the object in the lab frame."""
    for path in ("instrument_1/name", "instrument/name"):
        name = entry.get(path)
        if isinstance(name, h5py.Dataset) and name.shape in ((), (1,)) and name.dtype.kind in "OSU":
            meta.extra["instrument_name"] = _as_str(np.ravel(name[()])[0])[:200]
            break
    out: dict[str, float] = {}
    for path in ("instrument_1/positioners", "instrument/positioners"):  # CXI, NeXus (BLISS)
        group = entry.get(path)
        if not isinstance(group, h5py.Group):
            continue
        for key in list(group.keys())[:MAX_POSITIONERS]:
            d = group.get(key)  # scalars only: a scanned motor's array is the rocking axis
            if isinstance(d, h5py.Dataset) and d.shape in ((), (1,)) and _numeric(d.dtype):
                value = float(np.ravel(d[()])[0])
                unit = _as_str(d.attrs.get("units", "")).strip().lower()
                value *= ANGLE_UNITS.get(unit, 1.0)
                if np.isfinite(value):
                    out.setdefault(str(key)[:64], value)
    if out:
        meta.extra["positioners_deg"] = out


# Detector-arm positioners (deg) whose two angles give the scattering angle 2θ, and direct 2θ.
DETECTOR_ARMS = (("delta", "gamma"), ("nu", "delta"))
TWO_THETA_NAMES = ("two_theta", "2theta", "tth")


def _bragg_angle(entry: h5py.Group, meta: Metadata) -> None:
    """Put θ_B (deg) in ``meta.extra["bragg_angle_deg"]`` from the instrument's positioners."""
    from reconstruction.io.voxel import bragg_angle_from_detector_arms

    groups = [entry.get(p) for p in ("instrument_1/positioners", "instrument_1/detector_1", "instrument/positioners")]
    groups = [g for g in groups if isinstance(g, h5py.Group)]
    if not groups:
        return

    def angle(name: str) -> float | None:
        return _first(groups, (name,), ANGLE_UNITS, positive=False)

    for name in TWO_THETA_NAMES:
        two_theta = angle(name)
        if two_theta is not None and 0 < two_theta < 180:
            meta.extra["bragg_angle_deg"] = two_theta / 2
            meta.extra["bragg_angle_from"] = f"positioner {name} = {two_theta:.4g} deg (2θ)"
            return
    for a, b in DETECTOR_ARMS:
        va, vb = angle(a), angle(b)
        theta = bragg_angle_from_detector_arms(va, vb) if va is not None and vb is not None else None
        if theta is not None:
            meta.extra["bragg_angle_deg"] = theta
            meta.extra["bragg_angle_from"] = (
                f"positioners {a} = {va:.4g}, {b} = {vb:.4g} deg: cos 2θ = cos {a} · cos {b}"
            )
            return


def _first(groups, names, units: dict[str, float], *, positive: bool = True) -> float | None:
    """The first finite (and, with ``positive``, > 0) scalar among ``names`` in ``groups``,
    converted by ``units[its units attribute]`` (unknown units: as stored)."""
    for g in groups:
        for n in names:
            d = g.get(n)
            if (
                isinstance(d, h5py.Dataset)
                and d.shape is not None
                and 1 <= d.size <= 1_000_000
                and _numeric(d.dtype)
            ):
                value = float(np.ravel(d[()])[0])
                unit = _as_str(d.attrs.get("units", "")).strip().lower()
                if unit in units:
                    value *= units[unit]
                if np.isfinite(value) and (value > 0 or not positive):
                    return value
    return None


def _axes(dset: h5py.Dataset, groups) -> tuple[str, ...] | None:
    raw = dset.attrs.get("axes")
    if raw is None:
        for g in groups:
            if "axes" in g.attrs:
                raw = g.attrs["axes"]
                break
    if raw is None:
        return None
    if isinstance(raw, np.ndarray) and raw.ndim == 1:
        parts = [_as_str(x) for x in raw]
    else:
        parts = re.split(r"[:,\s]+", _as_str(raw).strip())
    parts = tuple(p for p in parts if p)
    return parts or None


def _frame_stack_reason(entry: h5py.Group, dset: h5py.Dataset, meta: Metadata) -> str:
    if dset.ndim < 3:
        return ""
    shape = dset.shape
    while len(shape) > 2 and shape[0] == 1:
        shape = shape[1:]
    if len(shape) != 3:
        return ""
    if meta.axes and len(meta.axes) == len(dset.shape):
        first = meta.axes[len(dset.shape) - 3].lower()
        if any(
            word in first for word in ("translation", "position", "frame", "scan_point", "time")
        ):
            return f"its axes attribute says {':'.join(meta.axes)}: a stack of 2D frames"
    sample = entry.get("sample_1/geometry_1/translation")
    if (
        isinstance(sample, h5py.Dataset)
        and sample.shape
        and sample.ndim >= 1
        and sample.shape[0] == shape[0]
    ):
        return (
            f"it has {shape[0]} frames and /{entry.name.strip('/')}/sample_1/geometry_1/translation "
            f"has {sample.shape[0]} sample positions: a stack of 2D frames (e.g. ptychography)"
        )
    return ""


def _as_str(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray) and value.shape == ():
        return _as_str(value[()])
    return str(value) if value is not None else ""
