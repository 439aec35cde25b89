"""The job machinery without a broker: claiming, redelivery, the stale-job sweeper, throttled
progress and the final bookkeeping (the integration tests run the same code in a real worker)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from reconstruction.errors import InvalidDataError
from reconstruction.progress import ProgressEvent, check
from webapp.core.models import Job
from workers import kinds, runner
from workers.sweeper import LOST_TWICE, recover_if_stale, sweep_stale_jobs


def _job(cast, records, **fields) -> Job:
    defaults = dict(group=cast.alpha, owner=cast.owner, kind="phase", dataset=records.dataset,
                    params={"algorithm": "ER**5"}, celery_task_id="task-1")
    defaults.update(fields)
    return Job.objects.create(**defaults)


def test_a_finished_job_is_not_run_again(cast, records):
    assert runner.execute(records.job.pk, task_id="fixture") == "skipped"
    records.job.refresh_from_db()
    assert records.job.status == "succeeded" and records.job.attempts == 0


def test_a_superseded_message_is_dropped(cast, records):
    job = _job(cast, records, celery_task_id="current")
    assert runner.claim(job.pk, task_id="old-message") is None
    job.refresh_from_db()
    assert job.status == "queued" and job.attempts == 0


def test_a_job_found_running_on_redelivery_runs_once_more_then_fails_as_worker_lost_twice(cast, records):
    job = _job(cast, records)
    assert runner.claim(job.pk, task_id="task-1").attempts == 1  # first delivery
    again = runner.claim(job.pk, task_id="task-1")  # redelivered after the worker died
    assert again is not None and again.attempts == 2 and "interrupted" in again.log
    assert runner.claim(job.pk, task_id="task-1") is None  # died a second time
    job.refresh_from_db()
    assert job.status == "failed" and job.error_message == LOST_TWICE and job.finished is not None


def _make_stale(job: Job, *, attempts: int) -> None:
    Job.objects.filter(pk=job.pk).update(status="running", attempts=attempts,
                                         updated=timezone.now() - timedelta(minutes=10))


def test_the_sweeper_requeues_a_job_whose_heartbeat_stopped_once_then_fails_it(cast, records):
    job = _job(cast, records)
    step = _job(cast, records, kind="predict", parent=job, celery_task_id="")
    _make_stale(job, attempts=1)
    Job.objects.filter(pk=step.pk).update(status="running")
    assert sweep_stale_jobs() == {job.pk: "requeued"}
    job.refresh_from_db()
    assert job.status == "queued" and job.celery_task_id != "task-1" and "re-queued once" in job.log
    assert Job.objects.get(pk=step.pk).status == "queued"
    # The re-sent message runs it (attempt 2); the worker dies again.
    assert runner.claim(job.pk, task_id=job.celery_task_id).attempts == 2
    _make_stale(job, attempts=2)
    Job.objects.filter(pk=step.pk).update(status="running")
    assert sweep_stale_jobs() == {job.pk: "failed"}
    job.refresh_from_db()
    assert job.status == "failed" and job.error_message == LOST_TWICE
    assert Job.objects.get(pk=step.pk).status == "failed"


def test_the_sweeper_leaves_jobs_with_a_fresh_heartbeat_alone(cast, records):
    job = _job(cast, records, status="running", attempts=1, updated=timezone.now())
    assert sweep_stale_jobs() == {}
    assert Job.objects.get(pk=job.pk).status == "running"


def test_reading_a_stale_job_through_the_api_recovers_it(cast, records):
    job = _job(cast, records)
    _make_stale(job, attempts=2)
    data = cast.api(cast.owner).get(f"/api/jobs/{job.pk}").json()
    assert data["status"] == "failed" and "worker lost twice" in data["error_message"]
    assert recover_if_stale(Job.objects.get(pk=job.pk)).status == "failed"


def test_progress_is_written_at_most_once_per_interval_with_eta_and_short_curves(cast, records):
    job = _job(cast, records, status="running")
    progress = runner.JobProgress(job.pk, min_interval_s=3600)
    with CaptureQueriesContext(connection) as queries:
        for i in range(2000):
            progress(ProgressEvent(fraction=(i + 1) / 2000, stage="HIO", step=i, total=2000,
                                   values={"chi2": 1.0 / (i + 1)}))
    assert len(queries) == 1  # the first event; the others wait for the interval
    progress.flush()
    job.refresh_from_db()
    assert job.progress == pytest.approx(1.0) and job.stage == "HIO"
    assert job.latest_values == {"chi2": pytest.approx(1 / 2000)}
    assert 100 <= len(job.curves["chi2"]) <= runner.MAX_CURVE_POINTS
    assert job.curves["chi2"][0] == 1.0 and job.eta_s == pytest.approx(0.0, abs=1e-6)


def test_short_curves_keep_the_last_point_and_drop_non_finite_values():
    curves = runner.short_curves({"chi2": [float(i) for i in range(1001)] + [float("nan")]}, max_points=100)
    assert len(curves["chi2"]) <= 100 and curves["chi2"][0] == 0.0 and curves["chi2"][-1] is None


def _run_with(monkeypatch, job: Job, handler) -> str:
    monkeypatch.setitem(kinds.HANDLERS, job.kind, handler)
    return runner.execute(job.pk, task_id=job.celery_task_id)


def test_a_library_error_fails_the_job_with_its_message(cast, records, monkeypatch):
    job = _job(cast, records)

    def handler(ctx):
        ctx.progress(ProgressEvent(fraction=0.5, stage="ER", values={"chi2": 0.5}, message="halfway"))
        raise InvalidDataError("expected a 2D or 3D intensity array, got shape (5,)")

    assert _run_with(monkeypatch, job, handler) == "failed"
    job.refresh_from_db()
    assert job.error_message == "expected a 2D or 3D intensity array, got shape (5,)"
    assert "halfway" in job.log and job.finished is not None and job.stage == "failed"


def test_a_cancel_request_stops_the_job_at_the_next_check(cast, records, monkeypatch, settings):
    settings.CDI_CANCEL_POLL_S = 0.0
    job = _job(cast, records)

    def handler(ctx):
        for i in range(100):
            if i == 3:
                Job.objects.filter(pk=ctx.job.pk).update(cancel_requested=True)
            check(ctx.cancel)
        return {"out_path": "never"}

    assert _run_with(monkeypatch, job, handler) == "cancelled"
    assert Job.objects.get(pk=job.pk).status == "cancelled"


def test_a_successful_job_records_metrics_curves_and_an_atomic_summary(cast, records, monkeypatch):
    import json

    job = _job(cast, records)

    def handler(ctx):
        ctx.job.result_path.write_bytes(b"result")
        return {"out_path": str(ctx.job.result_path), "seconds": 0.5, "metrics": {"chi2": 0.02, "chi2_free": 0.03},
                "curves": {"chi2": list(range(1000))}}

    assert _run_with(monkeypatch, job, handler) == "succeeded"
    job.refresh_from_db()
    assert job.status == "succeeded" and job.progress == 1.0
    assert job.metrics == {"chi2": 0.02, "chi2_free": 0.03}
    assert len(job.curves["chi2"]) <= runner.MAX_CURVE_POINTS and job.curves["chi2"][-1] == 999
    summary = json.loads(job.summary_path.read_text())
    assert summary["job"]["id"] == job.pk and summary["job"]["input_sha256"] == records.dataset.sha256
    assert not list(job.result_dir.glob("*.tmp*"))


def test_an_unexpected_exception_fails_the_job_instead_of_leaving_it_running(cast, records, monkeypatch):
    job = _job(cast, records)

    def handler(ctx):
        raise KeyError("bug")

    assert _run_with(monkeypatch, job, handler) == "failed"
    job.refresh_from_db()
    assert job.status == "failed" and "internal error (KeyError" in job.error_message
    assert "Traceback" in job.log



def test_the_worker_parent_never_imports_torch():
    import subprocess
    import sys

    from tests.conftest import ROOT

    code = (
        "import os, sys, django; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'webapp.settings'); django.setup();"
        "import workers.app, workers.tasks, workers.runner, workers.kinds, workers.sweeper;"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


@pytest.mark.django_db(transaction=True)
def test_a_job_submitted_while_the_broker_is_down_fails_with_a_clear_message(cast, records):
    from tests.conftest import free_port, point_celery_at
    from workers.app import app

    previous = app.conf.broker_url
    point_celery_at(f"redis://127.0.0.1:{free_port()}/0")
    try:
        response = cast.api(cast.owner).post("/api/jobs", {"kind": "phase", "dataset": records.dataset.pk},
                                             content_type="application/json")
    finally:
        point_celery_at(previous)
    assert response.json()["status"] == "failed"
    job = Job.objects.get(pk=response.json()["id"])
    assert job.status == "failed" and "job queue (Redis) is unreachable" in job.error_message


def test_a_new_job_never_inherits_an_older_folder_with_its_id(cast, records, media_root):
    """A folder already at jobs/<id>/ (a database recreated beside old files, or an id that
    SQLite reused after a rollback) is set aside, not deleted, when a job gets that id."""
    probe = _job(cast, records)
    next_id = probe.pk + 1
    old = media_root / "jobs" / str(next_id)
    old.mkdir(parents=True)
    (old / "prepared.cxi").write_bytes(b"someone else's data")

    def stale() -> set:
        # MEDIA_ROOT lives for the session: earlier tests may have set folders of this id aside
        return {p for p in (media_root / "jobs").iterdir() if p.name.startswith(f"{next_id}.stale-")}

    before = stale()
    job = _job(cast, records, kind="refine", parent=records.job)
    assert job.pk == next_id and not job.result_dir.exists()
    aside = sorted(stale() - before)
    assert len(aside) == 1 and (aside[0] / "prepared.cxi").read_bytes() == b"someone else's data"
    assert job.parent.prepared_files() == [] and kinds.prepared_input(job) == str(records.dataset.path)
    job.save()  # saving again leaves the job's own folder alone
    job.result_dir.mkdir()
    job.save()
    assert job.result_dir.is_dir()


def test_a_refinement_runs_on_the_grid_its_predict_ancestor_prepared(cast, records):
    pipeline = _job(cast, records, kind="pipeline", status="succeeded")
    predict = _job(cast, records, kind="predict", status="succeeded", parent=pipeline, celery_task_id="")
    predict.result_dir.mkdir(parents=True, exist_ok=True)
    (predict.result_dir / "prepared.cxi").write_bytes(b"prepared")
    refine_step = _job(cast, records, kind="refine", parent=predict)
    refine_of_pipeline = _job(cast, records, kind="refine", parent=pipeline)
    refine_of_phase = _job(cast, records, kind="refine", parent=records.job)
    expected = str(predict.result_dir / "prepared.cxi")
    assert kinds.prepared_input(refine_step) == expected
    assert kinds.prepared_input(refine_of_pipeline) == expected
    assert kinds.prepared_input(refine_of_phase) == str(records.dataset.path)


def test_a_phase_jobs_shrinkwrap_threshold_reaches_the_engine(cast, records):
    from reconstruction.io import read_result
    from webapp.core.schemas import validate_params

    params = validate_params("phase", {"algorithm": "HIO**20,ER**5", "cycles": 1, "shrinkwrap_threshold": 0.3})
    job = _job(cast, records, params=params)
    assert runner.execute(job.pk, task_id=job.celery_task_id) == "succeeded"
    job.refresh_from_db()
    configuration = read_result(job.result_path).config
    assert configuration["shrinkwrap"]["threshold"] == 0.3 and configuration["support"] == "auto"
