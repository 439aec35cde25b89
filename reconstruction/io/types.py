"""Typed containers returned by the readers and consumed by every other module."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Metadata:
    """Acquisition metadata in SI units; None where the file does not say."""

    distance_m: float | None = None
    x_pixel_size_m: float | None = None
    y_pixel_size_m: float | None = None
    energy_J: float | None = None
    wavelength_m: float | None = None
    axes: tuple[str, ...] | None = None  # e.g. ("theta", "y", "x")
    rocking_angles_deg: np.ndarray | None = None  # (n_frames,)
    rocking_axis: str | None = None  # e.g. "theta"
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Provenance:
    """Where an array came from and every step applied to it."""

    source_path: str = ""
    source_sha256: str = ""
    source_format: str = ""  # "cxi", "hdf5", "npy", "npz", "edf", "pynx-result"
    dataset_path: str = ""  # path inside the file, when there is one
    steps: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    loaded_from: str = ""  # the file actually read, when it is not the source (a prepared file)
    loaded_sha256: str = ""

    def add_step(self, name: str, **params: Any) -> None:
        """Record one processing step with its parameters (JSON-serialisable values)."""
        self.steps.append({"step": name, **params})


@dataclass
class DiffractionData:
    """A measured (or simulated) diffraction intensity with its mask.

    intensity : (Z, Y, X) or (Y, X) float32, photon counts, >= 0, finite.
    mask      : same shape, bool, True = pixel excluded (bad, gap, beamstop, NaN ...).
    """

    intensity: np.ndarray
    mask: np.ndarray
    metadata: Metadata = field(default_factory=Metadata)
    provenance: Provenance = field(default_factory=Provenance)

    @property
    def ndim(self) -> int:
        """2 for 2D CDI, 3 for a 3D (Bragg) volume."""
        return self.intensity.ndim

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the intensity array."""
        return tuple(self.intensity.shape)


@dataclass
class ObjectData:
    """A reconstructed complex object, e.g. read from a PyNX / cohere / our own result file.

    obj     : (Z, Y, X) or (Y, X) complex64, the (first) mode.
    support : same shape, bool, or None when the file has none.
    modes_weights : relative weights of the modes when the file had a modes axis.
    """

    obj: np.ndarray
    support: np.ndarray | None = None
    modes_weights: np.ndarray | None = None
    metadata: Metadata = field(default_factory=Metadata)
    provenance: Provenance = field(default_factory=Provenance)


@dataclass
class ResultRecord:
    """Everything a result CXI file holds (see ``reconstruction.io.layout``).

    obj        : (Z, Y, X) or (Y, X) complex64, centred, on the grid of ``intensity``
                 (|farfield(obj)|^2 matches ``intensity`` up to scale).
    support    : same shape, bool.
    intensity  : same shape, float32, the prepared intensity that was used.
    mask       : same shape, bool, True = excluded detector pixel.
    algorithm  : the schedule string actually run, e.g. "(ER**20,HIO**160,ER**20)**3".
    config     : every parameter, JSON-serialisable.
    curves     : per-iteration error curves, e.g. {"chi2": (n,), "chi2_free": (n,), "llk": (n,)}.
    metrics    : final scalars, e.g. {"chi2": 0.01, "chi2_free": 0.012, "llk": ...}.
    timings    : seconds per stage, e.g. {"predict": 0.1, "refine": 0.4, "total": 0.5}.
    command    : the command line or job description that produced it.
    provenance : program_version, input_sha256, seed, model_version, job_id ... (scalars).
    arrays     : optional extra named arrays (e.g. "prtf", "prtf_freq", "amplitude_predicted").
    """

    obj: np.ndarray
    support: np.ndarray
    intensity: np.ndarray
    mask: np.ndarray
    algorithm: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    curves: dict[str, np.ndarray] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    command: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
