"""Job submission, parameter schemas, presets, cancel and re-run through the JSON API."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from webapp.core.models import Job
from webapp.core.schemas import JOB_KINDS, PARAM_SPECS, PRESETS, validate_params


def _post(client, url, body=None):
    return client.post(url, body or {}, content_type="application/json")


def test_every_kind_validates_its_defaults_and_every_preset():
    for kind in JOB_KINDS:
        defaults = validate_params(kind, {})
        assert set(defaults) == {spec.name for spec in PARAM_SPECS[kind]}
        for preset in PRESETS[kind]:
            params = validate_params(kind, {}, preset=preset)
            assert set(params) == set(defaults)


def test_bad_parameters_are_listed_by_name():
    with pytest.raises(ValidationError) as info:
        validate_params("phase", {"cycles": 0, "runs": "many", "colour": "blue"})
    errors = info.value.message_dict
    assert set(errors) == {"cycles", "runs", "colour"}
    assert "≥ 1" in errors["cycles"][0]


def test_string_numbers_from_forms_are_coerced():
    params = validate_params("phase", {"cycles": "5", "runs": "4", "keep": "2"})
    assert (params["cycles"], params["runs"], params["keep"]) == (5, 4, 2)
    assert validate_params("simulate", {"cxi": "on", "shape": "32"})["cxi"] is True


def test_submitting_a_phase_job_fills_defaults_and_preset(cast, records):
    client = cast.api(cast.member)
    body = {"kind": "phase", "dataset": records.dataset.pk, "preset": "quick", "params": {"seed": 7}}
    response = _post(client, "/api/jobs", body)
    assert response.status_code == 201, response.content
    job = response.json()
    assert job["status"] == "queued" and job["group"] == cast.alpha.pk
    assert job["params"] == {**validate_params("phase", {}), **PRESETS["phase"]["quick"], "seed": 7}


def test_submitting_with_a_bad_parameter_gives_400_naming_it(cast, records):
    body = {"kind": "phase", "dataset": records.dataset.pk, "params": {"cycles": -1}}
    response = _post(cast.api(cast.owner), "/api/jobs", body)
    assert response.status_code == 400
    assert "cycles" in response.json()["detail"]


def test_a_partial_coherence_setting_is_checked_at_submission(cast, records):
    assert validate_params("phase", {})["psf"] == "" and validate_params("refine", {"psf": "off"})["psf"] == "off"
    assert validate_params("phase", {"psf": "gaussian,0.5,20"})["psf"] == "gaussian,0.5,20"
    body = {"kind": "phase", "dataset": records.dataset.pk, "params": {"psf": "voigt,1"}}
    response = _post(cast.api(cast.owner), "/api/jobs", body)
    assert response.status_code == 400
    assert "MODEL,FWHM" in response.json()["detail"]["psf"]


def test_a_job_that_needs_data_is_refused_without_a_dataset(cast):
    response = _post(cast.api(cast.owner), "/api/jobs", {"kind": "pipeline"})
    assert response.status_code == 400
    assert "dataset" in response.json()["detail"]


def test_an_unknown_kind_is_refused(cast):
    response = _post(cast.api(cast.owner), "/api/jobs", {"kind": "magic", "group": cast.alpha.pk})
    assert response.status_code == 400 and "magic" in str(response.json()["detail"])


def test_refine_needs_a_finished_parent_and_records_the_lineage(cast, records):
    client = cast.api(cast.owner)
    body = {"kind": "refine", "parent": records.job.pk, "dataset": records.dataset.pk, "params": {"algorithm": "ER**5"}}
    response = _post(client, "/api/jobs", body)
    assert response.status_code == 201, response.content
    child = response.json()
    assert child["parent"] == records.job.pk and child["dataset"] == records.dataset.pk
    assert client.get(f"/api/jobs/{records.job.pk}").json()["children"] == [child["id"]]
    body["parent"] = child["id"]  # still queued: nothing to refine from
    assert _post(client, "/api/jobs", body).status_code == 400


def test_cancelling_a_queued_job_means_it_never_runs(cast, records):
    from workers.runner import execute

    job = _post(cast.api(cast.owner), "/api/jobs", {"kind": "phase", "dataset": records.dataset.pk}).json()
    response = _post(cast.api(cast.member), f"/api/jobs/{job['id']}/cancel")
    assert response.json()["status"] == "cancelled"
    # A message delivered anyway is dropped by the task.
    assert execute(job["id"], task_id=Job.objects.get(pk=job["id"]).celery_task_id) == "skipped"
    assert Job.objects.get(pk=job["id"]).status == "cancelled"


def test_rerun_copies_the_job_with_edited_parameters(cast, records):
    response = _post(cast.api(cast.member), f"/api/jobs/{records.job.pk}/rerun", {"params": {"cycles": 2}})
    assert response.status_code == 201
    new = response.json()
    assert new["id"] != records.job.pk and new["kind"] == "phase" and new["dataset"] == records.dataset.pk
    assert new["params"]["cycles"] == 2 and new["params"]["algorithm"] == "ER**10"
    assert new["owner"] == "member"


def test_job_detail_has_progress_fields_curves_and_a_result_link(cast, records):
    job = cast.api(cast.owner).get(f"/api/jobs/{records.job.pk}").json()
    for key in ("progress", "stage", "eta_s", "latest_values", "curves", "metrics", "log_tail", "attempts"):
        assert key in job
    assert job["result_url"] == f"/api/jobs/{records.job.pk}/result"
    assert "result.cxi" in job["files"] and "summary.json" in job["files"]


def test_result_download_is_the_result_file(cast, records):
    response = cast.api(cast.owner).get(f"/api/jobs/{records.job.pk}/result")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == records.job.result_path.read_bytes()
    assert "attachment" in response["Content-Disposition"]


def test_files_outside_the_job_folder_cannot_be_downloaded(cast, records):
    client = cast.api(cast.owner)
    for name in ("..%2F..%2Fdb.sqlite3", "nothing.txt", "%2Fetc%2Fpasswd"):
        assert client.get(f"/api/jobs/{records.job.pk}/files/{name}").status_code == 404


def test_schemas_and_openapi_docs_are_served(cast):
    client = cast.api(cast.owner)
    specs = client.get("/api/schemas").json()
    assert set(specs) == set(JOB_KINDS) and specs["phase"]["queue"] == "gpu" and specs["simulate"]["queue"] == "cpu"
    schema = cast.client(cast.owner).get("/api/openapi.json").json()
    assert "/api/jobs/{job_id}/cancel" in schema["paths"]
    assert cast.client(cast.owner).get("/api/docs").status_code == 200


def test_predict_without_a_model_uses_the_default_version(cast, records):
    from webapp.core.services import model_version_promote

    model_version_promote(user=cast.staff, version=records.model)
    job = _post(cast.api(cast.owner), "/api/jobs", {"kind": "predict", "dataset": records.dataset.pk}).json()
    assert job["model_version"] == records.model.pk


def test_a_retired_model_cannot_be_used_for_prediction(cast, records):
    from webapp.core.services import model_version_retire

    model_version_retire(user=cast.staff, version=records.model)
    body = {"kind": "predict", "dataset": records.dataset.pk, "model_version": records.model.pk}
    response = _post(cast.api(cast.owner), "/api/jobs", body)
    assert response.status_code == 400 and "retired" in str(response.json()["detail"])


def test_promoting_a_model_demotes_the_previous_default_of_the_same_dims(cast, records):
    from webapp.core.models import ModelVersion
    from webapp.core.services import model_version_promote

    other = ModelVersion.objects.create(name="other", version=1, dims=3, file=records.model.file, status="default")
    model_version_promote(user=cast.staff, version=records.model)
    other.refresh_from_db()
    assert other.status == "candidate"
    assert list(ModelVersion.objects.filter(status="default")) == [records.model]


def test_create_api_token_command_prints_a_working_key_once(cast, capsys):
    from django.core.management import call_command
    from django.test import Client

    from webapp.core.models import ApiToken

    call_command("create_api_token", "owner", "--read-only")
    raw = capsys.readouterr().out.strip()
    assert raw.startswith("cdi_")
    token = ApiToken.objects.get(user=cast.owner)
    assert token.read_only and raw not in token.key_hash
    assert Client(HTTP_AUTHORIZATION=f"Bearer {raw}").get("/api/jobs").status_code == 200


def test_cancelling_a_running_pipeline_also_flags_its_steps(cast, records):
    pipeline = Job.objects.create(group=cast.alpha, owner=cast.owner, kind="pipeline", status="running",
                                  dataset=records.dataset, celery_task_id="t")
    predict = Job.objects.create(group=cast.alpha, owner=cast.owner, kind="predict", status="succeeded",
                                 parent=pipeline, celery_task_id="")
    refine = Job.objects.create(group=cast.alpha, owner=cast.owner, kind="refine", status="running",
                                parent=predict, celery_task_id="")
    response = _post(cast.api(cast.member), f"/api/jobs/{pipeline.pk}/cancel")
    assert response.json()["cancel_requested"] is True and response.json()["status"] == "running"
    refine.refresh_from_db()
    predict.refresh_from_db()
    assert refine.cancel_requested and not predict.cancel_requested


def _simulated_set(cast, *, shape: int = 16, dims: int = 3):
    """A simulated-set dataset row of group alpha (as a simulate job registers it)."""
    from webapp.core.models import Dataset

    return Dataset.objects.create(
        group=cast.alpha, owner=cast.owner, name=f"simulated {shape}^{dims}", file="jobs/999/simulated.h5",
        sha256=f"{shape:064d}", format="hdf5", kind="simulated-set", shape=[shape] * dims,
        metadata={"n": 8, "dims": dims, "shape": [shape] * dims},
    )


def test_a_train_job_takes_a_simulated_set_of_its_recipes_shape(cast):
    dataset = _simulated_set(cast, shape=16)
    response = _post(cast.api(cast.member), "/api/jobs", {"kind": "train", "dataset": dataset.pk, "preset": "smoke-test"})
    assert response.status_code == 201, response.content
    assert response.json()["dataset"] == dataset.pk and response.json()["group"] == cast.alpha.pk
    tiny2d = _simulated_set(cast, shape=32, dims=2)
    assert tiny2d.dims == 2
    body = {"kind": "train", "dataset": tiny2d.pk, "params": {"recipe": "tiny2d"}}
    assert _post(cast.api(cast.member), "/api/jobs", body).status_code == 201


def test_a_train_job_refuses_a_simulated_set_of_another_shape(cast):
    dataset = _simulated_set(cast, shape=64)
    response = _post(cast.api(cast.owner), "/api/jobs", {"kind": "train", "dataset": dataset.pk, "preset": "smoke-test"})
    assert response.status_code == 400
    assert response.json()["detail"]["dataset"] == (
        "the simulated set holds 64×64×64 patterns but recipe 'tiny' trains a network on 16×16×16 patterns: "
        "simulate with that shape and dims, or choose another recipe"
    )
    assert not Job.objects.exists()


def test_a_train_job_refuses_measured_data_and_other_jobs_refuse_a_simulated_set(cast, records):
    response = _post(cast.api(cast.owner), "/api/jobs", {"kind": "train", "dataset": records.dataset.pk})
    assert response.status_code == 400 and "learns from a simulated set" in response.json()["detail"]["dataset"]
    dataset = _simulated_set(cast)
    for kind in ("phase", "predict", "pipeline", "finetune"):
        response = _post(cast.api(cast.owner), "/api/jobs", {"kind": kind, "dataset": dataset.pk})
        assert response.status_code == 400, kind
        assert "simulated training set" in response.json()["detail"]["dataset"], kind


def test_an_outsider_cannot_train_on_another_groups_simulated_set(cast):
    dataset = _simulated_set(cast)
    response = _post(cast.api(cast.outsider), "/api/jobs", {"kind": "train", "dataset": dataset.pk})
    assert response.status_code == 404 and not Job.objects.exists()


def test_the_schemas_say_which_dataset_a_train_job_takes(cast):
    data = cast.api(cast.member).get("/api/schemas").json()
    assert data["train"]["optional_dataset_kind"] == "simulated-set" and data["train"]["needs_dataset"] is False
    assert data["phase"]["optional_dataset_kind"] is None


def test_a_phase_support_is_computed_or_a_dataset_never_a_server_path():
    for ok in ("auto", "box", "24"):
        assert validate_params("phase", {"support": ok})["support"] == ok
    for path in ("/etc/passwd", "../media/datasets/2/x/result.cxi", "²", "0"):
        with pytest.raises(ValidationError) as info:
            validate_params("phase", {"support": path})
        assert "support_dataset" in info.value.message_dict["support"][0]
    assert validate_params("phase", {"support_dataset": ""})["support_dataset"] == 0


def _dataset(records, group, *, kind="diffraction-3d", name="support.npy"):
    from webapp.core.models import Dataset

    return Dataset.objects.create(group=group, owner=records.dataset.owner, name=name, file=records.dataset.file.name,
                                  size_bytes=1, sha256=f"{kind}{name}".ljust(64, "0"), format="npy", kind=kind,
                                  shape=[16, 16, 16])


def test_a_support_dataset_must_be_of_the_group_and_the_data_dimensionality(cast, records):
    client = cast.api(cast.owner)

    def submit(support_id):
        body = {"kind": "phase", "dataset": records.dataset.pk, "params": {"support_dataset": support_id}}
        return _post(client, "/api/jobs", body)

    other_group = _dataset(records, cast.beta)
    flat = _dataset(records, cast.alpha, kind="diffraction-2d")
    response = submit(other_group.pk)
    assert response.status_code == 400 and "another research group" in response.json()["detail"]["support_dataset"]
    assert "is 2D but the data are 3D" in submit(flat.pk).json()["detail"]["support_dataset"]
    assert "no dataset" in submit(10**6).json()["detail"]["support_dataset"]
    assert "another file than the data" in submit(records.dataset.pk).json()["detail"]["support_dataset"]
    mine = _dataset(records, cast.alpha, name="mine.npy")
    response = submit(mine.pk)
    assert response.status_code == 201, response.content
    assert response.json()["params"]["support_dataset"] == mine.pk


def test_a_malformed_or_endless_schedule_is_refused_at_submission():
    for kind, algorithm in (("phase", "HIO**1e9"), ("refine", "ER**-1"), ("pipeline", "(ER**20)**100000000")):
        with pytest.raises(ValidationError) as info:
            validate_params(kind, {"algorithm": algorithm})
        assert algorithm in info.value.message_dict["algorithm"][0]
    assert validate_params("phase", {"algorithm": "3*(20*ER+180*HIO)+20*ER", "cycles": 1})["cycles"] == 1


def test_a_support_dataset_deleted_after_submission_fails_the_job_with_the_reason(cast, records):
    from workers.runner import execute

    support = _dataset(records, cast.alpha, name="gone.npy")
    body = {"kind": "phase", "dataset": records.dataset.pk, "params": {"support_dataset": support.pk, "cycles": 1}}
    job = _post(cast.api(cast.owner), "/api/jobs", body).json()
    support_id = support.pk
    support.delete()
    assert execute(job["id"], task_id=Job.objects.get(pk=job["id"]).celery_task_id) == "failed"
    failed = Job.objects.get(pk=job["id"])
    assert f"support dataset #{support_id} is gone" in failed.error_message


def test_predicting_without_any_model_of_the_datas_dimensionality_is_refused_at_submission(cast, records,
                                                                                          monkeypatch, tmp_path):
    from reconstruction.nn import workflow

    monkeypatch.setattr(workflow, "MODELS_DIR", tmp_path)  # no shipped model file at all
    body = {"kind": "pipeline", "dataset": records.dataset.pk}
    response = _post(cast.api(cast.owner), "/api/jobs", body)
    assert response.status_code == 400
    assert "there is no 3D model to predict with" in response.json()["detail"]["model_version"]
    from webapp.core.models import ModelVersion

    ModelVersion.objects.filter(pk=records.model.pk).update(status="default")  # a registered default will do
    assert _post(cast.api(cast.owner), "/api/jobs", body).status_code == 201


def test_the_phase_forms_shrinkwrap_threshold_default_is_the_engines():
    from reconstruction.phasing.support import ShrinkWrap

    assert validate_params("phase", {})["shrinkwrap_threshold"] == ShrinkWrap().threshold
    for kind, presets in PRESETS.items():  # every preset is a valid set of parameters
        for name, values in presets.items():
            assert validate_params(kind, values), (kind, name)
