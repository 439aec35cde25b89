"""Fused CPU kernels (numba) for the two pointwise steps of an iteration, used by the engine.

On the CPU the torch version of the modulus step is a chain of eight pointwise calls, each a
full pass over the box; at 64^3 that chain cost more than half an FFT pair per iteration,
mostly in memory traffic. Here the whole step (|F|, chi2 and chi2_free sums, the amplitude
replacement that leaves unconstrained pixels free) is one pass, parallel over voxels, with the
sums accumulated in float64. The real-space update (ER / HIO / RAAR: P inside the support, a
linear combination of psi and P outside) is a second pass, instead of a torch pass over the box
followed by an indexed copy of the support voxels (2-3x faster at 64^3 and 128^3). Shrink-wrap
gets two helpers: |P| in one pass, and the threshold (per-run maximum, comparison, voxel count).
A partially coherent model (``coherence``) gets two more: |F|² before its blur, and the modulus
step against the blurred intensity (bound, sqrt, chi2 sums, replacement) after it.
CUDA keeps the torch chain (its kernels are already fast).

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
_project = None  # the inlined modulus helper, set by _build before the kernels compile


@functools.lru_cache(maxsize=1)
def _compiled():
    """(numba, modulus, modulus_free, update, amplitude, threshold, intensity, modulus_blurred),
    compiled on first call; None without numba."""
    try:
        import numba
    except ImportError:  # pragma: no cover - numba is pinned in requirements.txt
        return None
    try:
        return (numba, *_build(numba, cache=True))
    except RuntimeError:  # no writable cache location (read-only install, no home): compile
        return (numba, *_build(numba, cache=False))


def _build(numba, *, cache: bool):
    """Jit the kernels; ``cache`` keeps the machine code on disk for the next process."""
    opts = {
        "parallel": True, "fastmath": True, "cache": cache, "nogil": True, "error_model": "numpy"
    }

    global _project

    @numba.njit(inline="always", fastmath=True, error_model="numpy")
    def project(f, a, w, s):  # pragma: no cover - compiled
        """(|f|, s times f with its modulus replaced by a where w = 1, kept where w = 0)."""
        m = math.sqrt(f.real * f.real + f.imag * f.imag)
        return m, f * ((a / max(m, _TINY) + (np.float32(1.0) - w)) * s)

    # the kernels call the helper as a module global: a dispatcher captured in a closure
    # changes numba's cache key in every process, so the kernels were recompiled (1.3 s) each
    # time instead of loaded from the disk cache
    _project = project

    @numba.njit(**opts)
    def modulus(F, wa, w, sums, scale):  # pragma: no cover - compiled
        for b in range(F.shape[0]):
            s = 0.0
            for i in numba.prange(F.shape[1]):
                m, F[b, i] = _project(F[b, i], wa[i], w[i], scale)
                d = w[i] * m - wa[i]
                s += d * d
            sums[b, 0] = s

    @numba.njit(**opts)
    def modulus_free(F, wa, w, fa, fr, sums, scale):  # pragma: no cover - compiled
        for b in range(F.shape[0]):
            s = 0.0
            sf = 0.0
            for i in numba.prange(F.shape[1]):
                m, F[b, i] = _project(F[b, i], wa[i], w[i], scale)
                d = w[i] * m - wa[i]
                s += d * d
                df = fr[i] * m - fa[i]
                sf += df * df
            sums[b, 0] = s
            sums[b, 1] = sf

    @numba.njit(**opts)
    def update(psi, P, sup, c_psi, c_p):  # pragma: no cover - compiled
        for b in range(psi.shape[0]):
            for i in numba.prange(psi.shape[1]):
                p = P[b, i]
                if sup[b, i]:
                    psi[b, i] = p
                else:
                    psi[b, i] = c_psi * psi[b, i] + c_p * p

    @numba.njit(**opts)
    def amplitude(P, out):  # pragma: no cover - compiled
        for b in range(P.shape[0]):
            for i in numba.prange(P.shape[1]):
                p = P[b, i]
                out[b, i] = math.sqrt(p.real * p.real + p.imag * p.imag)

    @numba.njit(**opts)
    def intensity(F, out):  # pragma: no cover - compiled
        for b in range(F.shape[0]):
            for i in numba.prange(F.shape[1]):
                f = F[b, i]
                out[b, i] = f.real * f.real + f.imag * f.imag

    @numba.njit(**opts)
    def modulus_blurred(F, blurred, m2, centre, floor, wa, w, fa, fr, sums, scale):  # pragma: no cover
        for b in range(F.shape[0]):
            s = 0.0
            sf = 0.0
            k0 = centre[b]
            lo = floor[b]
            for i in numba.prange(F.shape[1]):
                m = math.sqrt(max(max(blurred[b, i], k0 * m2[b, i]), lo))
                d = w[i] * m - wa[i]
                s += d * d
                df = fr[i] * m - fa[i]
                sf += df * df
                F[b, i] = F[b, i] * ((wa[i] / m + (np.float32(1.0) - w[i])) * scale)
            sums[b, 0] = s
            sums[b, 1] = sf

    @numba.njit(**opts)
    def threshold(values, rel, out, counts):  # pragma: no cover - compiled
        for b in range(values.shape[0]):
            cut = rel * max(values[b].max(), _TINY)
            n = 0
            for i in numba.prange(values.shape[1]):
                inside = values[b, i] > cut
                out[b, i] = np.float32(1.0) if inside else np.float32(0.0)
                n += 1 if inside else 0
            counts[b] = n

    return modulus, modulus_free, update, amplitude, threshold, intensity, modulus_blurred


@functools.lru_cache(maxsize=1)
def available() -> bool:
    """Whether the fused CPU kernels can be used: numba imports and the kernels compile (or load
    from the disk cache) for the engine's dtypes. Checked once per process; the first call pays
    the compilation (about 1.5 s, 0.3 s from the cache), so the engine's iterations never do."""
    if _compiled() is None:
        return False
    try:
        F = np.zeros((1, 2), np.complex64)
        a = np.ones(2, np.float32)
        modulus_project(F, a, a)
        modulus_project(F, a, a, a, a)
        update_outside(F, F.copy(), np.ones((1, 2), np.uint8), 1.0, -0.9)
        amplitude_into(F, np.empty((1, 2), np.float32))
        threshold_support(np.ones((1, 2), np.float32), 0.5, np.empty((1, 2), np.float32))
        one = np.ones((1, 2), np.float32)
        intensity_into(F, one.copy())
        modulus_project_blurred(F, one, one, np.ones(1, np.float32), np.ones(1, np.float32), a, a)
    except Exception as exc:  # noqa: BLE001 - any compiler failure: fall back to torch
        logger.warning("the fused CPU kernels are unavailable (%s); using torch", exc)
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
    scale: float = 1.0,
) -> np.ndarray:
    """Replace |F| by ``wa`` where ``w`` = 1, keep F where ``w`` = 0, then multiply by ``scale``
    (1 / N before an unnormalised inverse FFT, 1 before torch's normalised one), in place;
    return the sums.

    F : (B, N) complex64 (a view of the torch FFT buffer, unnormalised forward transform).
    wa, w : (N,) float32, w * measured amplitude on F's scale, and the 0/1 constraint weight.
    fa, fr : (N,) float32, the same for the free pixels, or None.
    Returns (B, 2) float64: sum w (|F| - A)^2 and sum over free pixels (|F| - A)^2 (0 without
    free pixels), both on F's scale, computed before the replacement.
    """
    _, modulus, modulus_free = _compiled()[:3]
    sums = np.zeros((F.shape[0], 2))
    scale = np.float32(scale)
    if fa is None:
        modulus(F, wa, w, sums, scale)
    else:
        modulus_free(F, wa, w, fa, fr, sums, scale)
    return sums


def update_outside(psi: np.ndarray, P: np.ndarray, sup: np.ndarray, c_psi: float, c_p: float):
    """psi <- P where ``sup`` != 0, ``c_psi`` psi + ``c_p`` P elsewhere, in place.

    psi, P : (B, N) complex64 (the current iterate and its modulus projection, real space).
    sup : (B, N) uint8 support of each run. ER is (0, 0), HIO (1, -beta), RAAR (beta, 1 - 2 beta).
    """
    _compiled()[3](psi, P, sup, np.float32(c_psi), np.float32(c_p))


def amplitude_into(P: np.ndarray, out: np.ndarray) -> np.ndarray:
    """|P| of (B, N) complex64 into ``out`` (B, N) float32, one pass; returns ``out``."""
    _compiled()[4](P, out)
    return out


def intensity_into(F: np.ndarray, out: np.ndarray) -> np.ndarray:
    """|F|² of (B, N) complex64 into ``out`` (B, N) float32, one pass; returns ``out``."""
    _compiled()[6](F, out)
    return out


def modulus_project_blurred(
    F: np.ndarray,
    blurred: np.ndarray,
    m2: np.ndarray,
    centre: np.ndarray,
    floor: np.ndarray,
    wa: np.ndarray,
    w: np.ndarray,
    fa: np.ndarray | None = None,
    fr: np.ndarray | None = None,
    scale: float = 1.0,
) -> np.ndarray:
    """The modulus step against a partially coherent model, in place: with the calculated
    magnitude m = sqrt(max(blurred, centre[b] m2, floor[b])) (|F|² ⊗ K, bounded below as
    ``coherence.PsfModel.blur`` does), F <- F (wa / m + 1 - w) * ``scale``; return the sums.

    F : (B, N) complex64; blurred, m2 : (B, N) float32, |F|² ⊗ K unbounded and |F|²;
    centre, floor : (B,) float32, each run's K(0) and intensity floor; wa, w, fa, fr, scale and
    the returned (B, 2) float64 sums as in ``modulus_project`` (of m, before the replacement).
    """
    sums = np.zeros((F.shape[0], 2))
    if fa is None:
        fa = fr = _zeros(wa.shape[0])
    _compiled()[7](F, blurred, m2, centre, floor, wa, w, fa, fr, sums, np.float32(scale))
    return sums


@functools.lru_cache(maxsize=4)
def _zeros(n: int) -> np.ndarray:
    """A read-only float32 array of ``n`` zeros (the free-pixel arrays of a run without any)."""
    out = np.zeros(n, np.float32)
    out.flags.writeable = False
    return out


def threshold_support(values: np.ndarray, rel: float, out: np.ndarray) -> np.ndarray:
    """out[b] = 1.0 where values[b] > rel * max(values[b]), else 0.0 (float32, in place);
    returns the number of support voxels per run (B,) int64."""
    counts = np.zeros(values.shape[0], np.int64)
    _compiled()[5](values, np.float32(rel), out, counts)
    return counts
