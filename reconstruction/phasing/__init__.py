"""Iterative phase retrieval (ER / HIO / RAAR + shrink-wrap) in PyTorch, CPU or CUDA.

``phase_retrieve(intensity, *, mask=None, support="auto", algorithm="ER**20,HIO**160,ER**20",
n_cycles=3, runs=1, keep=1, seed=0, ...) -> PhasingResult``; algorithm strings are parsed by
``parse_schedule``; file workflows (``phase_file``, ``refine_file``) are in
``reconstruction.phasing.workflow``. See docs/phasing.md.
"""

from reconstruction.phasing.retrieve import DEFAULT_ALGORITHM, PhasingResult, phase_retrieve
from reconstruction.phasing.schedule import Schedule, parse_schedule
from reconstruction.phasing.support import (
    ShrinkWrap,
    autocorrelation_support,
    box_support,
    support_from_object,
)

__all__ = [
    "DEFAULT_ALGORITHM",
    "PhasingResult",
    "Schedule",
    "ShrinkWrap",
    "autocorrelation_support",
    "box_support",
    "parse_schedule",
    "phase_retrieve",
    "support_from_object",
]
