"""Tiny shared fixtures for the library tests (any test module under tests/reconstruction may use them).

- ``real_data``: the folder of real measured files (``../shared/data/real``), or a clean skip.
- ``ball_object(n, diameter, ndim)``: a centred uniform ball (float64), for analytic checks.
- ``tiny_volume``: a 24³ ``DiffractionData`` of a ball of diameter 6 (oversampling 4 per axis),
  photon counts, peak at index 12, a few masked pixels.
- ``tiny_pattern``: the 2D (32, 32) analogue.
- ``write_cxi(path, data, **options)``: write a minimal raw CXI 1.6 file by hand (h5py), with
  optional mask, metadata, axes, rocking angles, dark/flat fields.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from reconstruction.fourier import intensity_of
from reconstruction.io.types import DiffractionData, Metadata, Provenance

REAL_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "real"


@pytest.fixture
def real_data() -> Path:
    """The real data folder; skips the test when it is absent."""
    if not REAL_DATA.is_dir():
        pytest.skip(f"real data folder {REAL_DATA} is absent")
    return REAL_DATA.resolve()


def ball(n: int, diameter: float, ndim: int = 3) -> np.ndarray:
    """A centred uniform ball (disc in 2D) of ``diameter`` pixels in an ``n``-pixel box."""
    grid = np.indices((n,) * ndim) - n // 2
    return (np.sum(grid**2, axis=0) <= (diameter / 2) ** 2).astype(np.float64)


@pytest.fixture
def ball_object():
    """Factory: ``ball_object(n, diameter, ndim=3)``."""
    return ball


def _counts(obj: np.ndarray, photons: float, seed: int = 0) -> np.ndarray:
    intensity = intensity_of(obj).astype(np.float64)
    intensity *= photons / intensity.sum()
    return np.random.default_rng(seed).poisson(intensity).astype(np.float32)


@pytest.fixture
def tiny_volume() -> DiffractionData:
    """A 24³ ball diffraction volume (diameter 6 px: oversampling 4), 1e7 photons, 3 masked pixels."""
    intensity = _counts(ball(24, 6, 3), 1e7)
    mask = np.zeros(intensity.shape, bool)
    mask[0, 0, :3] = True
    intensity[mask] = 0
    meta = Metadata(
        distance_m=0.5,
        x_pixel_size_m=55e-6,
        y_pixel_size_m=55e-6,
        energy_J=1.44e-15,
        wavelength_m=1.3776e-10,
        axes=("theta", "y", "x"),
        rocking_angles_deg=np.linspace(-0.1, 0.1, 24),
        rocking_axis="theta",
    )
    return DiffractionData(
        intensity=intensity, mask=mask, metadata=meta, provenance=Provenance(source_format="test")
    )


@pytest.fixture
def tiny_pattern() -> DiffractionData:
    """A (32, 32) disc diffraction pattern (diameter 8 px: oversampling 4), 1e6 photons."""
    intensity = _counts(ball(32, 8, 2), 1e6)
    return DiffractionData(
        intensity=intensity,
        mask=np.zeros(intensity.shape, bool),
        provenance=Provenance(source_format="test"),
    )


def write_cxi_file(
    path: Path,
    data: np.ndarray,
    *,
    mask: np.ndarray | None = None,
    axes: str | None = None,
    angles: np.ndarray | None = None,
    dark: np.ndarray | None = None,
    flat: np.ndarray | None = None,
    translation: np.ndarray | None = None,
    distance_m: float | None = 0.5,
    pixel_m: float | None = 55e-6,
    energy_J: float | None = 1.4419589706e-15,
) -> Path:
    """Write a minimal raw CXI 1.6 file the way beamline software does (soft links included)."""
    with h5py.File(path, "w") as f:
        f["cxi_version"] = 160
        det = f.create_group("entry_1/instrument_1/detector_1")
        dset = det.create_dataset("data", data=data)
        if axes:
            dset.attrs["axes"] = axes
        if mask is not None:
            det["mask"] = mask
        if dark is not None:
            det["data_dark"] = dark
        if flat is not None:
            det["data_white"] = flat
        if distance_m is not None:
            det["distance"] = distance_m
        if pixel_m is not None:
            det["x_pixel_size"] = pixel_m
            det["y_pixel_size"] = pixel_m
        if energy_J is not None:
            f["entry_1/instrument_1/source_1/energy"] = energy_J
        if angles is not None:
            f["entry_1/sample_1/theta"] = angles
            det["theta"] = h5py.SoftLink("/entry_1/sample_1/theta")
        if translation is not None:
            f["entry_1/sample_1/geometry_1/translation"] = translation
        f.create_group("entry_1/data_1")
        f["entry_1/data_1/data"] = h5py.SoftLink("/entry_1/instrument_1/detector_1/data")
    return path


@pytest.fixture
def write_cxi():
    """Factory: ``write_cxi(path, data, mask=..., axes=..., angles=..., dark=..., flat=..., ...)``."""
    return write_cxi_file
