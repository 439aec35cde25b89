"""``Recipe``: every parameter of a simulated data set, as a flat JSON-safe dataclass.

Ranges are ``(low, high)`` tuples drawn uniformly per sample (``photons`` log-uniformly);
probabilities are in [0, 1]. Lengths are in voxels of the simulated box unless named otherwise.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from reconstruction.errors import ConfigError

KINDS = ("superellipsoid", "crystal", "mixed")
VIEWS_2D = ("slice", "projection", "mixed")
FCC_FAMILIES = ("111", "100", "110", "311", "210", "331")


@dataclass(frozen=True)
class Recipe:
    """How to draw one simulated sample (object family, size, detector effects).

    Objects: ``kind`` "superellipsoid" | "crystal" | "mixed" (``crystal_fraction`` of crystals);
    ``shape`` = N, the box side in voxels; ``dims`` 3 (volumes) or 2 (``view_2d`` "slice" =
    central slice of a 3D object, "projection" = its projection along axis 0, or "mixed");
    ``oversampling`` = range of N / object extent, per axis; ``edge_sigma`` = Gaussian edge
    smoothing width (voxels, 0 = hard edges).

    Detector: ``photons`` = total counts per pattern (log-uniform); each effect is applied with
    its probability: Gaussian readout noise (sigma in counts), a centred beamstop (radius in
    pixels), module gaps (count and width in pixels, along the last two axes), partial-coherence
    blur of the intensity (Gaussian sigma in pixels).
    """

    kind: str = "mixed"
    shape: int = 64
    dims: int = 3
    photons: tuple[float, float] = (1e5, 1e9)
    oversampling: tuple[float, float] = (2.5, 4.0)
    edge_sigma: tuple[float, float] = (0.4, 1.0)
    crystal_fraction: float = 0.5
    view_2d: str = "mixed"
    # superellipsoid family: bounds relative to the largest, roundness exponents e and n,
    # phase correlation lengths (fraction of the object size) and the phase half-range (rad)
    superellipsoid_aspect: tuple[float, float] = (0.7, 1.0)
    superellipsoid_e: tuple[float, float] = (0.3, 2.0)
    superellipsoid_n: tuple[float, float] = (0.3, 2.0)
    phase_correlation: tuple[float, float] = (0.15, 0.6)
    phase_range: tuple[float, float] = (0.0, math.pi)
    # faceted-crystal family
    crystal_planes: tuple[int, int] = (4, 20)
    crystal_families: tuple[str, ...] = ("111", "100", "110", "311")
    crystal_cut: tuple[float, float] = (0.7, 1.0)
    crystal_strain_max: float = 0.01
    crystal_phase_at_max_strain: float = 3.0
    crystal_d_spacing_m: float = 2.355e-10
    crystal_defect_probability: float = 0.3
    crystal_defects: tuple[int, int] = (1, 3)
    crystal_defect_phase: tuple[float, float] = (0.5, 2.0)
    crystal_dislocation_probability: float = 0.2
    # detector
    readout_probability: float = 0.3
    readout_sigma: tuple[float, float] = (0.3, 2.0)
    beamstop_probability: float = 0.3
    beamstop_radius: tuple[float, float] = (1.0, 3.0)
    gaps_probability: float = 0.2
    gaps: tuple[int, int] = (1, 2)
    gap_width: tuple[int, int] = (1, 3)
    coherence_probability: float = 0.3
    coherence_sigma: tuple[float, float] = (0.3, 1.0)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list):
                object.__setattr__(self, f.name, tuple(value))
        self.validate()

    def validate(self) -> None:
        """Raise ``ConfigError`` with an actionable message if a field is out of range."""
        if self.kind not in KINDS:
            raise ConfigError(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.dims not in (2, 3):
            raise ConfigError(f"dims must be 2 or 3, got {self.dims}")
        if self.view_2d not in VIEWS_2D:
            raise ConfigError(f"view_2d must be one of {', '.join(VIEWS_2D)}, got {self.view_2d!r}")
        if not 8 <= int(self.shape) <= 512:
            raise ConfigError(f"shape must be between 8 and 512 voxels, got {self.shape}")
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "crystal_families":
                bad = [v for v in value if v not in FCC_FAMILIES]
                if bad or not value:
                    raise ConfigError(
                        f"crystal_families must be a non-empty subset of {FCC_FAMILIES}, got {value}"
                    )
            elif isinstance(value, tuple):
                if len(value) != 2 or value[0] > value[1]:
                    raise ConfigError(
                        f"{f.name} must be a (low, high) range with low <= high, got {value}"
                    )
                if value[0] < 0:
                    raise ConfigError(f"{f.name} must not be negative, got {value}")
            elif f.name.endswith(("_probability", "_fraction")) and not 0.0 <= value <= 1.0:
                raise ConfigError(f"{f.name} must be a probability in [0, 1], got {value}")
        if self.photons[0] <= 0:
            raise ConfigError(f"photons must be positive, got {self.photons}")
        if self.oversampling[0] < 1.5:
            raise ConfigError(
                f"oversampling must be at least 1.5 per axis, got {self.oversampling}"
            )
        if self.crystal_planes[0] < 4:
            raise ConfigError(f"a crystal needs at least 4 planes, got {self.crystal_planes}")
        if not 0.0 < self.crystal_cut[0] <= self.crystal_cut[1] <= 1.0:
            raise ConfigError(f"crystal_cut must lie in (0, 1], got {self.crystal_cut}")

    def to_dict(self) -> dict[str, Any]:
        """Return the recipe as a JSON-safe dict (tuples become lists)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recipe:
        """Build a recipe from ``to_dict()`` output, refusing unknown keys."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown simulation recipe keys {sorted(unknown)}")
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items()})
