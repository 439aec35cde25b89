"""One-file model checkpoints: save, load (``weights_only=True``-safe) and verify.

A checkpoint is ``torch.save`` of a dict holding only tensors and plain Python values::

    format          "cdi-phasenet-checkpoint"
    format_version  1
    name            short model name, e.g. "default-3d"
    state_dict      the weights (tensors)
    weights_sha256  sha256 over every (name, dtype, shape, bytes) of the weights, sorted
    config          ModelConfig as a dict
    recipe          the training recipe (dict), including the simulated-data recipe
    history         {"train_loss": [...], "val_loss": [...], "lr": [...], "seconds": [...]}
    metrics         final scalars (best validation loss, epochs, seconds ...)
    code_version    reconstruction.__version__ that wrote it
    created         ISO 8601 UTC time
    parent          {"name", "weights_sha256"} of the model it was fine-tuned or continued from
                    (plus "widened_from_width" when it was widened), or None
    patterns_sha256 sha256 of the pattern files it was fine-tuned on ([] for pre-training)
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import torch

from reconstruction import __version__
from reconstruction.errors import CheckpointError, ConfigError
from reconstruction.nn.config import ModelConfig
from reconstruction.nn.model import PhaseNet

FORMAT = "cdi-phasenet-checkpoint"
FORMAT_VERSION = 1
REQUIRED_KEYS = ("format", "format_version", "state_dict", "weights_sha256", "config")


def weights_sha256(state_dict: dict[str, torch.Tensor]) -> str:
    """Return the sha256 hex digest of a state dict (names, dtypes, shapes and bytes, sorted)."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        digest.update(name.encode())
        digest.update(str(tensor.dtype).encode())
        digest.update(str(tuple(tensor.shape)).encode())
        if tensor.numel():
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _plain_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """State dict of ``model`` (unwrapping DDP), on the CPU, detached."""
    module = model.module if hasattr(model, "module") else model
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


def save_checkpoint(
    path: str | Path,
    model: torch.nn.Module,
    *,
    name: str,
    recipe: dict[str, Any] | None = None,
    history: dict[str, list[float]] | None = None,
    metrics: dict[str, Any] | None = None,
    parent: dict[str, Any] | None = None,
    patterns_sha256: list[str] | None = None,
) -> dict[str, Any]:
    """Write ``model`` and its description to ``path`` atomically; return the saved dict.

    The file is written to a temporary file in the same folder and moved into place, so a
    reader never sees a half-written checkpoint (training writes one every epoch).
    """
    module = model.module if hasattr(model, "module") else model
    state = _plain_state(module)
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": name,
        "state_dict": state,
        "weights_sha256": weights_sha256(state),
        "config": module.config.to_dict(),
        "recipe": dict(recipe or {}),
        "history": {k: [float(x) for x in v] for k, v in (history or {}).items()},
        "metrics": dict(metrics or {}),
        "code_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "parent": dict(parent) if parent else None,
        "patterns_sha256": list(patterns_sha256 or []),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(payload, tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; a model is meant to be shared
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return payload


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read and verify a checkpoint dict (no model built); raise ``CheckpointError`` if bad."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path} is not a model checkpoint (not a PyTorch checkpoint archive)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's own text advises weights_only=False, i.e. running the file's code: never relay it
        raise CheckpointError(
            f"{path} is not a model checkpoint (it holds Python objects other than tensors and "
            "plain values; they are not loaded, since loading them could run code)"
        ) from exc
    except (zipfile.BadZipFile, RuntimeError, EOFError, OSError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise CheckpointError(
            f"{path} is not a model checkpoint (could not read it as one: {reason})"
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a model checkpoint of this program")
    missing = [k for k in REQUIRED_KEYS if k not in payload]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {missing}")
    if int(payload["format_version"]) > FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format version {payload['format_version']}, this code reads "
            f"up to {FORMAT_VERSION}: update the program"
        )
    actual = weights_sha256(payload["state_dict"])
    if actual != payload["weights_sha256"]:
        raise CheckpointError(
            f"checkpoint {path} is corrupt: its weights hash to {actual[:12]}…, the file says "
            f"{str(payload['weights_sha256'])[:12]}…"
        )
    return payload


class LoadedCheckpoint(NamedTuple):
    """``(model, payload)``: the model in eval mode and the verified checkpoint dict.

    Unpacks as a pair; ``config``, ``metrics``, ``name``, ``weights_sha256``, ``recipe`` and
    ``history`` read the payload's entries.
    """

    model: PhaseNet
    payload: dict[str, Any]

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.payload["config"])

    @property
    def metrics(self) -> dict[str, Any]:
        return dict(self.payload.get("metrics", {}))

    @property
    def name(self) -> str:
        return str(self.payload.get("name", ""))

    @property
    def weights_sha256(self) -> str:
        return str(self.payload["weights_sha256"])

    @property
    def recipe(self) -> dict[str, Any]:
        return dict(self.payload.get("recipe", {}))

    @property
    def history(self) -> dict[str, list[float]]:
        return dict(self.payload.get("history", {}))


def load_checkpoint(
    path: str | Path, *, device: torch.device | str = "cpu", dims: int | None = None
) -> LoadedCheckpoint:
    """Load a checkpoint into a ``PhaseNet`` in eval mode; return ``(model, payload)``.

    Raises ``CheckpointError`` when the file is missing, is not a checkpoint, its weights do not
    match their sha256, its config is unknown to this code, the weights do not fit the config,
    or ``dims`` is given and differs from the model's.
    """
    payload = read_checkpoint(path)
    try:
        config = ModelConfig.from_dict(dict(payload["config"]))
    except (ConfigError, TypeError) as exc:
        raise CheckpointError(f"checkpoint {path} has an incompatible model config: {exc}") from exc
    if dims is not None and config.dims != dims:
        raise CheckpointError(
            f"checkpoint {path} is a {config.dims}D model, a {dims}D model was asked for"
        )
    model = PhaseNet(config)
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise CheckpointError(
            f"checkpoint {path}: weights do not fit its model config ({str(exc).splitlines()[0]})"
        ) from exc
    model.to(device).eval()
    return LoadedCheckpoint(model, payload)


def describe(payload: dict[str, Any]) -> dict[str, Any]:
    """Return the JSON-serialisable description of a checkpoint (everything but the weights)."""
    return {k: v for k, v in payload.items() if k != "state_dict"}
