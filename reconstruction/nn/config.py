"""Configurations of the network (``ModelConfig``) and of a training run (``TrainRecipe``).

Both are plain dataclasses of JSON-serialisable values, stored verbatim in every checkpoint,
so that a checkpoint says exactly how it was made and ``python -m reconstruction train
--recipe NAME`` reproduces it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from reconstruction.errors import ConfigError


@dataclass(frozen=True)
class ModelConfig:
    """Shape of a ``PhaseNet``.

    dims        : 2 or 3 (2D forward CDI or 3D Bragg CDI).
    input_size  : edge of the (centred) diffraction amplitude the network reads, pixels.
    output_size : edge of the predicted object box, pixels (= input_size // 2, the stem is
                  strided); the object is zero-padded into the input box, which acts as a
                  support of linear oversampling >= 2.
    width       : channels after the stem; level ``k`` of the encoder has ``width * 2**k``.
    depth       : number of down-sampling levels after the stem (and up-sampling levels of
                  each decoder).
    """

    dims: int = 3
    input_size: int = 64
    output_size: int = 32
    width: int = 8
    depth: int = 3

    def __post_init__(self) -> None:
        if self.dims not in (2, 3):
            raise ConfigError(f"dims must be 2 or 3, got {self.dims}")
        if self.output_size * 2 != self.input_size:
            raise ConfigError(
                f"output_size must be input_size // 2 (got {self.output_size} for "
                f"input {self.input_size})"
            )
        if self.width < 1 or self.depth < 1:
            raise ConfigError(f"width and depth must be >= 1, got {self.width}, {self.depth}")
        if self.output_size % (2**self.depth):
            raise ConfigError(
                f"output_size {self.output_size} is not divisible by 2**depth = {2**self.depth}"
            )

    def to_dict(self) -> dict[str, int]:
        """Return the config as a plain dict (stored in checkpoints)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Build a config from a dict, refusing unknown keys (a config from newer code)."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown model config keys {sorted(unknown)}")
        return cls(**data)


@dataclass(frozen=True)
class TrainRecipe:
    """Everything that defines a training run (data, model, optimiser, budget).

    Simulated data come from ``reconstruction.simulate`` (``kind``, ``shape`` = model input
    size, ``photons`` range); ``n_train`` patterns (seeds ``seed ...``) are drawn again with new
    seeds every epoch when ``fresh_each_epoch``; validation uses ``n_val`` patterns of seeds
    disjoint from training. ``loss`` is "mae" (masked mean absolute error of Parseval-normalised
    amplitudes), "chi2_pearson" or "hybrid" (adds a supervised real-space term, needs truths).
    ``minutes`` bounds the wall-clock time (0 = no bound); the last ``anneal_minutes`` of it
    decay the learning rate along a half cosine from its value then to ``lr_min`` (the plateau
    schedule stops there). ``init_from`` starts from a checkpoint's weights ("default" = the
    shipped model) instead of a random initialisation; its architecture must match.
    """

    name: str = "default"
    dims: int = 3
    shape: int = 64
    width: int = 8
    depth: int = 3
    kind: str = "mixed"
    photons: tuple[float, float] = (1e5, 1e9)
    n_train: int = 1024
    n_val: int = 64
    fresh_each_epoch: bool = False
    seed: int = 0
    epochs: int = 40
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    loss: str = "mae"
    supervised_weight: float = 1.0
    threshold_start: float = 0.07
    threshold_end: float = 0.1
    threshold_ramp_epochs: int = 10
    soft_support_width: float = 0.02
    plateau_patience: int = 2
    plateau_factor: float = 0.5
    early_stop_patience: int = 6
    minutes: float = 0.0
    anneal_minutes: float = 0.0
    lr_min: float = 1e-5
    init_from: str = ""
    num_workers: int = 0
    mixed_precision: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.loss not in ("mae", "chi2_pearson", "hybrid"):
            raise ConfigError(f"loss must be mae, chi2_pearson or hybrid, got {self.loss!r}")
        if self.n_train < 1 or self.n_val < 0 or self.epochs < 1 or self.batch_size < 1:
            raise ConfigError("n_train, epochs and batch_size must be >= 1 and n_val >= 0")
        if not 0.0 < self.lr < 1.0:
            raise ConfigError(f"learning rate must be in (0, 1), got {self.lr}")
        if self.anneal_minutes < 0 or self.minutes < 0:
            raise ConfigError("minutes and anneal_minutes must be >= 0")
        if self.anneal_minutes > 0 and not 0 < self.anneal_minutes <= self.minutes:
            raise ConfigError(
                f"anneal_minutes ({self.anneal_minutes}) needs a time budget `minutes` at least "
                f"as long, got minutes={self.minutes}"
            )
        if not 0.0 <= self.lr_min <= self.lr:
            raise ConfigError(f"lr_min must be in [0, lr], got {self.lr_min}")

    def model_config(self) -> ModelConfig:
        """Return the ``ModelConfig`` this recipe trains."""
        return ModelConfig(
            dims=self.dims,
            input_size=self.shape,
            output_size=self.shape // 2,
            width=self.width,
            depth=self.depth,
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the recipe as JSON-serialisable values (tuples become lists)."""
        data = asdict(self)
        data["photons"] = list(self.photons)
        return data

    def with_overrides(self, **overrides: Any) -> TrainRecipe:
        """Return a copy with some fields replaced; unknown names raise ``ConfigError``."""
        known = {f.name for f in fields(self)}
        unknown = sorted(k for k, v in overrides.items() if k not in known)
        if unknown:
            raise ConfigError(f"unknown training option(s) {unknown}; known: {sorted(known)}")
        clean = {k: v for k, v in overrides.items() if v is not None}
        if "photons" in clean:
            clean["photons"] = tuple(float(p) for p in clean["photons"])
        return replace(self, **clean)


# Named recipes. "default" is the shipped model: see docs/network.md for how long it trained.
RECIPES: dict[str, TrainRecipe] = {
    "default": TrainRecipe(
        name="default",
        dims=3,
        shape=64,
        width=8,
        depth=3,
        kind="mixed",
        photons=(1e5, 1e9),
        n_train=4096,
        n_val=64,
        fresh_each_epoch=False,
        epochs=40,
        batch_size=4,
        lr=1e-3,
        loss="hybrid",
        supervised_weight=1.0,
        threshold_ramp_epochs=3,
        minutes=180.0,
        anneal_minutes=85.0,
    ),
    # The shipped 2D model (default_2d.pt): the same network in 2D on 64² patterns of the same
    # object families; 2D steps are ~100x cheaper, so it is wider and sees more patterns.
    "default2d": TrainRecipe(
        name="default2d",
        dims=2,
        shape=64,
        width=16,
        depth=3,
        kind="mixed",
        photons=(1e5, 1e9),
        n_train=8192,
        n_val=128,
        fresh_each_epoch=False,
        epochs=400,
        batch_size=16,
        lr=1e-3,
        loss="hybrid",
        supervised_weight=1.0,
        threshold_ramp_epochs=3,
        early_stop_patience=12,
        minutes=30.0,
        anneal_minutes=12.0,
    ),
    # A seconds-long recipe for tests and smoke checks (16^3 input, 2 levels).
    "tiny": TrainRecipe(
        name="tiny",
        dims=3,
        shape=16,
        width=4,
        depth=2,
        n_train=8,
        n_val=4,
        epochs=2,
        batch_size=4,
        lr=1e-3,
    ),
    "tiny2d": TrainRecipe(
        name="tiny2d",
        dims=2,
        shape=32,
        width=4,
        depth=2,
        n_train=8,
        n_val=4,
        epochs=2,
        batch_size=4,
        lr=1e-3,
    ),
}


def get_recipe(name: str | TrainRecipe, **overrides: Any) -> TrainRecipe:
    """Return the named recipe (or the given one) with ``overrides`` applied."""
    if isinstance(name, TrainRecipe):
        recipe = name
    else:
        if name not in RECIPES:
            raise ConfigError(f"unknown recipe {name!r}; known: {sorted(RECIPES)}")
        recipe = RECIPES[name]
    return recipe.with_overrides(**overrides)
