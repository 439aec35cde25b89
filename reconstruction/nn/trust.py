"""Is a prediction a crystal, or the average of a crystal and its twin?

A pattern cannot tell an object rho(r) from its twin conj(rho(-r)). Where the network cannot
choose between them (lopsided crystals: tetrahedra, truncated ones), it predicts their average:
full amplitude where the two overlap, about half where only one of them is. A crystal's own
amplitude is uniform inside (the held-out truths vary by 3 % of their mean, the 90th
percentile 9 %), so a large spread of the predicted amplitude inside its support marks such a
start. ER**50 from it never succeeded on 100 held-out simulations; random starts did
(``benchmarks/RESULTS.md``, *Twin-averaged predictions*).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

# Voxels peeled off the support before the spread is taken: the crystal's smooth edge is not
# a sign of anything.
CORE_EROSION = 2

# Thresholds on ``amplitude_spread`` by (dims, views averaged), calibrated with the shipped
# models on 200 held-out simulations (seeds HELD_OUT_SEED + 100..299, not the benchmark's 0..99):
# one view: 0.22 flags 87 % of the lopsided crystals (centrosymmetry < 0.8) and 10 % of the
# others; averaged views are smoother, 0.18 flags 89-91 % and 9 %. None in 2D: a 2D pattern is
# a projection's, whose amplitude follows the crystal's thickness, so the spread says nothing
# there (the same calibration on the shipped 2D model flagged 33 % of lopsided shapes and 41 %
# of the others).
TWIN_AVERAGED_SPREAD = {1: 0.22, 4: 0.18, 8: 0.18}


def amplitude_spread(obj: np.ndarray, support: np.ndarray) -> float:
    """Coefficient of variation (std / mean, dimensionless) of |obj| inside ``support`` eroded by
    ``CORE_EROSION`` voxels (the whole support when less than 8 voxels remain); 0 for an
    empty support."""
    support = np.asarray(support, bool)
    core = ndimage.binary_erosion(support, iterations=CORE_EROSION)
    if core.sum() < 8:
        core = support
    if not core.any():
        return 0.0
    amplitude = np.abs(np.asarray(obj))[core].astype(np.float64)
    mean = float(amplitude.mean())
    return float(amplitude.std() / mean) if mean > 0 else 0.0


def twin_averaged_threshold(dims: int, views: int) -> float | None:
    """The ``amplitude_spread`` above which a 3D prediction of ``views`` averaged views is taken
    for a crystal-and-twin average; None in 2D, where the spread is not a sign of it."""
    if dims != 3:
        return None
    return TWIN_AVERAGED_SPREAD.get(views, TWIN_AVERAGED_SPREAD[1])


def is_twin_averaged(spread: float, threshold: float | None) -> bool:
    """Whether a prediction of ``amplitude_spread`` ``spread`` is taken for a crystal-and-twin
    average, ``threshold`` being ``twin_averaged_threshold``'s (None, in 2D: never)."""
    return threshold is not None and spread > threshold


def twin_averaged_message(spread: float, threshold: float) -> str:
    """The warning a user reads when a prediction looks like a crystal averaged with its twin."""
    return (
        f"the predicted amplitude varies by {100 * spread:.0f} % inside the crystal (above "
        f"{100 * threshold:.0f} %): it looks like the average of the crystal and its twin image, "
        "which the network could not tell apart. Refining it rarely recovers the crystal; "
        "phase from random starts as well"
    )
