"""Mode decomposition of aligned runs: how much of an ensemble one object explains."""

from __future__ import annotations

from typing import Any

import numpy as np

from reconstruction.errors import InvalidDataError


def mode_decomposition(objs, *, n_modes: int | None = None) -> dict[str, Any]:
    """Orthogonal modes of R aligned reconstructions (shift, twin, global phase already removed).

    Each run is scaled to unit norm (so a brighter run does not weigh more), the runs are
    decomposed by SVD (through their R×R Gram matrix), and the modes are returned with their
    weights: the fraction of the ensemble's total intensity each carries, descending, sum 1. A
    first-mode weight near 1 means the runs agree; PyNX reports the same number.

    Returns ``weights`` (R,) and ``modes`` (n_modes, ...) complex (unit norm), ``n_modes``
    default 1.
    """
    objs = np.asarray(objs)
    if objs.ndim < 2 or objs.shape[0] < 1:
        raise InvalidDataError("mode decomposition needs a stack of runs (R, ...)")
    flat = objs.reshape(objs.shape[0], -1).astype(np.complex128)
    norms = np.linalg.norm(flat, axis=1)
    if not np.all(norms > 0):
        raise InvalidDataError("mode decomposition: a run is all zero")
    flat /= norms[:, None]
    gram = flat.conj() @ flat.T  # (R, R) Hermitian, G_ij = <ψ_i, ψ_j>
    values, vectors = np.linalg.eigh(gram)
    values, vectors = np.clip(values[::-1], 0.0, None), vectors[:, ::-1]
    weights = values / values.sum()
    keep = min(n_modes or 1, len(values))
    modes = []
    for k in range(keep):
        mode = vectors[:, k] @ flat  # Σ_i v_ik ψ_i, norm sqrt(λ_k)
        modes.append((mode / max(np.linalg.norm(mode), 1e-300)).reshape(objs.shape[1:]))
    return {"weights": weights, "modes": np.stack(modes)}


__all__ = ["mode_decomposition"]
