"""Write prepared diffraction data as CXI 1.6 (read back by ``load_data``)."""

from __future__ import annotations

import dataclasses
import os
from datetime import UTC, datetime

import h5py
import numpy as np

from reconstruction import __version__
from reconstruction.errors import InvalidDataError
from reconstruction.io import layout
from reconstruction.io.atomic import atomic_path
from reconstruction.io.jsonable import dumps
from reconstruction.io.types import DiffractionData

RESERVED = {"data", "mask", "distance", "x_pixel_size", "y_pixel_size", "description"}


def provenance_json(data: DiffractionData) -> str:
    """The stored JSON of a DiffractionData's provenance (without the loaded_* fields)."""
    fields = dataclasses.asdict(data.provenance)
    fields.pop("loaded_from", None)
    fields.pop("loaded_sha256", None)
    return dumps(fields)


def write_prepared(path: str | os.PathLike, data: DiffractionData) -> None:
    """Write ``data`` (intensity (Z, Y, X) or (Y, X) float32, mask, metadata, provenance) as CXI.

    The file follows ``reconstruction.io.layout`` (prepared data file); the write is atomic.
    """
    intensity = np.asarray(data.intensity, dtype=np.float32)
    mask = np.asarray(data.mask, dtype=bool)
    if intensity.ndim not in (2, 3) or mask.shape != intensity.shape:
        raise InvalidDataError(
            f"prepared data must be 2D or 3D with a mask of the same shape, got intensity "
            f"{intensity.shape} and mask {mask.shape}"
        )
    meta = data.metadata
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        entry = write_cxi_entry(f)
        det = f.create_group(layout.DETECTOR)
        det.attrs["NX_class"] = "NXdetector"
        dset = det.create_dataset(layout.DETECTOR_DATA, data=intensity, **_compression(intensity))
        if meta.axes:
            dset.attrs["axes"] = ":".join(meta.axes)
        det.create_dataset(layout.DETECTOR_MASK, data=mask.astype(np.uint32), **_compression(mask))
        for name, value in (
            ("distance", meta.distance_m),
            ("x_pixel_size", meta.x_pixel_size_m),
            ("y_pixel_size", meta.y_pixel_size_m),
        ):
            if value is not None:
                det[name] = float(value)
                det[name].attrs["units"] = "m"
        source = f.create_group(layout.SOURCE)
        source.attrs["NX_class"] = "NXsource"
        if meta.energy_J is not None:
            source["energy"] = float(meta.energy_J)
            source["energy"].attrs["units"] = "J"
        if meta.wavelength_m is not None:
            source["wavelength"] = float(meta.wavelength_m)
            source["wavelength"].attrs["units"] = "m"
        sample = f.create_group(layout.SAMPLE)
        sample.attrs["NX_class"] = "NXsample"
        if meta.rocking_angles_deg is not None and meta.rocking_axis:
            axis = meta.rocking_axis
            sample[axis] = np.asarray(meta.rocking_angles_deg, dtype=np.float64)
            sample[axis].attrs["units"] = "deg"
            if axis not in RESERVED:
                det[axis] = h5py.SoftLink(f"{layout.SAMPLE}/{axis}")
        group = entry.create_group("data_1")
        group.attrs["NX_class"] = "NXdata"
        group.attrs["signal"] = "data"
        f[layout.DATA_LINK] = h5py.SoftLink(layout.DETECTOR_DATA)
        process = f.create_group(layout.PREPARED_PROCESS)
        process["program"] = layout.PROGRAM
        process["version"] = __version__
        process[layout.PREPARED_PROVENANCE] = provenance_json(data)
        process[layout.PREPARED_METADATA_EXTRA] = dumps(meta.extra)


def _compression(array: np.ndarray) -> dict:
    """gzip + shuffle for arrays worth compressing."""
    if array.size < 4096:
        return {}
    return {"compression": "gzip", "compression_opts": 4, "shuffle": True}


def write_cxi_entry(f: h5py.File) -> h5py.Group:
    """Write the CXI 1.6 / NeXus header of a new file and return its ``/entry_1`` group."""
    f.attrs["creator"] = f"{layout.PROGRAM} {__version__}"
    f.attrs["default"] = "entry_1"
    f["cxi_version"] = layout.CXI_VERSION
    f["number_of_entries"] = 1
    entry = f.create_group(layout.ENTRY)
    entry.attrs["NX_class"] = "NXentry"
    entry.attrs["default"] = "data_1"
    entry["program_name"] = f"{layout.PROGRAM} {__version__}"
    entry["start_time"] = datetime.now(UTC).isoformat(timespec="seconds")
    return entry
