"""End to end with real parts: a private Redis, a real Celery worker subprocess on the test
database, the real library. A pipeline (predict -> refine) runs on a small simulated pattern;
a running job is cancelled; a worker is SIGKILLed mid-job and the job does not stay running."""

from __future__ import annotations

import importlib.util
import io
import time

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.conftest import REAL_DATA, small_pattern, wait_for
from webapp.core.models import Job

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _have(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def needs(*modules: str):
    """Skip (before the worker starts) while a library workflow is not there yet."""
    missing = [m for m in modules if not _have(m)]
    return pytest.mark.skipif(bool(missing), reason=f"library workflow not there yet: {', '.join(missing)}")


def _upload_pattern(client, n: int = 64, *, seed: int = 0) -> dict:
    buffer = io.BytesIO()
    np.save(buffer, small_pattern(n, photons=1e9, seed=seed))
    response = client.post("/api/datasets", {"file": SimpleUploadedFile(f"crystal{n}-{seed}.npy", buffer.getvalue())})
    assert response.status_code == 201, response.content
    return response.json()


def _submit(client, **body) -> dict:
    response = client.post("/api/jobs", body, content_type="application/json")
    assert response.status_code == 201, response.content
    return response.json()


def _job(job_id: int) -> Job:
    return Job.objects.get(pk=job_id)


def _finished(job_id: int) -> Job | None:
    job = _job(job_id)
    return job if job.is_finished else None


def _running_with_progress(job_id: int) -> Job | None:
    job = _job(job_id)
    if job.is_finished:
        pytest.fail(f"job {job_id} finished too early: {job.status} {job.error_message}")
    return job if job.status == "running" and job.progress > 0 else None


@needs("reconstruction.io.workflow", "reconstruction.nn.workflow", "reconstruction.phasing.workflow",
       "reconstruction.simulate.workflow")
def test_a_trained_model_then_a_pipeline_run_end_to_end_in_a_real_worker(cast, celery_worker):
    from reconstruction.io import read_result
    from webapp.core.models import ModelVersion

    client = cast.api(cast.owner)
    # 1. train the seconds-long "tiny" recipe (16^3 input): a candidate model version appears.
    train = _submit(client, kind="train", group=cast.alpha.pk, preset="smoke-test")
    trained = wait_for(lambda: _finished(train["id"]), timeout_s=180, interval_s=0.5, what="the train job")
    assert trained.status == "succeeded", f"{trained.error_message}\n{trained.log}"
    (model,) = ModelVersion.objects.filter(trained_by_job=trained)
    assert model.status == "candidate" and model.dims == 3 and len(model.sha256) == 64
    assert model.file.startswith(str(trained.result_dir)) and "model.pt" in trained.summary.get("out_path", "")
    # 2. the pipeline: predict with that model, then refine from the prediction.
    dataset = _upload_pattern(client, 16)
    submitted = time.monotonic()
    job = _submit(client, kind="pipeline", dataset=dataset["id"], model_version=model.pk, preset="thorough")
    done = wait_for(lambda: _finished(job["id"]), timeout_s=180, interval_s=0.5, what="the pipeline job")
    seconds = time.monotonic() - submitted
    assert done.status == "succeeded", f"{done.error_message}\n{done.log}\n{celery_worker.log()[-3000:]}"
    data = client.get(f"/api/jobs/{job['id']}").json()
    assert data["progress"] == 1.0 and data["result_url"] and "summary.json" in data["files"]
    assert "chi2" in data["metrics"] and data["curves"], data
    assert data["model_version"] == model.pk
    # Lineage: pipeline -> predict step -> refine step, each with its own result file.
    (predict_id,) = data["children"]
    predict = _job(predict_id)
    steps = {step.kind: step for step in Job.objects.filter(parent=predict)}
    # a prediction that looks twin-averaged adds a phase step from random starts
    assert set(steps) == ({"refine", "phase"} if predict.summary["twin_averaged"] else {"refine"})
    refine = steps["refine"]
    assert predict.kind == "predict" and predict.model_version_id == model.pk
    assert predict.status == refine.status == "succeeded"
    assert predict.result_path.exists() and refine.result_path.exists()
    assert refine.params["algorithm"] == "ER**20,HIO**160,ER**20"  # the preset reaches the refine step
    assert refine.params["shrinkwrap"] is True
    record = read_result(str(done.result_path))
    assert np.ptp(record.curves["support_fraction"]) > 0
    assert record.obj.shape == (16, 16, 16) and np.iscomplexobj(record.obj)
    assert np.isfinite(np.abs(record.obj)).all() and record.support.any()
    response = client.get(data["result_url"])
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == done.result_path.read_bytes()
    print(f"pipeline 16^3: {seconds:.1f} s from submission to result")


@needs("reconstruction.io.workflow", "reconstruction.nn.workflow", "reconstruction.simulate.workflow")
def test_finetuning_makes_a_child_candidate_that_staff_promote_and_predict_then_uses(cast, celery_worker):
    from webapp.core.models import ModelVersion

    client = cast.api(cast.owner)
    train = _submit(client, kind="train", group=cast.alpha.pk, preset="smoke-test", params={"name": "tiny-net"})
    assert wait_for(lambda: _finished(train["id"]), timeout_s=180, what="the train job").status == "succeeded"
    base = ModelVersion.objects.get(trained_by_job_id=train["id"])
    dataset = _upload_pattern(client, 16, seed=5)
    tune = _submit(client, kind="finetune", dataset=dataset["id"], model_version=base.pk, params={"steps": 10})
    tuned_job = wait_for(lambda: _finished(tune["id"]), timeout_s=180, what="the finetune job")
    assert tuned_job.status == "succeeded", f"{tuned_job.error_message}\n{tuned_job.log}"
    tuned = ModelVersion.objects.get(trained_by_job=tuned_job)
    assert (tuned.name, tuned.version, tuned.parent_id, tuned.status) == ("tiny-net", 2, base.pk, "candidate")
    # Members cannot promote; staff can, and predict without a model then uses the new default.
    assert client.post(f"/api/models/{tuned.pk}/promote").status_code == 403
    assert cast.api(cast.staff).post(f"/api/models/{tuned.pk}/promote").json()["status"] == "default"
    job = _submit(client, kind="predict", dataset=dataset["id"])
    assert job["model_version"] == tuned.pk
    done = wait_for(lambda: _finished(job["id"]), timeout_s=60, what="the predict job")
    assert done.status == "succeeded", done.error_message
    assert (done.result_dir / "prepared.cxi").is_file() and done.result_path.is_file()


def _long_phase_job(client, dataset_id: int) -> dict:
    # Many cheap iterations on 32^3: long enough to interrupt, reporting progress all along.
    return _submit(client, kind="phase", dataset=dataset_id,
                   params={"algorithm": "HIO**20000", "cycles": 1, "support": "auto"})


@needs("reconstruction.io.workflow", "reconstruction.phasing.workflow")
def test_cancelling_a_running_job_stops_it_within_a_few_seconds(cast, celery_worker):
    client = cast.api(cast.owner)
    dataset = _upload_pattern(client, 32, seed=1)
    job = _long_phase_job(client, dataset["id"])
    wait_for(lambda: _running_with_progress(job["id"]), timeout_s=60, what="the job to run")
    asked = time.monotonic()
    assert client.post(f"/api/jobs/{job['id']}/cancel").status_code == 200
    done = wait_for(lambda: _finished(job["id"]), timeout_s=15, interval_s=0.2, what="the cancellation")
    assert done.status == "cancelled" and time.monotonic() - asked < 10
    assert "cancelled" in done.log


@needs("reconstruction.io.workflow", "reconstruction.phasing.workflow")
def test_a_worker_killed_mid_job_is_requeued_once_then_failed_with_a_reason(cast, celery_worker):
    client = cast.api(cast.owner)
    dataset = _upload_pattern(client, 32, seed=2)
    job = _long_phase_job(client, dataset["id"])
    try:
        wait_for(lambda: _running_with_progress(job["id"]), timeout_s=60, what="attempt 1 to run")
        celery_worker.kill()
        assert _job(job["id"]).status == "running"  # the dead worker left it so
        celery_worker.start()  # its start-up sweep finds the heartbeat stale: re-queued once, runs again
        second = wait_for(lambda: (j := _job(job["id"])).attempts == 2 and j.status == "running" and j.progress > 0
                          and j, timeout_s=60, what="attempt 2 to run")
        assert "re-queued once" in second.log
        celery_worker.kill()
        celery_worker.start()
        done = wait_for(lambda: _finished(job["id"]), timeout_s=30, what="the job to be failed")
        assert done.status == "failed" and "worker lost twice" in done.error_message
        data = client.get(f"/api/jobs/{job['id']}").json()
        assert data["status"] == "failed" and data["attempts"] == 2
    finally:
        if not celery_worker.alive():
            celery_worker.start()
        client.post(f"/api/jobs/{job['id']}/cancel")
        wait_for(lambda: _finished(job["id"]), timeout_s=30, what="the job to end")


@needs("reconstruction.simulate.workflow")
def test_a_simulate_job_runs_on_the_cpu_queue_and_writes_its_dataset(cast, celery_worker):
    client = cast.api(cast.owner)
    job = _submit(client, kind="simulate", group=cast.alpha.pk, params={"n": 2, "shape": 16, "kind": "crystal"})
    done = wait_for(lambda: _finished(job["id"]), timeout_s=90, what="the simulate job")
    assert done.status == "succeeded", f"{done.error_message}\n{done.log}"
    assert (done.result_dir / "simulated.h5").is_file() and done.summary["n"] == 2
    assert client.get(f"/api/jobs/{job['id']}/files/simulated.h5").status_code == 200


@needs("reconstruction.io.workflow", "reconstruction.phasing.workflow")
def test_a_2d_pattern_phased_with_an_uploaded_support_file_then_refined_on_the_same_grid(cast, celery_worker):
    """ESRF's logo and its support EDF, uploaded as two datasets: the phase job reads the
    support through ``support_dataset``, phases the 512² frame at full resolution and keeps its
    prepared data for the refinement and the viewer."""
    from reconstruction.io import read_result

    if not REAL_DATA.is_dir():
        pytest.skip(f"real data folder {REAL_DATA} is absent")
    client = cast.api(cast.owner)
    ids = {}
    for name in ("esrf_id10_logo5mu_20sec.edf", "esrf_id10_logo5mu_20sec_support.edf"):
        upload = SimpleUploadedFile(name, (REAL_DATA / name).read_bytes())
        response = client.post("/api/datasets", {"file": upload, "group": cast.alpha.pk})
        assert response.status_code == 201, response.content
        ids[name] = response.json()["id"]
    job = _submit(client, kind="phase", dataset=ids["esrf_id10_logo5mu_20sec.edf"],
                  params={"algorithm": "HIO**100,ER**30", "cycles": 1, "positivity": True,
                          "support_dataset": ids["esrf_id10_logo5mu_20sec_support.edf"]})
    done = wait_for(lambda: _finished(job["id"]), timeout_s=120, what="the phase job")
    assert done.status == "succeeded", f"{done.error_message}\n{done.log}"
    record = read_result(done.result_path)
    assert record.obj.shape == (512, 512) and record.support.sum() == 7577
    assert record.metrics["chi2"] < 0.02 and not record.obj.imag.any()  # positivity
    assert (done.result_dir / "prepared.cxi").is_file()
    # the refinement models partial coherence: a kernel fitted from iteration 2 on, kept in the file
    refine = _submit(client, kind="refine", parent=done.pk, dataset=done.dataset_id,
                     params={"algorithm": "ER**5", "psf": "gaussian,0.5,2"})
    refined = wait_for(lambda: _finished(refine["id"]), timeout_s=60, what="the refine job")
    assert refined.status == "succeeded", f"{refined.error_message}\n{refined.log}"
    refined_record = read_result(refined.result_path)
    assert refined_record.obj.shape == (512, 512) and refined_record.arrays["psf"].shape == (512, 512)
    assert "--psf gaussian,0.5,2" in refined_record.command and refined.metrics["psf_fwhm_px"] > 0
    from django.test import Client

    viewer = Client()
    viewer.force_login(cast.owner)
    for url in (f"/jobs/{done.pk}/figures.json", f"/jobs/{done.pk}/"):
        response = viewer.get(url)
        assert response.status_code == 200, (url, response.content[:500])
    print(f"2D 512² figures: {len(viewer.get(f'/jobs/{done.pk}/figures.json').content) / 1e6:.1f} MB")
    # the shipped 2D model makes the network route work on the same 2D dataset
    from reconstruction.nn.workflow import default_checkpoint_path

    if default_checkpoint_path(2).is_file():
        pipeline = _submit(client, kind="pipeline", dataset=done.dataset_id, preset="quick")
        finished = wait_for(lambda: _finished(pipeline["id"]), timeout_s=120, what="the 2D pipeline job")
        assert finished.status == "succeeded", f"{finished.error_message}\n{finished.log}"
        assert read_result(finished.result_path).obj.shape == (64, 64)
