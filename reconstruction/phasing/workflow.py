"""File workflows of the phasing engine, used by the CLI and the web app's Celery tasks.

``phase_file`` phases a raw or prepared data file; ``refine_file`` continues from the object of
a result file (e.g. the network's prediction). Both write a result CXI
(``reconstruction.io.write_result``) and return a JSON-serialisable summary.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from reconstruction import __version__
from reconstruction.errors import ConfigError, InvalidDataError
from reconstruction.metrics import fourier_errors, free_pixel_mask, object_pixel_size_m
from reconstruction.phasing.coherence import resolve_psf
from reconstruction.phasing.retrieve import DEFAULT_ALGORITHM, PhasingResult, phase_retrieve
from reconstruction.phasing.support import names_computed_support
from reconstruction.progress import CancelLike, ProgressCallback, ProgressEvent, report


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def q_basis_of(metadata, shape: tuple[int, ...]) -> np.ndarray | None:
    """q step per pixel along each axis (columns, 1/m) of data of ``shape``: the diffractometer
    geometry's (``reconstruction.geometry``) for a known 3D Bragg scan, else 2π / (N d) per axis
    where the voxel size d is known on every axis, else None."""
    from reconstruction.errors import ReconstructionError
    from reconstruction.geometry import reciprocal_basis, scan_geometry
    from reconstruction.io.voxel import voxel_size_m

    if len(shape) == 3:
        try:
            return reciprocal_basis(scan_geometry(metadata, tuple(shape)))
        except ReconstructionError:
            pass
    sizes = voxel_size_m(metadata, tuple(shape))
    if all(v is not None and v > 0 for v in sizes):
        return np.diag([2 * np.pi / (n * v) for n, v in zip(shape, sizes)])
    return None


def _write(out_path, data, result: PhasingResult, *, command: str, provenance: dict,
           extra_curves: dict | None = None, timings: dict | None = None) -> None:
    from reconstruction.io import write_result
    from reconstruction.io.types import ResultRecord

    curves = {k: np.asarray(v, np.float64) for k, v in (extra_curves or {}).items()}
    curves.update({k: np.asarray(v, np.float64) for k, v in result.curves.items()})
    arrays = {}
    if result.prtf is not None:
        arrays["prtf"] = np.asarray(result.prtf["prtf"], np.float64)
        arrays["prtf_freq"] = np.asarray(result.prtf["freq"], np.float64)
        if "q_per_m" in result.prtf:
            arrays["prtf_q"] = np.asarray(result.prtf["prtf_q"], np.float64)
            arrays["prtf_q_per_nm"] = np.asarray(result.prtf["q_per_m"], np.float64) * 1e-9
    if result.psf is not None:  # the fitted partial-coherence kernel (centred, sums to 1)
        arrays["psf"] = np.asarray(result.psf, np.float32)
    metrics = {k: v for k, v in result.metrics.items() if isinstance(v, (int, float))}
    write_result(
        out_path,
        ResultRecord(
            obj=result.obj,
            support=result.support,
            intensity=data.intensity,
            mask=data.mask,
            algorithm=result.algorithm,
            config=_jsonable({**result.config, "runs_table": result.runs}),
            curves=curves,
            metrics=metrics,
            timings=timings or result.timings,
            command=command,
            provenance=_jsonable(provenance),
            arrays=arrays,
        ),
    )


def _psf_option(psf) -> str:
    """The ``--psf`` option of a result's command line for ``psf`` ("" without one)."""
    settings = resolve_psf(psf)
    if settings is None:
        return ""
    if isinstance(psf, str):
        return f" --psf {psf.strip()}"
    return f" --psf {settings.model},{settings.fwhm:g},{settings.eta:g},{settings.period}"


def _provenance(input_path, data, seed: int, extra: dict | None) -> dict[str, Any]:
    prov = data.provenance
    return {
        "program_version": __version__,
        "input_path": os.fspath(input_path),
        "input_sha256": prov.loaded_sha256 or prov.source_sha256,
        "source_sha256": prov.source_sha256,
        "seed": seed,
        **(extra or {}),
    }


def _summary(out_path, result: PhasingResult, start: float, extra_curves=None) -> dict[str, Any]:
    curves = {k: v for k, v in (extra_curves or {}).items()}
    curves.update(result.curves)
    return _jsonable(
        {
            "out_path": str(Path(out_path).resolve()),
            "seconds": time.monotonic() - start,
            "algorithm": result.algorithm,
            "iterations": result.metrics["iterations"],
            "metrics": result.metrics,
            "runs": result.runs,
            "curves": {k: np.asarray(v, float) for k, v in curves.items()},
            "timings": result.timings,
            "config": result.config,
        }
    )


def _stage(progress: ProgressCallback | None, lo: float, hi: float):
    if progress is None:
        return None

    def scaled(event: ProgressEvent) -> None:
        report(progress, ProgressEvent(lo + (hi - lo) * event.fraction, event.stage, event.step,
                                       event.total, event.values, event.message))

    return scaled


def phase_file(
    input_path: str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    algorithm: str = DEFAULT_ALGORITHM,
    cycles: int = 3,
    runs: int = 1,
    keep: int = 1,
    support="auto",
    seed: int = 0,
    device: str = "auto",
    shrinkwrap=None,
    positivity: bool = False,
    psf=None,
    shape: int | tuple[int, ...] | str | None = None,
    oversampling: float | None = 3.0,
    prepared_out: str | os.PathLike | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelLike | None = None,
    provenance: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Phase a raw or prepared data file and write a result CXI.

    A raw file is prepared first to ``shape`` (pixels per axis, "full" or None: 64 in 3D, the
    whole pattern in 2D) at ``oversampling``, and written to ``prepared_out`` when given. With
    ``shape`` None, a support file (``support``: a 0/1 image or an object, see
    ``load_support``) of the raw frame's shape makes the raw data phased on that frame's own
    grid (no binning, no crop), so the support maps pixel for pixel. ``positivity`` forces a
    real, positive object (forward-scattering data of a weak phase object; never Bragg CDI).
    ``psf`` models partial coherence (``phase_retrieve``; None = a coherent model): the result
    then stores the fitted kernel (``psf`` among its arrays) and chi2 of the blurred model.

    Returns {out_path, seconds, algorithm, iterations, metrics (chi2, chi2_free, llk, ...),
    runs (per-run table), curves (lists), timings, config, shape, support_source}.
    """
    from reconstruction.io import load_data, write_prepared
    from reconstruction.io.supports import check_support_grid, load_support
    from reconstruction.io.workflow import as_prepared, is_prepared

    start = time.monotonic()
    report(progress, ProgressEvent(0.0, stage="load", message=f"reading {os.fspath(input_path)}"))
    data = load_data(input_path)
    support_source = None
    if isinstance(support, (str, os.PathLike)) and not names_computed_support(os.fspath(support)):
        support_source = os.fspath(support)
        if not Path(support_source).exists():
            raise ConfigError(
                f"support {support_source!r} is neither 'auto', 'box', a box size nor an "
                "existing file"
            )
        support, how = load_support(support_source)
        report(progress, ProgressEvent(0.01, stage="load", message=f"support: {how}"))
    prepared_here = {}
    if not is_prepared(data):
        if shape is None and support_source is not None and support.shape == data.intensity.shape:
            shape, oversampling = data.intensity.shape, None
        data = as_prepared(data, shape=shape, oversampling=oversampling)
        # a refinement of this result prepares the raw file the same way (see refine_file)
        prepared_here = {"prepare_oversampling": "none" if oversampling is None else oversampling}
        if prepared_out is not None:
            write_prepared(prepared_out, data)
    if support_source is not None:
        check_support_grid(support, data.intensity.shape, support_source)
    support_label = support_source or (support if isinstance(support, str) else "array")
    t_load = time.monotonic() - start
    result = phase_retrieve(
        data.intensity, mask=data.mask, support=support, algorithm=algorithm, n_cycles=cycles,
        runs=runs, keep=keep, seed=seed, device=device, shrinkwrap=shrinkwrap,
        positivity=positivity, psf=psf,
        q_basis_per_m=q_basis_of(data.metadata, data.intensity.shape),
        progress=_stage(progress, 0.02, 0.95), cancel=cancel,
    )
    report(progress, ProgressEvent(0.96, stage="write"))
    pixel_m = object_pixel_size_m(data.metadata, data.intensity.shape[-1])
    if result.prtf is not None and pixel_m:
        result.metrics["object_pixel_size_m"] = pixel_m
    if result.prtf is not None and "resolution_q_m" in result.prtf:  # against the true |q|
        result.metrics["prtf_resolution_m"] = result.prtf["resolution_q_m"]
    elif result.prtf is not None and pixel_m:  # in pixels times the mean detector-axis voxel
        result.metrics["prtf_resolution_m"] = result.prtf["resolution_pixel"] * pixel_m
    timings = {"load": t_load, **result.timings}
    _write(
        out_path, data, result,
        provenance=_provenance(
            input_path, data, seed,
            {
                **(provenance or {}),
                **prepared_here,
                **({"support_path": support_source} if support_source else {}),
            },
        ),
        command=f"phase {os.fspath(input_path)} --algorithm {algorithm} --cycles {cycles} "
        f"--runs {runs} --keep {keep} --seed {seed} --support {support_label}"
        + (" --positivity" if positivity else "") + _psf_option(psf),
        timings=timings,
    )
    summary = _summary(out_path, result, start)
    summary["timings"] = _jsonable(timings)
    summary["shape"] = list(data.intensity.shape)
    summary["support_source"] = support_source
    report(progress, ProgressEvent(1.0, stage="done", values={"chi2": result.metrics["chi2"]}))
    return summary


def refine_file(
    input_path: str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    initial_path: str | os.PathLike,
    algorithm: str = "ER**50",
    support_threshold: float = 0.1,
    device: str = "auto",
    seed: int = 0,
    shrinkwrap=True,
    psf=None,
    progress: ProgressCallback | None = None,
    cancel: CancelLike | None = None,
    provenance: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Refine the object of the result file ``initial_path`` against the data of ``input_path``.

    The starting support is the initial object's amplitude above ``support_threshold`` of its
    maximum; the initial file's curves are kept with the prefix ``initial_``. ``shrinkwrap``:
    True (default) updates that support with the default shrink-wrap (on 100 held-out
    simulations it lowers ER**50's chi2 at the same relative error, benchmarks/RESULTS.md),
    False (or None) keeps it fixed, a dict sets it. ``psf`` models partial coherence as in
    ``phase_file``; where the initial result fitted a kernel (a ``psf`` array of this grid),
    the refinement starts from that kernel rather than the settings' FWHM (a converged start
    barely moves a narrow kernel). Returns the same summary as ``phase_file``
    plus ``initial_metrics`` (the starting object's chi2 on this data, blurred by its kernel
    when the refinement starts from one).
    """
    from reconstruction.io import read_result
    from reconstruction.io.workflow import load_prepared_on_grid

    start = time.monotonic()
    report(progress, ProgressEvent(0.0, stage="load"))
    initial = read_result(initial_path)
    data = load_prepared_on_grid(input_path, shape=initial.obj.shape, provenance=initial.provenance)
    if initial.obj.shape != data.intensity.shape:
        raise InvalidDataError(
            f"the initial object {initial_path} has shape {initial.obj.shape} but the data "
            f"{input_path} has shape {data.intensity.shape}; prepare both to the same shape"
        )
    free = free_pixel_mask(data.mask, fraction=0.05, seed=seed)
    psf_initial = None
    if resolve_psf(psf) is not None and np.shape(initial.arrays.get("psf")) == initial.obj.shape:
        psf_initial = initial.arrays["psf"]
    before = fourier_errors(initial.obj, data.intensity, mask=data.mask, free_mask=free,
                            psf=psf_initial)  # fmt: skip
    t_load = time.monotonic() - start
    result = phase_retrieve(
        data.intensity, mask=data.mask, support=None, initial_object=initial.obj,
        algorithm=algorithm, n_cycles=1, seed=seed, device=device, shrinkwrap=shrinkwrap,
        support_threshold=support_threshold, psf=psf, psf_initial=psf_initial,
        progress=_stage(progress, 0.02, 0.95), cancel=cancel,
    )
    if psf_initial is not None:
        result.config["psf_initial"] = f"the kernel of {os.fspath(initial_path)}"
    extra_curves = {f"initial_{k}": v for k, v in initial.curves.items()}
    timings = {"load": t_load, **{f"initial_{k}": v for k, v in initial.timings.items()
                                  if isinstance(v, (int, float))}, **result.timings}
    prov = _provenance(input_path, data, seed, provenance)
    prov.update(initial_path=os.fspath(initial_path), initial_algorithm=initial.algorithm)
    for key in ("model_name", "model_sha256"):
        if key in initial.provenance and key not in prov:
            prov[key] = initial.provenance[key]
    algorithm_run = result.algorithm
    if initial.algorithm:
        algorithm_run = f"{initial.algorithm}+{result.algorithm}"
    result.algorithm = algorithm_run
    keys = ("chi2", "chi2_free", "llk", "llk_free")
    result.config["initial_metrics"] = {k: before[k] for k in keys}
    _write(
        out_path, data, result, provenance=prov, extra_curves=extra_curves, timings=timings,
        command=f"refine {os.fspath(input_path)} --initial {os.fspath(initial_path)} "
        f"--algorithm {algorithm} --threshold {support_threshold}"
        + ("" if shrinkwrap else " --no-shrinkwrap") + _psf_option(psf),
    )
    summary = _summary(out_path, result, start, extra_curves)
    summary["timings"] = _jsonable(timings)
    summary["initial_metrics"] = _jsonable(result.config["initial_metrics"])
    report(progress, ProgressEvent(1.0, stage="done", values={"chi2": result.metrics["chi2"]}))
    return summary


__all__ = ["phase_file", "refine_file"]
