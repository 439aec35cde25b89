"""One handler per job kind: map the job's row to a library workflow call. No science here.

Each handler takes a ``workers.runner.Context`` and returns the workflow's JSON summary dict.
The library is imported inside the handlers so that the worker's parent never imports torch.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from typing import Any

from django.utils import timezone

from webapp.core.models import Dataset, Job
from workers.runner import Context, JobProgress, claim_step, finish


def _input_path(ctx: Context) -> str:
    if ctx.job.dataset is None:
        from reconstruction.errors import InvalidDataError

        raise InvalidDataError(f"a {ctx.job.kind} job needs an input dataset")
    return str(ctx.job.dataset.path)


def _checkpoint_path(job: Job) -> str | None:
    """The model version's checkpoint (its bytes checked), or None for the shipped default model."""
    from webapp.core.services import model_version_checked_file

    return model_version_checked_file(job.model_version) if job.model_version is not None else None


def run_simulate(ctx: Context) -> dict[str, Any]:
    """``simulate_dataset`` into the job folder (simulated.h5), registered as a "simulated-set" dataset."""
    from reconstruction.simulate.workflow import simulate_dataset
    from webapp.core.services import dataset_register_simulated

    p = ctx.job.params
    path = ctx.job.result_dir / "simulated.h5"
    summary = simulate_dataset(
        str(path),
        kind=p["kind"], n=p["n"], shape=p["shape"], dims=p["dims"],
        photons=(p["photons_min"], p["photons_max"]), seed=p["seed"], cxi=p["cxi"],
        progress=ctx.progress, cancel=ctx.cancel,
    )
    dataset = dataset_register_simulated(job=ctx.job, path=path, summary=summary)
    summary["dataset"] = {"id": dataset.pk, "name": dataset.name}
    ctx.progress.add_log(f"registered the simulated set as dataset {dataset.pk}")
    return summary


def _register_candidate(ctx: Context, summary: dict[str, Any], *, name: str, parent=None) -> None:
    """Record the checkpoint a train/finetune job wrote as a candidate model version."""
    from reconstruction.nn.checkpoint import read_checkpoint
    from webapp.core.services import model_version_register

    path = summary.get("checkpoint_path") or summary.get("out_path") or str(ctx.job.result_dir / "model.pt")
    payload = read_checkpoint(path)
    config = dict(payload.get("config") or {})
    dims = int(config.get("dims") or (parent.dims if parent is not None else 3))
    version = model_version_register(
        name=name, file=path, dims=dims, config=config, metrics=dict(payload.get("metrics") or {}),
        parent=parent, trained_by_job=ctx.job,
    )
    summary["model_version"] = {"id": version.pk, "name": version.name, "version": version.version}


def run_train(ctx: Context) -> dict[str, Any]:
    """``train_model`` into the job folder (model.pt); registers a candidate model version.

    With a dataset (a simulate job's "simulated-set") the network learns from that stored set;
    without one the library simulates the recipe's data.
    """
    from reconstruction.nn.workflow import train_model

    p = ctx.job.params
    overrides = {key: p[key] for key in ("epochs", "minutes", "n_train", "seed") if p.get(key)}
    data_path = str(ctx.job.dataset.path) if ctx.job.dataset is not None else None
    summary = train_model(
        str(ctx.job.result_dir / "model.pt"), recipe=p["recipe"], data_path=data_path, device=ctx.device,
        progress=ctx.progress, cancel=ctx.cancel, **overrides,
    )
    if ctx.job.dataset is not None:
        summary["training_dataset"] = {"id": ctx.job.dataset.pk, "name": ctx.job.dataset.name}
    _register_candidate(ctx, summary, name=p.get("name") or summary.get("model_name") or f"{p['recipe']}-train")
    return summary


def run_finetune(ctx: Context) -> dict[str, Any]:
    """``finetune_model`` from the job's model version on its dataset; registers a candidate."""
    from reconstruction.nn.workflow import finetune_model

    base = ctx.job.model_version
    if base is None:
        from reconstruction.errors import ConfigError

        raise ConfigError("a finetune job needs a base model version")
    p = ctx.job.params
    summary = finetune_model(
        _checkpoint_path(ctx.job), [_input_path(ctx)], str(ctx.job.result_dir / "model.pt"),
        steps=p["steps"], lr=p["lr"], batch_size=p["batch_size"], freeze_encoder=p["freeze_encoder"],
        augment=p["augment"], seed=p["seed"], device=ctx.device, progress=ctx.progress, cancel=ctx.cancel,
    )
    _register_candidate(ctx, summary, name=p.get("name") or base.name, parent=base)
    return summary


def _model_input_size(job: Job) -> int:
    """Edge in pixels of the diffraction box the job's network reads (from its checkpoint)."""
    config = job.model_version.config if job.model_version is not None else {}
    if config.get("input_size"):
        return int(config["input_size"])
    from reconstruction.errors import CheckpointError
    from reconstruction.nn.checkpoint import read_checkpoint
    from reconstruction.nn.workflow import default_checkpoint_path

    if job.model_version is not None:
        path = _checkpoint_path(job)
    else:
        dims = job.dataset.dims if job.dataset is not None else 3
        path = default_checkpoint_path(dims)
        if not path.is_file():
            raise CheckpointError(f"no {dims}D model is registered and the shipped default model is missing: "
                                  "train one (a train job) and promote it, or choose a model version")
    return int(read_checkpoint(path)["config"]["input_size"])


def prepared_input(job: Job) -> str:
    """The data file a refine job reads: the prepared CXI its predict parent used, else its dataset.

    Predict jobs prepare the data to the network's box (``prepared.cxi`` in their folder); the
    refinement must run on that same grid.
    """
    prepared = job.parent.prepared_files() if job.parent is not None else []
    if prepared:
        return str(prepared[0])
    if job.dataset is None:
        from reconstruction.errors import InvalidDataError

        raise InvalidDataError(f"a {job.kind} job needs an input dataset")
    return str(job.dataset.path)


def run_predict(ctx: Context, *, job: Job | None = None, progress: JobProgress | None = None) -> dict[str, Any]:
    """Prepare the data to the network's box (prepared.cxi), then ``predict_file`` into result.cxi.

    The model is the job's model version, or None for the library's shipped default.
    """
    from reconstruction.io.workflow import prepare_file
    from reconstruction.nn.workflow import predict_file

    job = job or ctx.job
    progress = progress or ctx.progress
    if job.dataset is None:
        _input_path(ctx)
    from reconstruction.progress import ProgressEvent

    progress(ProgressEvent(0.0, stage="prepare"))
    size = _model_input_size(job)
    prepared = job.result_dir / "prepared.cxi"
    prep = prepare_file(str(job.dataset.path), str(prepared), shape=size, cancel=ctx.cancel)
    progress.add_log(f"prepared the data to {prep.get('shape')} (binning {prep.get('bin_factors')}) for the network")
    summary = predict_file(
        str(prepared), str(job.result_path),
        checkpoint_path=_checkpoint_path(job), device=ctx.device,
        threshold=job.params.get("threshold", 0.1), optimise_steps=job.params.get("optimise_steps", 0),
        flips=int(job.params.get("flips", 1)),
        progress=progress, cancel=ctx.cancel, provenance=ctx.provenance | {"job_id": job.pk},
    )
    summary["prepared"] = prep
    for line in summary.get("warnings", []):
        progress.add_log(f"warning: {line}")
    return summary


def run_refine(ctx: Context, *, job: Job | None = None, progress: JobProgress | None = None) -> dict[str, Any]:
    """``refine_file`` from the parent job's result.cxi (on the parent's prepared grid) into result.cxi."""
    from reconstruction.errors import InvalidDataError
    from reconstruction.phasing.workflow import refine_file

    job = job or ctx.job
    if job.parent is None or not job.parent.result_path.exists():
        raise InvalidDataError("a refine job needs a parent job with a result file")
    p = job.params
    return refine_file(
        prepared_input(job), str(job.result_path),
        initial_path=str(job.parent.result_path), algorithm=p["algorithm"],
        # a job stored before the parameter existed ran with the support fixed, and still does
        support_threshold=p["support_threshold"], shrinkwrap=p.get("shrinkwrap", False),
        psf=p.get("psf") or None, device=ctx.device, progress=progress or ctx.progress, cancel=ctx.cancel,
        provenance=ctx.provenance | {"job_id": job.pk, "parent_job_id": job.parent.pk},
    )


def run_phase(ctx: Context) -> dict[str, Any]:
    """``phase_file`` (random starts, ER/HIO schedule) into result.cxi."""
    from reconstruction.phasing.workflow import phase_file

    p = ctx.job.params
    shape = p.get("shape", "default")
    support_file = _support_path(ctx)
    # shrink-wrap from a computed support ("auto", "box", a size); a support file stays fixed,
    # and jobs submitted before the parameter existed take the engine's default (None)
    threshold = p.get("shrinkwrap_threshold")
    shrinkwrap = None if support_file or threshold is None else {"threshold": threshold}
    return phase_file(
        _input_path(ctx), str(ctx.job.result_path),
        algorithm=p["algorithm"], cycles=p["cycles"], runs=p["runs"], keep=p["keep"],
        support=support_file or p["support"], seed=p["seed"], device=ctx.device,
        shrinkwrap=shrinkwrap, positivity=p.get("positivity", False), psf=p.get("psf") or None,
        shape=None if shape == "default" else shape,
        prepared_out=str(ctx.job.result_dir / "prepared.cxi"),
        progress=ctx.progress, cancel=ctx.cancel, provenance=ctx.provenance,
    )


def _support_path(ctx: Context) -> str | None:
    """The file of the job's ``support_dataset`` (a dataset of the job's own group), or None."""
    from reconstruction.errors import InvalidDataError

    pk = ctx.job.params.get("support_dataset") or 0
    if not pk:
        return None
    support = Dataset.objects.filter(pk=pk, group=ctx.job.group).first()
    if support is None or not support.path.is_file():
        raise InvalidDataError(f"the support dataset #{pk} is gone (deleted since submission?)")
    return str(support.path)


def _step(ctx: Context, *, kind: str, parent: Job, params: dict[str, Any], lo: float, hi: float,
          run: Callable[..., dict[str, Any]]) -> Job:
    """Run one pipeline step as its own Job row (child of ``parent``), inside this task.

    A step that already succeeded in an earlier attempt (its result file exists) is reused.
    """
    step = claim_step(ctx.job, kind=kind, parent=parent, params=params)
    if step.status == "succeeded" and step.result_path.exists():
        ctx.progress.add_log(f"{kind} step: reusing job {step.pk} from the previous attempt")
        return step
    step.result_dir.mkdir(parents=True, exist_ok=True)
    ctx.heartbeat.ids.append(step.pk)
    progress = JobProgress(step.pk, log=step.log, mirror=None)
    ctx.progress.lo, ctx.progress.hi = lo, hi
    ctx.progress.stage_prefix = f"{kind}: "
    progress.mirror = ctx.progress
    ctx.progress.add_log(f"{kind} step: job {step.pk}")
    started = time.monotonic()
    try:
        summary = dict(run(ctx, job=step, progress=progress) or {})
    except BaseException as exc:
        from reconstruction.errors import Cancelled

        status = "cancelled" if isinstance(exc, Cancelled) else "failed"
        finish(step.pk, status, progress=progress, error="" if status == "cancelled" else str(exc))
        raise
    finally:
        ctx.heartbeat.ids.remove(step.pk)
    summary.setdefault("seconds", time.monotonic() - started)
    from workers.runner import write_json_atomic

    write_json_atomic(step.summary_path, summary)
    finish(step.pk, "succeeded", progress=progress, summary=summary)
    step.refresh_from_db()
    return step


def run_fallback_phase(ctx: Context, *, job: Job, progress: JobProgress) -> dict[str, Any]:
    """``phase_file`` from random starts on the predict step's prepared grid (the pipeline's
    fallback when the prediction looks twin-averaged), into the step's result.cxi."""
    from reconstruction.phasing.workflow import phase_file

    p = job.params
    return phase_file(
        prepared_input(job), str(job.result_path), algorithm=p["algorithm"], cycles=p["cycles"],
        runs=p["runs"], seed=p.get("seed", 0), psf=p.get("psf") or None, device=ctx.device,
        progress=progress, cancel=ctx.cancel,
        provenance=ctx.provenance | {"job_id": job.pk, "parent_job_id": job.parent.pk},
    )


def run_pipeline(ctx: Context) -> dict[str, Any]:
    """Predict with the network (child job), then refine from its result (grandchild job).

    Where the prediction looks like the average of the crystal and its twin (3D), a phase step
    from ``fallback_runs`` random starts runs as well (another grandchild) and the better fit
    (``reconstruction.nn.workflow.better_fit``) is the pipeline's. The pipeline job's own
    result.cxi is a copy of that result; its summary lists every step and says which won.
    """
    job = ctx.job
    from reconstruction.nn.workflow import PIPELINE_FALLBACK_RUNS, PIPELINE_FLIPS, better_fit
    from reconstruction.phasing import DEFAULT_ALGORITHM

    predict = _step(ctx, kind="predict", parent=job,
                    params={"optimise_steps": job.params.get("optimise_steps", 0),
                            "flips": int(job.params.get("flips", PIPELINE_FLIPS))},
                    lo=0.0, hi=0.25, run=run_predict)
    warnings = list(predict.summary.get("warnings", []))
    fallback_runs = int(job.params.get("fallback_runs", PIPELINE_FALLBACK_RUNS))
    fallback = bool(predict.summary.get("twin_averaged")) and fallback_runs > 0
    for line in warnings:
        ctx.progress.add_log(f"warning: {line}")
    refine = _step(ctx, kind="refine", parent=predict,
                   params={k: job.params[k] for k in ("algorithm", "support_threshold", "shrinkwrap", "psf")
                           if k in job.params},
                   lo=0.25, hi=0.45 if fallback else 1.0, run=run_refine)
    steps = {"predict": {"job_id": predict.pk, **predict.summary}, "refine": {"job_id": refine.pk, **refine.summary}}
    best, route = refine, "refined"
    if fallback:
        ctx.progress.add_log(f"phasing from {fallback_runs} random starts as well; the better fit is kept")
        phase = _step(ctx, kind="phase", parent=predict,
                      params={"algorithm": DEFAULT_ALGORITHM, "cycles": 3, "runs": fallback_runs, "keep": 1,
                              "support": "auto", "seed": 0, "psf": job.params.get("psf", "")},
                      lo=0.45, hi=1.0, run=run_fallback_phase)
        steps["phase"] = {"job_id": phase.pk, **phase.summary}
        if better_fit(phase.summary, refine.summary):
            best, route = phase, "phased"
        ctx.progress.add_log(f"kept the {route} result (job {best.pk}): the lower free LLK")
    temp = f"{job.result_path}.tmp-{os.getpid()}"
    shutil.copyfile(best.result_path, temp)
    os.replace(temp, job.result_path)
    summary = dict(best.summary)
    summary.update(
        out_path=str(job.result_path),
        route=route,
        warnings=warnings,
        steps=steps,
        metrics=best.metrics,
        metrics_predicted=predict.metrics,
        seconds=sum(float(step.get("seconds", 0.0)) for step in steps.values()),
        finished=timezone.now().isoformat(),
    )
    if best.curves:
        summary["curves"] = best.curves
    return summary


HANDLERS: dict[str, Callable[[Context], dict[str, Any]]] = {
    "simulate": run_simulate,
    "train": run_train,
    "finetune": run_finetune,
    "predict": run_predict,
    "refine": run_refine,
    "phase": run_phase,
    "pipeline": run_pipeline,
}
