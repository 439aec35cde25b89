"""FFTW plans for the engine's 3D CPU transforms (pyFFTW), with wisdom kept on disk.

On the 2-core AMD EPYC VM of our CI, torch's CPU FFT (MKL) of a 64^3 complex64 box and back
takes 1.4-2.4 ms; a measured FFTW plan pair on the same buffers takes 0.9-1.3 ms. In 2D FFTW
only matches torch (a 512^2 pair), and phasing the 512^2 ESRF logo with 4 runs took 12.6-14.2
ms per iteration with per-box FFTW plans against 12.0-12.1 with torch's batched transform, so
2D keeps torch. Each run of a batch has its own plans (one box each),
so one measurement serves any number of runs.

A measured plan costs the time of a few hundred transforms (0.4 s at 64^3, 2.4 s at 128^3),
once per box shape and thread count. The result ("wisdom") is saved in the user's cache
directory, so later processes plan in milliseconds. Without wisdom a plan is measured only for
runs long enough to pay for it (the default 600 iterations); shorter ones (a 50-iteration
refinement) use torch until a longer run has left wisdom behind.

Where MKL is fast (an Intel VM measured 0.40 ms per 64^3 pair through torch) FFTW need not
win, and torch's batched transform scales differently with the number of runs. So the first
plan for a box shape, batch size and thread count is timed against torch's transform of the
same batch, and the faster one is kept for that case from then on (``fft_choice.json`` beside
the wisdom). pyFFTW is optional (FFTW is GPL-licensed): without it, or with ``CDI_FFT=torch``,
the engine uses torch everywhere.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

logger = logging.getLogger(__name__)

# iterations x runs below which a plan is measured only when wisdom already exists: measuring
# costs 100-300 FFT pairs and saves about a third of each pair, and the wisdom serves later runs
MEASURE_MIN_WORK = 500
_lock = threading.Lock()


@functools.lru_cache(maxsize=1)
def _pyfftw():
    """The pyfftw module with the saved wisdom imported, or None when it cannot be imported or
    ``CDI_FFT=torch`` is set."""
    if os.environ.get("CDI_FFT", "").lower() == "torch":
        return None
    try:
        import pyfftw
    except ImportError:
        return None
    try:
        text = wisdom_path().read_bytes()
        pyfftw.import_wisdom((b"", text, b""))
    except (OSError, ValueError, TypeError):
        pass  # no or unreadable wisdom: plans are measured again
    return pyfftw


def available() -> bool:
    """Whether FFTW can be used (pyfftw imports and ``CDI_FFT`` is not ``torch``)."""
    return _pyfftw() is not None


def wisdom_path() -> Path:
    """The file that keeps single-precision FFTW wisdom: ``$CDI_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/cdi``, else ``~/.cache/cdi``, then ``fftw_wisdom_single.txt``."""
    root = os.environ.get("CDI_CACHE_DIR")
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(xdg, "cdi")
    return Path(root) / "fftw_wisdom_single.txt"


def _write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` by ``data`` (temporary file + rename); a read-only cache is ignored."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        logger.info("%s not saved (%s): it will be measured again", path.name, exc)
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def _choices_path() -> Path:
    return wisdom_path().with_name("fft_choice.json")


def _choices() -> dict:
    """{"<shape> runs=<b> threads=<n>": {"fftw_ms", "torch_ms", "choice"}} measured so far (on
    disk); the times are per forward + inverse of the whole batch."""
    try:
        data = json.loads(_choices_path().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def measured_choices() -> dict[str, dict]:
    """The FFT chosen so far per box, batch and thread count, with both timings (ms per pair
    of transforms of the whole batch)."""
    return {k: v for k, v in sorted(_choices().items()) if isinstance(v, dict)}


def _median_pair_ms(run, repeats: int = 7) -> float:
    """Median wall time (ms) of ``run()`` after one untimed call."""
    run()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def _compare_with_torch(pair: PlanPair, batch: np.ndarray, ndim: int, key: str) -> str:
    """Time the FFTW pairs of a whole batch (on the planned buffers, box by box) against torch's
    batched pair on a copy of ``batch``, record the faster ("fftw" or "torch") under ``key``
    and return it. The whole batch, because torch's batched transform scales differently from
    box-by-box plans (measured here: 64^3 x 5 runs, FFTW 10.0 ms against 17.2)."""
    x = torch.from_numpy(batch.copy())
    dims = tuple(range(-ndim, 0))

    def torch_pair():
        torch.fft.ifftn(torch.fft.fftn(x, dim=dims), dim=dims)

    def fftw_pair():
        pair.forward()
        pair.backward()

    return _record_faster(key, fftw_pair, torch_pair)


def _record_faster(key: str, fftw_pair, torch_pair) -> str:
    """Time ``fftw_pair()`` against ``torch_pair()``, record the faster ("fftw" or "torch") and
    both times (ms) under ``key`` in ``fft_choice.json``, and return it."""
    fftw_ms = _median_pair_ms(fftw_pair)
    torch_ms = _median_pair_ms(torch_pair)
    choice = "fftw" if fftw_ms < torch_ms else "torch"
    choices = _choices()
    choices[key] = {"fftw_ms": round(fftw_ms, 3), "torch_ms": round(torch_ms, 3), "choice": choice}
    _write_atomically(_choices_path(), json.dumps(choices, indent=1, sort_keys=True).encode())
    logger.info(
        "FFT of %s: FFTW %.2f ms, torch %.2f ms per pair: using %s", key, fftw_ms, torch_ms, choice
    )
    return choice


class PlanPair:
    """Forward plans ``src[b] -> dst[b]`` and in-place backward plans on ``dst[b]``, both
    unnormalised, for each box b of (B, *shape) complex64 arrays; ``forward()`` and
    ``backward()`` transform the whole batch on the planned buffers."""

    def __init__(self, forward: list, backward: list) -> None:
        self._forward = forward  # the FFTW objects own the plans and keep the buffers alive
        self._backward = backward

    def forward(self) -> None:
        """dst <- fft(src), box by box, unnormalised."""
        for plan in self._forward:
            plan.execute()

    def backward(self) -> None:
        """dst <- N ifft(dst), box by box, in place, unnormalised."""
        for plan in self._backward:
            plan.execute()


def plan_pair(
    src: np.ndarray, dst: np.ndarray, ndim: int, threads: int, work: int, *, compare: bool = True
) -> PlanPair | None:
    """Plans for ``src`` and ``dst`` ((B, *shape) aligned complex64 arrays, transformed over the
    last ``ndim`` axes), or None when FFTW is unavailable, when no wisdom exists and ``work``
    (iterations x runs) is below ``MEASURE_MIN_WORK``, or (with ``compare``) when torch's
    transform was measured faster for this box and thread count. ``src`` keeps its contents;
    ``dst``'s are overwritten."""
    pyfftw = _pyfftw()
    if pyfftw is None:
        return None
    if src.ndim != ndim + 1:
        raise ValueError(f"expected (B, *shape) arrays with {ndim} box axes, got {src.shape}")
    threads = max(1, int(threads))
    key = f"{'x'.join(map(str, src.shape[1:]))} runs={src.shape[0]} threads={threads}"
    entry = _choices().get(key) if compare else None
    known = entry.get("choice") if isinstance(entry, dict) else None
    if known == "torch":
        return None
    kwargs = {"axes": tuple(range(ndim)), "threads": threads}

    def make(flags):
        fwd = [pyfftw.FFTW(s, d, flags=flags, **kwargs) for s, d in zip(src, dst)]
        bwd = [pyfftw.FFTW(d, d, direction="FFTW_BACKWARD", flags=flags, **kwargs) for d in dst]
        return PlanPair(fwd, bwd)

    with _lock:  # FFTW's planner is not thread-safe
        try:
            try:
                pair = make(("FFTW_MEASURE", "FFTW_WISDOM_ONLY"))
            except RuntimeError:  # no wisdom for this problem yet
                if work < MEASURE_MIN_WORK:
                    return None
                kept = src.copy()  # measuring runs transforms on the arrays themselves
                try:
                    pair = make(("FFTW_MEASURE",))
                finally:
                    src[...] = kept
                _write_atomically(wisdom_path(), pyfftw.export_wisdom()[1])
        except (RuntimeError, ValueError, TypeError, MemoryError) as exc:
            logger.warning("no FFTW plan for %s (%s); using torch's FFT", key, exc)
            return None
    if compare and known is None and _compare_with_torch(pair, src, ndim, key) == "torch":
        return None
    return pair


# blurs x runs below which real plans are measured only when wisdom already exists: measuring
# a 64^3 r2c / c2r pair costs 0.3 s, once per machine (the wisdom is kept), and saves 0.5-0.9 ms
# per blur on the AMD VM; a default 5-run phasing (150 shrink-wrap blurs) measures it, a
# refinement (2 blurs) does not
REAL_MEASURE_MIN_WORK = 100


class RealConvolution:
    """Circular convolutions of real (B, *shape) float32 boxes through FFTW r2c / c2r plans on
    fixed buffers: shrink-wrap's Gaussian blur and the partial-coherence blur of |F|².

    torch's CPU ``irfftn`` is slow: a 64^3 blur (``rfftn``, product, ``irfftn``) took 1.7 ms
    through torch against 0.85 ms here on the 2-core AMD VM (1.5x with 5 runs).
    """

    def __init__(self, real: np.ndarray, spectrum: np.ndarray, forward, backward) -> None:
        self._real = real  # (B, *shape) float32: the input, then the output
        self._spectrum = spectrum  # (B, *shape[:-1], shape[-1] // 2 + 1) complex64
        self._forward = forward
        self._backward = backward

    def _transform(self, values: np.ndarray) -> None:
        """The input buffer <- ``values``, then the spectrum buffer <- its ``rfftn``."""
        np.copyto(self._real, values)
        self._forward.execute()

    def convolve(self, values: np.ndarray, transfer: np.ndarray) -> np.ndarray:
        """``values`` (B, *shape) circularly convolved with the kernels whose ``rfftn`` divided
        by the box size is ``transfer`` ((B or 1, *rfft shape), real or complex); the result
        is the output buffer, overwritten by the next call. ``totals()`` then gives each box's
        sum of ``values``."""
        self._transform(values)
        self._totals = self._spectrum.reshape(self._spectrum.shape[0], -1)[:, 0].real.copy()
        np.multiply(self._spectrum, transfer, out=self._spectrum)
        self._backward.execute()
        return self._real

    def spectrum(self, values: np.ndarray) -> np.ndarray:
        """``rfftn`` of each box of ``values`` (B, *shape): a new complex64 array."""
        self._transform(values)
        return self._spectrum.copy()

    def totals(self) -> np.ndarray:
        """(B,) float32: the sum of each box of the last ``convolve``'s input."""
        return self._totals


def real_convolution(
    shape: tuple[int, ...], batch: int, threads: int, work: int
) -> RealConvolution | None:
    """FFTW plans to convolve (batch, *shape) real boxes, or None when FFTW is unavailable,
    when no wisdom exists and ``work`` (blurs x runs) is below ``REAL_MEASURE_MIN_WORK``, or
    when torch's ``rfftn`` / ``irfftn`` pair was measured faster for this case."""
    pyfftw = _pyfftw()
    if pyfftw is None:
        return None
    threads = max(1, int(threads))
    shape = tuple(int(n) for n in shape)
    key = f"real {'x'.join(map(str, shape))} runs={batch} threads={threads}"
    entry = _choices().get(key)
    known = entry.get("choice") if isinstance(entry, dict) else None
    if known == "torch":
        return None
    real = pyfftw.empty_aligned((batch,) + shape, dtype="float32")
    spectrum = pyfftw.empty_aligned((batch,) + shape[:-1] + (shape[-1] // 2 + 1,), "complex64")
    axes = tuple(range(1, len(shape) + 1))

    def make(flags):
        forward = pyfftw.FFTW(real, spectrum, axes=axes, threads=threads, flags=flags)
        backward = pyfftw.FFTW(
            spectrum, real, axes=axes, threads=threads, direction="FFTW_BACKWARD",
            flags=flags + ("FFTW_DESTROY_INPUT",),
        )
        return RealConvolution(real, spectrum, forward, backward)

    with _lock:
        try:
            try:
                conv = make(("FFTW_MEASURE", "FFTW_WISDOM_ONLY"))
            except RuntimeError:
                if work < REAL_MEASURE_MIN_WORK:
                    return None
                conv = make(("FFTW_MEASURE",))
                _write_atomically(wisdom_path(), pyfftw.export_wisdom()[1])
        except (RuntimeError, ValueError, TypeError, MemoryError) as exc:
            logger.warning("no FFTW real plan for %s (%s); using torch's FFT", key, exc)
            return None
    if known is None:
        values = np.random.default_rng(0).random(real.shape, dtype=np.float32)
        transfer = np.ones(spectrum.shape[1:], np.float32)
        x = torch.from_numpy(values)
        dims = tuple(range(-len(shape), 0))

        def torch_pair():
            torch.fft.irfftn(torch.fft.rfftn(x, dim=dims), s=shape, dim=dims)

        if _record_faster(key, lambda: conv.convolve(values, transfer), torch_pair) == "torch":
            return None
    return conv
