"""Fused CPU kernel for the modulus projection (numba), used by the engine on the CPU.

On the CPU the torch version of the modulus step is a chain of eight pointwise calls, each a
full pass over the box; at 64^3 that chain cost more than half an FFT pair per iteration,
mostly in memory traffic. Here the whole step (|F|, chi2 and chi2_free sums, the amplitude
replacement that leaves unconstrained pixels free) is one pass, parallel over voxels, with the
sums accumulated in float64. CUDA keeps the torch chain (its kernels are already fast).

numba is imported on first use; when it cannot be imported or the kernels fail to compile, the
engine falls back to the torch chain (with a logged warning).
"""

from __future__ import annotations

import functools
import logging
import math

import numpy as np

logger = logging.getLogger(__name__)

_TINY = np.float32(1e-30)


@functools.lru_cache(maxsize=1)
def _compiled():
    """(numba, modulus, modulus_free), compiled on first call; None without numba."""
    try:
        import numba
    except ImportError:  # pragma: no cover - numba is pinned in requirements.txt
        return None
    try:
        return (numba, *_build(numba, cache=True))
    except RuntimeError:  # no writable cache location (read-only install, no home): compile
        return (numba, *_build(numba, cache=False))


def _build(numba, *, cache: bool):
    """Jit the two kernels; ``cache`` keeps the machine code on disk for the next process."""
    opts = {
        "parallel": True, "fastmath": True, "cache": cache, "nogil": True, "error_model": "numpy"
    }

    @numba.njit(inline="always", fastmath=True, error_model="numpy")
    def project(f, a, w):  # pragma: no cover - compiled
        """(|f|, f with its modulus replaced by a where w = 1, kept where w = 0)."""
        m = math.sqrt(f.real * f.real + f.imag * f.imag)
        return m, f * (a / max(m, _TINY) + (np.float32(1.0) - w))

    @numba.njit(**opts)
    def modulus(F, wa, w, sums):  # pragma: no cover - compiled
        for b in range(F.shape[0]):
            s = 0.0
            for i in numba.prange(F.shape[1]):
                m, F[b, i] = project(F[b, i], wa[i], w[i])
                d = w[i] * m - wa[i]
                s += d * d
            sums[b, 0] = s

    @numba.njit(**opts)
    def modulus_free(F, wa, w, fa, fr, sums):  # pragma: no cover - compiled
        for b in range(F.shape[0]):
            s = 0.0
            sf = 0.0
            for i in numba.prange(F.shape[1]):
                m, F[b, i] = project(F[b, i], wa[i], w[i])
                d = w[i] * m - wa[i]
                s += d * d
                df = fr[i] * m - fa[i]
                sf += df * df
            sums[b, 0] = s
            sums[b, 1] = sf

    return modulus, modulus_free


@functools.lru_cache(maxsize=1)
def available() -> bool:
    """Whether the fused CPU kernel can be used: numba imports and the kernels compile (or load
    from the disk cache) for the engine's dtypes. Checked once per process; the first call pays
    the compilation (about 2 s, 0.4 s from the cache), so the engine's iterations never do."""
    if _compiled() is None:
        return False
    try:
        F = np.zeros((1, 2), np.complex64)
        a = np.ones(2, np.float32)
        modulus_project(F, a, a)
        modulus_project(F, a, a, a, a)
    except Exception as exc:  # noqa: BLE001 - any compiler failure: fall back to torch
        logger.warning("the fused modulus kernel is unavailable (%s); using torch", exc)
        return False
    return True


def set_threads(n: int) -> int:
    """Use ``n`` threads (capped at numba's pool size) in the kernel; return the previous count."""
    numba = _compiled()[0]
    before = numba.get_num_threads()
    numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))
    return before


def modulus_project(
    F: np.ndarray,
    wa: np.ndarray,
    w: np.ndarray,
    fa: np.ndarray | None = None,
    fr: np.ndarray | None = None,
) -> np.ndarray:
    """Replace |F| by ``wa`` where ``w`` = 1, keep F where ``w`` = 0, in place; return the sums.

    F : (B, N) complex64 (a view of the torch FFT buffer, unnormalised forward transform).
    wa, w : (N,) float32, w * measured amplitude on F's scale, and the 0/1 constraint weight.
    fa, fr : (N,) float32, the same for the free pixels, or None.
    Returns (B, 2) float64: sum w (|F| - A)^2 and sum over free pixels (|F| - A)^2 (0 without
    free pixels), both on F's scale, computed before the replacement.
    """
    _, modulus, modulus_free = _compiled()
    sums = np.zeros((F.shape[0], 2))
    if fa is None:
        modulus(F, wa, w, sums)
    else:
        modulus_free(F, wa, w, fa, fr, sums)
    return sums
