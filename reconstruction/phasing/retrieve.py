"""``phase_retrieve``: many seeded random starts batched on one device, best kept and averaged."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reconstruction.device import pick_device
from reconstruction.errors import ConfigError, InvalidDataError
from reconstruction.fourier import fft_nd
from reconstruction.metrics import (
    align_to,
    centre_object,
    fourier_errors,
    free_pixel_mask,
    mode_decomposition,
    prtf,
    zero_phase_offset,
)
from reconstruction.phasing import kernels
from reconstruction.phasing.coherence import PsfModel, fwhm_of, resolve_psf
from reconstruction.phasing.engine import Engine
from reconstruction.phasing.heap import reuse_freed_memory
from reconstruction.phasing.schedule import parse_schedule
from reconstruction.phasing.support import (
    ShrinkWrap,
    ShrinkWrapper,
    autocorrelation_support,
    box_support,
    resolve_shrinkwrap,
    support_from_object,
)
from reconstruction.progress import CancelLike, ProgressCallback, ProgressEvent, check, report

DEFAULT_ALGORITHM = "ER**20,HIO**160,ER**20"


@dataclass
class PhasingResult:
    """The outcome of ``phase_retrieve``.

    obj     : (Z, Y, X) or (Y, X) complex64, centred; the best run, or the average of the
              ``keep`` best runs after alignment; |farfield(obj)|^2 fits the data up to scale.
    support : same shape, bool.
    curves  : per-iteration arrays (n_iterations,) of the best run: ``chi2``, ``chi2_free``
              (NaN between the iterations where it is computed), ``support_fraction``,
              ``segment`` (index into ``config["segments"]``).
    metrics : chi2, chi2_free, llk, llk_free, scale, support_fraction, support_size, ...
    runs    : one dict per run: seed, chi2, chi2_free, llk, llk_free, support_size, kept.
    algorithm : the canonical schedule string that was run (cycles included).
    config  : every parameter, JSON-friendly, with ``segments`` [(start, end, name, beta)].
    seconds : wall time.
    prtf    : {freq, prtf, cross_freq, resolution_pixel} when runs > 1, else None.
    psf     : the best run's partial-coherence kernel (centred, sums to 1) when one was fitted.
    """

    obj: np.ndarray
    support: np.ndarray
    curves: dict[str, np.ndarray]
    metrics: dict[str, float]
    runs: list[dict[str, Any]]
    algorithm: str
    config: dict[str, Any]
    seconds: float
    prtf: dict[str, Any] | None = None
    psf: np.ndarray | None = None
    timings: dict[str, float] = field(default_factory=dict)


def _shift_in(x: np.ndarray) -> np.ndarray:
    return np.fft.ifftshift(x)



def _initial_support(
    support, intensity: np.ndarray, mask: np.ndarray, initial_object, threshold: float
) -> tuple[np.ndarray, str]:
    """Resolve the ``support`` argument into a centred bool array and a short description."""
    shape = intensity.shape
    if support is None:
        if initial_object is not None:
            return support_from_object(initial_object, threshold=threshold), f"object>{threshold:g}"
        support = "auto"
    if isinstance(support, os.PathLike):
        support = os.fspath(support)
    if isinstance(support, str):
        if support == "auto":
            return autocorrelation_support(intensity, mask), "auto"
        if support == "box":
            return box_support(shape), "box"
        if support.isascii() and support.isdigit():
            return box_support(shape, int(support)), f"box:{support}"
        path = Path(support)
        if not path.exists():
            raise ConfigError(
                f"support {support!r} is neither 'auto', 'box', a box size nor an existing file"
            )
        return _support_from_file(path, shape, threshold), f"file:{path.name}"
    if isinstance(support, (int, np.integer, tuple, list)) and not isinstance(support, np.ndarray):
        return box_support(shape, support), f"box:{support}"
    arr = np.asarray(support)
    if arr.shape != shape:
        raise InvalidDataError(f"the support has shape {arr.shape} but the data has shape {shape}")
    if np.iscomplexobj(arr):
        return support_from_object(arr, threshold=threshold), "array"
    return arr.astype(bool), "array"


def _support_from_file(path: Path, shape: tuple[int, ...], threshold: float) -> np.ndarray:
    from reconstruction.io.supports import check_support_grid, load_support

    support, _how = load_support(path, threshold=threshold)
    check_support_grid(support, shape, str(path))
    return support


def _validate(intensity, mask) -> tuple[np.ndarray, np.ndarray]:
    intensity = np.asarray(intensity)
    if intensity.ndim not in (2, 3):
        raise InvalidDataError(f"expected a 2D or 3D intensity array, got shape {intensity.shape}")
    if np.iscomplexobj(intensity):
        raise InvalidDataError("the intensity must be real (photon counts), got a complex array")
    intensity = intensity.astype(np.float32)
    mask = np.zeros(intensity.shape, bool) if mask is None else np.asarray(mask, bool)
    if mask.shape != intensity.shape:
        raise InvalidDataError(f"the mask has shape {mask.shape}, the intensity {intensity.shape}")
    bad = ~np.isfinite(intensity)
    if bad.any():
        mask = mask | bad
    intensity = np.where(mask, 0.0, np.maximum(intensity, 0.0)).astype(np.float32)
    if intensity.sum() <= 0:
        raise InvalidDataError("the intensity is zero everywhere outside the mask")
    return intensity, mask


def choose_threads(device: torch.device) -> int:
    """Torch CPU threads for this run: every CPU we may use, or 1 when the machine is busy.

    OpenMP threads that wait for a descheduled sibling at every parallel region make a loaded
    CPU 5-20x slower than one thread (measured on 2 shared cores), so when the 1-minute load
    average already fills the CPUs we run single-threaded.
    """
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        available = os.cpu_count() or 1
    if device.type != "cpu" or available <= 1:
        return min(torch.get_num_threads(), available)
    try:
        busy = os.getloadavg()[0] > available - 0.5
    except OSError:
        busy = False
    return 1 if busy else available


def phase_retrieve(
    intensity: np.ndarray,
    *,
    mask: np.ndarray | None = None,
    support="auto",
    initial_object: np.ndarray | None = None,
    algorithm: str = DEFAULT_ALGORITHM,
    n_cycles: int = 3,
    runs: int = 1,
    keep: int = 1,
    seed: int = 0,
    device: str = "auto",
    shrinkwrap: ShrinkWrap | dict | bool | None = None,
    free_fraction: float = 0.05,
    support_threshold: float = 0.1,
    positivity: bool = False,
    threads: int | None = None,
    q_basis_per_m: np.ndarray | None = None,
    psf=None,
    psf_initial: np.ndarray | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelLike | None = None,
) -> PhasingResult:
    """Retrieve the phase of a 2D/3D diffraction pattern by iterative projections.

    Parameters
    ----------
    intensity : (Z, Y, X) or (Y, X) float, photon counts, centred (zero frequency at N // 2).
    mask : same shape, bool, True = excluded pixel; left free (unconstrained) by the modulus step.
    support : "auto" (thresholded autocorrelation), "box", a box size (int or tuple, pixels),
        a bool array, a path (.npy or a result/object file), or None: from ``initial_object``
        (|obj| > ``support_threshold`` max) when given, else "auto".
    initial_object : same shape, complex, centred; every run starts from it (e.g. a network
        prediction) and the iterate of lowest chi2 is returned (never worse than the start);
        otherwise runs start from random Fourier phases (seeded).
    algorithm : schedule, e.g. "ER**20,HIO**160,ER**20", "(ER**20,HIO**160)**3,ER**20",
        "RAAR(0.75)**50", or cohere's "3*(20*ER+180*HIO)+20*ER"; run ``n_cycles`` times.
    runs, keep : number of random starts (batched into one tensor) and how many of the best
        (by free LLK, else chi2) are aligned and averaged.
    shrinkwrap : None (on for "auto"/"box" supports, off otherwise), False, True, a dict of
        ``ShrinkWrap`` settings or a ``ShrinkWrap``.
    free_fraction : share of unmasked pixels held out (seeded) for chi2_free and LLK_free.
    positivity : force a real, positive object (never for Bragg CDI).
    threads : CPU threads for the iterations (torch and the fused modulus kernel); None = all
        CPUs, or 1 on a busy machine.
    q_basis_per_m : q step per pixel along each axis (columns, 1/m): the PRTF of several runs
        is then also given against the true |q| (``reconstruction.metrics.prtf``).
    psf : partial coherence: None / False (a coherent model), True (defaults: a Gaussian of
        0.5 px FWHM), a string in PyNX's notation such as "gaussian,0.5,20", a dict or
        ``coherence.PartialCoherence``. From half the iterations on (``start``) the calculated
        intensity is blurred by a kernel refined from the data; chi2 and LLK are then those of
        the blurred model (``chi2_coherent`` without), and ``psf`` holds the best run's kernel.
    psf_initial : a centred kernel of the data's shape to start the PSF from (e.g. the ``psf``
        of a result being refined) instead of the settings' model and FWHM; needs ``psf``.

    Returns
    -------
    PhasingResult
    """
    start = time.monotonic()
    intensity, mask = _validate(intensity, mask)
    schedule = parse_schedule(algorithm, cycles=n_cycles)
    psf_settings = resolve_psf(psf)
    if runs < 1 or not 1 <= keep <= runs:
        raise ConfigError(f"need runs >= 1 and 1 <= keep <= runs, got runs={runs}, keep={keep}")
    if initial_object is not None:
        initial_object = np.asarray(initial_object)
        if initial_object.shape != intensity.shape:
            raise InvalidDataError(
                f"the initial object has shape {initial_object.shape}, the data {intensity.shape}"
            )
    dev = pick_device(device)
    shape = intensity.shape
    support0, support_kind = _initial_support(
        support, intensity, mask, initial_object, support_threshold
    )
    if not support0.any():
        raise InvalidDataError("the initial support is empty; lower the threshold or give a box")
    sw_settings = resolve_shrinkwrap(
        shrinkwrap, default_on=support_kind in ("auto", "box") or support_kind.startswith("box:")
    )
    free = free_pixel_mask(mask, fraction=free_fraction, seed=seed) if free_fraction > 0 else None
    weight = ~mask if free is None else ~mask & ~free

    def to_dev(x: np.ndarray, dtype) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(_shift_in(x))).to(dev, dtype)

    amplitude = np.sqrt(intensity)
    amp_t = to_dev(amplitude, torch.float32)
    w_t = to_dev(weight.astype(np.float32), torch.float32)
    free_t = None if free is None else to_dev(free.astype(np.float32), torch.float32)
    sup_t = to_dev(support0.astype(np.float32), torch.float32).expand((runs,) + shape).clone()

    psi = _starting_objects(amplitude, weight, support0, initial_object, runs, seed)
    psi_t = torch.from_numpy(np.ascontiguousarray(psi)).to(dev)
    sw = None if sw_settings is None else ShrinkWrapper(sw_settings, shape, dev)
    if psf_initial is not None and psf_settings is None:
        raise ConfigError("psf_initial is a starting kernel for psf: set psf too")
    psf_model = None
    if psf_settings is not None:
        psf_model = PsfModel(psf_settings, shape, runs, dev, initial=psf_initial)
    engine = Engine(
        amp_t, w_t, sup_t, psi_t, free=free_t, shrinkwrap=sw, positivity=positivity, psf=psf_model
    )
    threads_before = torch.get_num_threads()
    threads = threads if threads else choose_threads(dev)
    torch.set_num_threads(threads)
    kernel_threads_before = kernels.set_threads(threads) if engine.fused else None
    try:
        t0 = time.monotonic()
        with reuse_freed_memory():
            history = engine.run(
                schedule, progress=progress, cancel=cancel, keep_best=initial_object is not None
            )
        t_iter = time.monotonic() - t0
    finally:
        torch.set_num_threads(threads_before)
        if kernel_threads_before is not None:
            kernels.set_threads(kernel_threads_before)
    check(cancel)
    report(progress, ProgressEvent(1.0, stage="analyse", step=schedule.total, total=schedule.total))

    objs = np.fft.fftshift(engine.psi.cpu().numpy(), axes=tuple(range(1, len(shape) + 1)))
    sups = np.fft.fftshift(engine.support.cpu().numpy() > 0.5, axes=tuple(range(1, len(shape) + 1)))
    kernels_c = [None] * runs if psf_model is None else [psf_model.centred(r) for r in range(runs)]
    run_rows, run_errors = [], []
    for r in range(runs):
        e = fourier_errors(objs[r], intensity, mask=mask, free_mask=free, psf=kernels_c[r])
        run_errors.append(e)
        run_rows.append(
            {
                "run": r,
                "seed": seed + r,
                "chi2": e["chi2"],
                "chi2_free": e["chi2_free"],
                "llk": e["llk"],
                "llk_free": e["llk_free"],
                "support_size": int(sups[r].sum()),
                "kept": False,
            }
        )
    key = "llk_free" if free is not None and free.any() else "chi2"
    order = sorted(range(runs), key=lambda r: (np.nan_to_num(run_rows[r][key], nan=np.inf), r))
    best = order[0]
    kept = order[:keep]
    for r in kept:
        run_rows[r]["kept"] = True

    obj = objs[best].astype(np.complex128)
    aligned = [obj]
    prtf_out = None
    mode1_fraction = None
    if runs > 1:
        others = [r for r in order[1:]]
        aligned_all = {best: obj}
        for r in others:
            check(cancel)
            aligned_all[r], _ = align_to(objs[r], obj, ramp=False)
        aligned = [aligned_all[r] for r in kept]
        prtf_out = prtf(np.stack([aligned_all[r] for r in order]), intensity, mask, q_basis_per_m=q_basis_per_m)
        if keep > 1:  # PyNX's agreement figure: how much of the kept runs one object explains
            mode1_fraction = float(mode_decomposition(np.stack(aligned))["weights"][0])
    if keep > 1:
        obj = np.mean(np.stack(aligned), axis=0)
    sup = sups[best]
    if keep > 1:
        threshold = sw_settings.threshold if sw_settings else support_threshold
        sup = support_from_object(obj, threshold=0.5 * threshold)
        sup |= sups[best]
    obj, roll = centre_object(obj, support=sup)
    sup = np.roll(sup, roll, axis=tuple(range(sup.ndim)))
    obj = zero_phase_offset(obj, support=sup).astype(np.complex64)

    if keep > 1:
        final = fourier_errors(obj, intensity, mask=mask, free_mask=free, psf=kernels_c[best])
    else:  # the best run itself: centring (a circular shift) and a phase offset leave |F| alone
        final = run_errors[best]
    metrics = {
        "chi2": final["chi2"],
        "chi2_free": final["chi2_free"],
        "llk": final["llk"],
        "llk_free": final["llk_free"],
        "scale": final["scale"],
        "support_size": int(sup.sum()),
        "support_fraction": float(sup.mean()),
        "iterations": schedule.total,
        "runs": runs,
        "keep": keep,
        "seconds_per_iteration": t_iter / max(schedule.total, 1),
    }
    if prtf_out is not None:
        metrics["prtf_resolution_pixel"] = prtf_out["resolution_pixel"]
    if mode1_fraction is not None:
        metrics["mode1_fraction"] = mode1_fraction
    psf_axes = None
    if psf_model is not None:
        coherent = fourier_errors(obj, intensity, mask=mask, free_mask=free)
        metrics["chi2_coherent"] = coherent["chi2"]
        metrics["chi2_free_coherent"] = coherent["chi2_free"]
        psf_axes = fwhm_of(kernels_c[best])
        metrics["psf_fwhm_px"] = float(np.mean(psf_axes))
    segments = schedule.segments()
    seg_index = np.zeros(schedule.total)
    for i, s in enumerate(segments):
        seg_index[s.start : s.end] = i
    curves = {
        "chi2": history.chi2[:, best].astype(np.float64),
        "chi2_free": history.chi2_free[:, best].astype(np.float64),
        "support_fraction": history.support_fraction[:, best].astype(np.float64),
        "segment": seg_index,
    }
    config = {
        "algorithm": str(schedule),
        "algorithm_input": str(algorithm),
        "n_cycles": n_cycles,
        "runs": runs,
        "keep": keep,
        "seed": seed,
        "device": str(dev),
        "support": support_kind,
        "support_threshold": support_threshold,
        "shrinkwrap": None if sw_settings is None else sw_settings.as_dict(),
        "shrinkwrap_refused": 0 if sw is None else sw.refused,
        "free_fraction": free_fraction,
        "positivity": positivity,
        "psf": None if psf_settings is None else psf_settings.as_dict(),
        "psf_initial": "given" if psf_initial is not None else None,
        "psf_fwhm_px_axes": psf_axes,
        "psf_updates": 0 if psf_model is None else psf_model.updates,
        "initial_object": initial_object is not None,
        "selection": key,
        "segments": [[s.start, s.end, s.name, s.beta] for s in segments],
        "torch_threads": threads,
        "fft": engine.fft_name,
    }
    seconds = time.monotonic() - start
    return PhasingResult(
        obj=obj,
        support=sup,
        curves=curves,
        metrics=metrics,
        runs=run_rows,
        algorithm=str(schedule),
        config=config,
        seconds=seconds,
        prtf=prtf_out,
        psf=None if psf_model is None else kernels_c[best],
        timings={"iterations": t_iter, "total": seconds},
    )


def _starting_objects(amplitude, weight, support, initial_object, runs, seed) -> np.ndarray:
    """(runs, *shape) complex64 starting objects in the unshifted layout, on the data's scale."""
    shape = amplitude.shape
    if initial_object is not None:
        field = fft_nd(np.fft.ifftshift(initial_object.astype(np.complex64)))
        a_calc = np.abs(field)[np.fft.ifftshift(weight)]
        a_meas = np.fft.ifftshift(amplitude)[np.fft.ifftshift(weight)]
        denom = float(np.sum(a_calc.astype(np.float64) ** 2))
        scale = float(np.sum(a_calc * a_meas) / denom) if denom > 0 else 1.0
        psi = np.fft.ifftshift(initial_object).astype(np.complex64) * np.float32(scale)
        return np.broadcast_to(psi, (runs,) + shape).copy()
    out = np.empty((runs,) + shape, np.complex64)
    amp_u = np.fft.ifftshift(amplitude * weight)
    sup_u = np.fft.ifftshift(support)
    for r in range(runs):
        rng = np.random.default_rng(seed + r)
        phases = rng.uniform(-np.pi, np.pi, size=shape)
        obj = fft_nd(amp_u * np.exp(1j * phases), inverse=True)
        out[r] = (obj * sup_u).astype(np.complex64)
    return out
