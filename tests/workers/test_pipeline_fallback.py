"""The pipeline job's fallback: random starts phased as well when the prediction looks like the
average of the crystal and its twin, the better fit kept, and the user told (log and page)."""

from __future__ import annotations

import pytest
import torch

from webapp.core.models import Job, ModelVersion
from webapp.core.schemas import validate_params
from workers import runner


def _tiny_model(records) -> ModelVersion:
    from reconstruction.nn.checkpoint import save_checkpoint
    from reconstruction.nn.model import PhaseNet
    from tests.reconstruction.test_nn_workflow import TINY

    torch.manual_seed(0)
    path = records.job.result_dir / "tiny.pt"
    save_checkpoint(path, PhaseNet(TINY), name="tiny-3d")
    return ModelVersion.objects.create(name="tiny", version=2, dims=3, file=str(path), trained_by_job=records.job,
                                       config={"input_size": 16})  # fmt: skip


@pytest.mark.parametrize("flagged", [True, False])
def test_a_pipeline_phases_from_random_starts_too_when_its_prediction_looks_twin_averaged(
    cast, records, monkeypatch, flagged
):
    from reconstruction.nn import workflow

    # the tiny model's amplitude spread is arbitrary: place the threshold below or above it
    monkeypatch.setattr(workflow, "twin_averaged_threshold", lambda dims, views: -1.0 if flagged else 1e9)
    params = validate_params("pipeline", {"algorithm": "ER**5", "flips": 1, "fallback_runs": 2})
    job = Job.objects.create(group=cast.alpha, owner=cast.owner, kind="pipeline", dataset=records.dataset,
                             params=params, model_version=_tiny_model(records), celery_task_id="task-1")  # fmt: skip
    assert runner.execute(job.pk, task_id="task-1") == "succeeded", Job.objects.get(pk=job.pk).error_message
    job.refresh_from_db()
    (predict,) = Job.objects.filter(parent=job)
    steps = {step.kind: step for step in Job.objects.filter(parent=predict)}
    assert set(steps) == ({"refine", "phase"} if flagged else {"refine"})
    assert all(step.status == "succeeded" for step in steps.values())
    summary = job.summary
    if not flagged:
        assert summary["route"] == "refined" and summary["warnings"] == [] and "phase" not in summary["steps"]
        assert job.result_path.read_bytes() == steps["refine"].result_path.read_bytes()
        return
    phase = steps["phase"]
    assert phase.params["runs"] == 2 and len(phase.summary["runs"]) == 2
    assert phase.summary["metrics"]["iterations"] == 600  # the engine's default recipe, 3 cycles
    free = {kind: steps[kind].summary["metrics"]["llk_free"] for kind in ("refine", "phase")}
    winner = "phase" if free["phase"] < free["refine"] else "refine"
    assert summary["route"] == {"phase": "phased", "refine": "refined"}[winner]
    assert job.result_path.read_bytes() == steps[winner].result_path.read_bytes()
    assert job.metrics["llk_free"] == pytest.approx(free[winner])
    assert "twin" in summary["warnings"][0] and "warning:" in job.log and "the better fit" in job.log
    assert "warning: the predicted amplitude" in predict.log and predict.summary["twin_averaged"] is True
    # the job page says it, and which result the pipeline kept
    page = cast.client(cast.owner).get(f"/jobs/{job.pk}/").content.decode()
    assert "Warning: the predicted amplitude varies" in page
    assert ("phased from 2 random starts" if winner == "phase" else "the refined prediction, which fit") in page
    # the predict step's own page offers the random starts the pipeline ran
    step_page = cast.client(cast.owner).get(f"/jobs/{predict.pk}/").content.decode()
    assert "Warning: the predicted amplitude varies" in step_page
    assert f"?kind=phase&dataset={records.dataset.pk}\">Phase from random starts" in step_page
