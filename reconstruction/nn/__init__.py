"""The physics-aware phase-retrieval network (AutoPhaseNN idea): model, training, prediction.

Public API: ``PhaseNet`` and ``ModelConfig`` (the model), ``TrainRecipe`` / ``RECIPES``
(training runs), ``load_checkpoint`` / ``save_checkpoint`` (one-file checkpoints),
``predict_objects`` / ``optimise_on_pattern`` (inference), ``default_checkpoint_path`` (the
shipped model). Workflows for the CLI and the web app are in ``reconstruction.nn.workflow``.
See docs/network.md.
"""

from reconstruction.nn.checkpoint import LoadedCheckpoint, load_checkpoint, save_checkpoint
from reconstruction.nn.config import RECIPES, ModelConfig, TrainRecipe, get_recipe
from reconstruction.nn.model import PhaseNet
from reconstruction.nn.predict import optimise_on_pattern, predict_averaged, predict_objects
from reconstruction.nn.workflow import default_checkpoint_path

__all__ = [
    "RECIPES",
    "LoadedCheckpoint",
    "ModelConfig",
    "PhaseNet",
    "TrainRecipe",
    "default_checkpoint_path",
    "get_recipe",
    "load_checkpoint",
    "optimise_on_pattern",
    "predict_averaged",
    "predict_objects",
    "save_checkpoint",
]
