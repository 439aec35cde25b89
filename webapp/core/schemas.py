"""Job parameter schemas: what each job kind accepts, its defaults and named presets.

The viewer renders submit forms from ``PARAM_SPECS`` and ``PRESETS``; ``validate_params`` is
called by ``services.job_submit`` and fills defaults. Parameter names are the keyword names of
the library workflow functions the tasks call (``phase_file``, ``refine_file`` ...).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from django.core.exceptions import ValidationError

JOB_KINDS = ("simulate", "train", "finetune", "predict", "refine", "phase", "pipeline")

#: Celery queue of each kind: GPU work on "gpu", the rest on "cpu".
QUEUES = {
    "simulate": "cpu",
    "train": "gpu",
    "finetune": "gpu",
    "predict": "gpu",
    "refine": "gpu",
    "phase": "gpu",
    "pipeline": "gpu",
}

#: Kinds that need an input dataset (a diffraction pattern).
NEEDS_DATASET = ("finetune", "predict", "refine", "phase", "pipeline")

#: Kinds that may take a dataset of one kind: a train job's optional training set is a simulate
#: job's output ("simulated-set"); without one it simulates its own data.
OPTIONAL_DATASET = {"train": "simulated-set"}


@dataclass(frozen=True)
class ParamSpec:
    """One job parameter: its type ("int"|"float"|"str"|"bool"|"choice"|"dataset": the id of a
    dataset of the job's group, 0 = none), default and bounds."""

    name: str
    type: str
    default: Any
    help: str
    choices: tuple | None = None
    min: float | None = None
    max: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable description (for the API and the forms)."""
        out = asdict(self)
        out["choices"] = list(self.choices) if self.choices is not None else None
        return out


_ALGORITHM_HELP = "schedule string, e.g. ER**20,HIO**160,ER**20 (run n times with 'cycles')"
_SHRINKWRAP_HELP = "update the support by shrink-wrap during the schedule, as random starts do (off: keep the prediction's 10 % support fixed)"
_PSF_HELP = "model partial coherence (PyNX's psf): empty = off; 'on' = a Gaussian point-spread function of 0.5 px FWHM fitted to the data from half the iterations on; or MODEL,FWHM[,ETA][,PERIOD] such as gaussian,0.5,20 or pseudo-voigt,1,0.05,20. Chi2 is then that of the blurred model. A random start widens the kernel as the data demand (on simulated blurred patterns it lowered the median error from 0.37 to 0.34, for 1.7x the time; it can cost a little on coherent data); a refinement from a converged start barely moves it, so give it the width a phase job fitted (e.g. gaussian,1.1,5 on the APS gold scan)"
_FLIPS_HELP = "average the network's predictions of this many mirrored views of the pattern (test-time augmentation: 4 lowered the error after refinement in 64 % of simulated 3D patterns and raised the success rate from 32 to 37 %, for 0.1 s more; 8 in 3D only)"

PARAM_SPECS: dict[str, list[ParamSpec]] = {
    "simulate": [
        ParamSpec("kind", "choice", "mixed", "family of simulated objects", choices=("mixed", "superellipsoid", "crystal")),
        ParamSpec("n", "int", 16, "number of patterns", min=1, max=100_000),
        ParamSpec("shape", "choice", 64, "pattern side in pixels", choices=(16, 32, 64, 128)),
        ParamSpec("dims", "choice", 3, "2D or 3D patterns", choices=(2, 3)),
        ParamSpec("photons_min", "float", 1e5, "fewest photons per pattern", min=1.0, max=1e12),
        ParamSpec("photons_max", "float", 1e9, "most photons per pattern", min=1.0, max=1e12),
        ParamSpec("seed", "int", 0, "random seed", min=0, max=2**31 - 1),
        ParamSpec("cxi", "bool", False, "also write one CXI file per pattern"),
    ],
    "train": [
        ParamSpec("recipe", "choice", "default", "training recipe (docs/network.md): default = the shipped 3D model's, default2d = the shipped 2D model's, tiny / tiny2d = seconds-long smoke tests", choices=("default", "default2d", "tiny", "tiny2d")),
        ParamSpec("epochs", "int", 0, "epochs (0 = the recipe's)", min=0, max=100_000),
        ParamSpec("minutes", "float", 0.0, "wall-clock budget in minutes (0 = the recipe's)", min=0.0, max=7 * 24 * 60),
        ParamSpec("n_train", "int", 0, "training patterns (0 = the recipe's; with a simulated-set dataset: all of them)", min=0, max=10_000_000),
        ParamSpec("seed", "int", 0, "random seed (0 = the recipe's)", min=0, max=2**31 - 1),
        ParamSpec("name", "str", "", "model name for the new candidate version (default: the recipe's)"),
    ],
    "finetune": [
        ParamSpec("steps", "int", 200, "optimisation steps", min=1, max=1_000_000),
        ParamSpec("lr", "float", 1e-4, "learning rate", min=1e-8, max=1.0),
        ParamSpec("batch_size", "int", 4, "patterns per step", min=1, max=256),
        ParamSpec("freeze_encoder", "bool", False, "train the decoders only"),
        ParamSpec("augment", "bool", True, "physically valid pattern augmentations"),
        ParamSpec("seed", "int", 0, "random seed", min=0, max=2**31 - 1),
        ParamSpec("name", "str", "", "model name for the new candidate version (default: the base model's)"),
    ],
    "predict": [
        ParamSpec("threshold", "float", 0.1, "support = amplitude above this fraction of max", min=0.0, max=1.0),
        ParamSpec("optimise_steps", "int", 0, "optimise the weights on this pattern first (0 = plain prediction)", min=0, max=100_000),
        ParamSpec("flips", "choice", 1, _FLIPS_HELP, choices=(1, 4, 8)),
    ],
    "refine": [
        ParamSpec("algorithm", "str", "ER**50", _ALGORITHM_HELP),
        ParamSpec("support_threshold", "float", 0.1, "support = amplitude above this fraction of max", min=0.0, max=1.0),
        ParamSpec("shrinkwrap", "bool", True, _SHRINKWRAP_HELP),
        ParamSpec("psf", "str", "", _PSF_HELP),
    ],
    "phase": [
        ParamSpec("algorithm", "str", "ER**20,HIO**160,ER**20", _ALGORITHM_HELP),
        ParamSpec("cycles", "int", 3, "how many times the schedule is run", min=1, max=100),
        ParamSpec("runs", "int", 1, "independent random starts", min=1, max=256),
        ParamSpec("keep", "int", 1, "best runs kept and averaged", min=1, max=256),
        ParamSpec("support", "str", "auto", "initial support: 'auto' (from the autocorrelation), 'box' or a box size in pixels"),
        ParamSpec("support_dataset", "dataset", 0, "a support file of your group (a 0/1 image such as ESRF's support EDF, or a reconstructed object) replacing 'support'; of the raw frame's shape, the data are phased on that frame's grid", min=0),
        ParamSpec("shape", "choice", "default", "grid a raw pattern is phased on: default = 64 per axis in 3D, the whole pattern in 2D; full = the whole pattern (binned towards oversampling 3, at most 1024² / 256³); or pixels per axis", choices=("default", "full", 32, 64, 128, 256)),
        ParamSpec("shrinkwrap_threshold", "float", 0.15, "shrink-wrap keeps the blurred amplitude above this fraction of its maximum (0.1 for sparse objects such as ESRF's logo, with a long HIO schedule); not used with a support file", min=0.01, max=0.9),
        ParamSpec("positivity", "bool", False, "force a real, positive object (forward CDI of a weak phase object; never Bragg CDI)"),
        ParamSpec("psf", "str", "", _PSF_HELP),
        ParamSpec("seed", "int", 0, "random seed", min=0, max=2**31 - 1),
    ],
    "pipeline": [
        ParamSpec("optimise_steps", "int", 0, "optimise the network on this pattern before predicting (0 = plain prediction)", min=0, max=100_000),
        ParamSpec("flips", "choice", 4, _FLIPS_HELP, choices=(1, 4, 8)),
        ParamSpec("algorithm", "str", "ER**50", "refinement schedule run from the network's prediction"),
        ParamSpec("fallback_runs", "int", 2, "random starts phased as well when a 3D prediction looks like the average of the crystal and its twin (the better fit is kept; 0 = never)", min=0, max=64),
        ParamSpec("support_threshold", "float", 0.1, "support = amplitude above this fraction of max", min=0.0, max=1.0),
        ParamSpec("shrinkwrap", "bool", True, _SHRINKWRAP_HELP),
        ParamSpec("psf", "str", "", _PSF_HELP),
    ],
}

# Refinements seeded by the network. "thorough": one run of 200 iterations with shrink-wrap; on
# 100 held-out simulations its chi2 is no worse than the best of 5 random 600-iteration starts
# in 67-74 % of patterns (HIO is chaotic: runs differ by a few patterns), ~15x faster
# (benchmarks/RESULTS.md); "full": the 600-iteration recipe.
_SEEDED: dict[str, dict[str, Any]] = {
    "thorough": {"algorithm": "ER**20,HIO**160,ER**20", "shrinkwrap": True},
    "full": {"algorithm": "(ER**20,HIO**160,ER**20)**3", "shrinkwrap": True},
}

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "simulate": {
        "quick": {"n": 8, "shape": 32},
        "training-set": {"n": 1000, "shape": 64},
    },
    "train": {"default": {"recipe": "default"}, "smoke-test": {"recipe": "tiny"}},
    "finetune": {"quick": {"steps": 50}, "default": {"steps": 200}},
    "predict": {"default": {}, "adapt": {"optimise_steps": 50}},
    "refine": {"quick": {"algorithm": "ER**20"}, "standard": {"algorithm": "ER**50"}, **_SEEDED},
    "phase": {
        "quick": {"algorithm": "ER**10,HIO**40,ER**10", "cycles": 1},
        "standard": {"algorithm": "ER**20,HIO**160,ER**20", "cycles": 3},
        "cohere-like": {"algorithm": "ER**20,HIO**180", "cycles": 3},
        "many-starts": {"algorithm": "ER**20,HIO**160,ER**20", "cycles": 3, "runs": 8, "keep": 2},
        # sparse forward-CDI objects without a support file (finds ESRF's logo, docs/phasing.md)
        "sparse-2d": {"algorithm": "HIO**2000,ER**300", "cycles": 1, "runs": 4, "shrinkwrap_threshold": 0.1},
        # measured data with partial coherence: a fitted PSF (APS scan: chi2_free 0.0112 -> 0.0060)
        "partial-coherence": {"algorithm": "ER**20,HIO**160,ER**20", "cycles": 3, "runs": 4, "keep": 2, "psf": "on"},
    },
    "pipeline": {"quick": {"algorithm": "ER**20"}, "standard": {"algorithm": "ER**50"}, **_SEEDED},
}


def _coerce(spec: ParamSpec, value: Any) -> Any:
    """Convert ``value`` to the spec's type or raise ValueError with a readable reason."""
    if spec.type == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on", "false", "0", "no", "off", ""):
            return value.lower() in ("true", "1", "yes", "on")
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ValueError("expected true or false")
    if spec.type in ("int", "dataset"):
        if value in ("", None) and spec.type == "dataset":
            return 0
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError("expected an integer")
        out: Any = int(value)
    elif spec.type == "float":
        if isinstance(value, bool):
            raise ValueError("expected a number")
        out = float(value)
        if out != out or out in (float("inf"), float("-inf")):
            raise ValueError("expected a finite number")
    elif spec.type == "choice":
        for choice in spec.choices or ():
            if value == choice or str(value) == str(choice):
                return choice
        raise ValueError(f"expected one of {', '.join(str(c) for c in spec.choices or ())}")
    else:
        if not isinstance(value, str):
            raise ValueError("expected text")
        out = value.strip()
        if len(out) > 500:
            raise ValueError("too long (500 characters at most)")
        return out
    if spec.min is not None and out < spec.min:
        raise ValueError(f"must be ≥ {spec.min:g}")
    if spec.max is not None and out > spec.max:
        raise ValueError(f"must be ≤ {spec.max:g}")
    return out


def _computed_support(value: str) -> bool:
    """True for the supports the engine computes itself: "auto", "box" or a box size of 1 to
    4096 pixels (never a file name: support files are datasets, see ``support_dataset``)."""
    from reconstruction.phasing.support import names_computed_support

    return names_computed_support(value) and (not value.isdigit() or 0 < int(value) <= 4096)


def validate_params(kind: str, params: dict[str, Any] | None, *, preset: str | None = None) -> dict[str, Any]:
    """Return the full parameter dict of a ``kind`` job: defaults, then ``preset``, then ``params``.

    Raises ``ValidationError`` listing every bad or unknown field.
    """
    if kind not in JOB_KINDS:
        raise ValidationError({"kind": f"unknown job kind {kind!r}; expected one of {', '.join(JOB_KINDS)}"})
    params = dict(params or {})
    specs = {spec.name: spec for spec in PARAM_SPECS[kind]}
    merged: dict[str, Any] = {name: spec.default for name, spec in specs.items()}
    if preset:
        if preset not in PRESETS.get(kind, {}):
            raise ValidationError({"preset": f"unknown preset {preset!r} for {kind}; expected one of {', '.join(PRESETS.get(kind, {}))}"})
        merged.update(PRESETS[kind][preset])
    errors: dict[str, str] = {}
    for name, value in params.items():
        if name not in specs:
            errors[name] = f"unknown parameter for a {kind} job"
            continue
        try:
            merged[name] = _coerce(specs[name], value)
        except (TypeError, ValueError) as exc:
            errors[name] = str(exc) if str(exc) else "invalid value"
    if kind == "phase" and not errors and merged["keep"] > merged["runs"]:
        errors["keep"] = "must not exceed runs"
    if "algorithm" in merged and not errors:
        from reconstruction.errors import ConfigError
        from reconstruction.phasing.schedule import parse_schedule

        try:
            parse_schedule(merged["algorithm"], cycles=merged.get("cycles", 1))
        except ConfigError as exc:
            errors["algorithm"] = str(exc)
    if kind == "phase" and "support" not in errors and not _computed_support(merged["support"]):
        errors["support"] = ("'auto', 'box' or a box size in pixels; to use a support file, upload it "
                             "and choose it as support_dataset")
    if merged.get("psf") and "psf" not in errors:
        from reconstruction.errors import ConfigError
        from reconstruction.phasing.coherence import resolve_psf

        try:
            resolve_psf(merged["psf"])
        except ConfigError as exc:
            errors["psf"] = str(exc)
    if kind == "simulate" and not errors and merged["photons_min"] > merged["photons_max"]:
        errors["photons_min"] = "must not exceed photons_max"
    if errors:
        raise ValidationError(errors)
    return merged


def specs_as_json() -> dict[str, Any]:
    """Every kind's parameter specs, presets and queue, JSON-serialisable."""
    return {
        kind: {
            "params": [spec.as_dict() for spec in PARAM_SPECS[kind]],
            "presets": PRESETS.get(kind, {}),
            "queue": QUEUES[kind],
            "needs_dataset": kind in NEEDS_DATASET,
            "optional_dataset_kind": OPTIONAL_DATASET.get(kind),
        }
        for kind in JOB_KINDS
    }
