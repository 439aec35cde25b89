"""A simulate job's training set becomes a dataset of its group, and a train job learns from it
(real Redis, a real Celery worker, the real library; the tiny recipe trains in seconds)."""

from __future__ import annotations

import pytest

from tests.conftest import wait_for
from tests.workers.test_worker_integration import _finished, _submit, needs
from webapp.core.models import Dataset, ModelVersion

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@needs("reconstruction.simulate.workflow", "reconstruction.nn.workflow")
def test_a_simulated_set_is_a_group_dataset_that_a_train_job_learns_from(cast, celery_worker):
    from reconstruction.nn.checkpoint import read_checkpoint

    client = cast.api(cast.owner)
    # 1. simulate the tiny recipe's input (16^3, 3D): the set is registered as a dataset.
    job = _submit(
        client,
        kind="simulate",
        group=cast.alpha.pk,
        params={"n": 8, "shape": 16, "dims": 3, "seed": 7},
    )
    done = wait_for(
        lambda: _finished(job["id"]), timeout_s=120, interval_s=0.5, what="the simulate job"
    )
    assert done.status == "succeeded", f"{done.error_message}\n{done.log}"
    (dataset,) = Dataset.objects.filter(produced_by_job=done)
    assert (
        dataset.group == cast.alpha
        and dataset.owner == cast.owner
        and dataset.kind == "simulated-set"
    )
    assert (
        dataset.path == done.result_dir / "simulated.h5"
        and dataset.shape == [16, 16, 16]
        and dataset.dims == 3
    )
    assert (
        dataset.metadata["n"] == 8
        and dataset.metadata["seed"] == 7
        and dataset.metadata["recipe"]["shape"] == 16
    )
    assert done.summary["dataset"]["id"] == dataset.pk
    # 2. members see it in the API and on the dashboard; outsiders get 404.
    listed = {d["id"]: d for d in cast.api(cast.member).get("/api/datasets").json()}
    assert (
        listed[dataset.pk]["kind"] == "simulated-set"
        and listed[dataset.pk]["produced_by_job"] == done.pk
    )
    assert dataset.name in cast.client(cast.member).get("/").content.decode()
    assert cast.api(cast.outsider).get(f"/api/datasets/{dataset.pk}").status_code == 404
    assert dataset.pk not in {d["id"] for d in cast.api(cast.outsider).get("/api/datasets").json()}
    # 3. a train job with that dataset learns from the stored set.
    train = _submit(
        client, kind="train", dataset=dataset.pk, preset="smoke-test", params={"epochs": 1}
    )
    assert train["group"] == cast.alpha.pk and train["dataset"] == dataset.pk
    trained = wait_for(
        lambda: _finished(train["id"]), timeout_s=180, interval_s=0.5, what="the train job"
    )
    assert trained.status == "succeeded", f"{trained.error_message}\n{trained.log}"
    assert trained.summary["training_dataset"]["id"] == dataset.pk
    (model,) = ModelVersion.objects.filter(trained_by_job=trained)
    training_data = read_checkpoint(model.file)["recipe"]["training_data"]
    assert (
        training_data["sha256"] == dataset.sha256
        and training_data["n_used"] == 8
        and training_data["seed"] == 7
    )


@needs("reconstruction.simulate.workflow")
def test_registering_a_simulated_set_twice_keeps_one_dataset(cast):
    from reconstruction.simulate.workflow import simulate_dataset
    from webapp.core.models import Job
    from webapp.core.services import dataset_register_simulated

    params = {"n": 2, "shape": 16, "dims": 3, "seed": 3}
    job = Job.objects.create(
        group=cast.alpha, owner=cast.member, kind="simulate", params=params, status="running"
    )
    job.result_dir.mkdir(parents=True, exist_ok=True)
    path = job.result_dir / "simulated.h5"
    summary = simulate_dataset(str(path), n=2, shape=16, dims=3, seed=3)
    first = dataset_register_simulated(job=job, path=path, summary=summary)
    again = dataset_register_simulated(
        job=job, path=path, summary=summary
    )  # the task delivered twice
    assert first.pk == again.pk and Dataset.objects.count() == 1
    assert first.file.name == f"jobs/{job.pk}/simulated.h5" and first.owner == cast.member
    assert first.size_bytes == path.stat().st_size and len(first.sha256) == 64
    # a second job that wrote the very same bytes does not make a twin dataset
    twin = Job.objects.create(
        group=cast.alpha, owner=cast.member, kind="simulate", params=params, status="running"
    )
    twin.result_dir.mkdir(parents=True, exist_ok=True)
    (twin.result_dir / "simulated.h5").write_bytes(path.read_bytes())
    assert (
        dataset_register_simulated(
            job=twin, path=twin.result_dir / "simulated.h5", summary=summary
        ).pk
        == first.pk
    )
    assert Dataset.objects.count() == 1


@needs("reconstruction.simulate.workflow")
def test_the_pages_of_a_simulated_set_answer_without_a_server_error(cast):
    from django.urls import reverse

    from reconstruction.simulate.workflow import simulate_dataset
    from webapp.core.models import Job
    from webapp.core.services import dataset_register_simulated

    job = Job.objects.create(group=cast.alpha, owner=cast.owner, kind="simulate", params={}, status="running")
    job.result_dir.mkdir(parents=True, exist_ok=True)
    path = job.result_dir / "simulated.h5"
    dataset = dataset_register_simulated(job=job, path=path, summary=simulate_dataset(str(path), n=1, shape=16))
    client = cast.client(cast.member)
    page = client.get(reverse("viewer:dataset", args=[dataset.pk]))
    assert page.status_code == 200 and dataset.name in page.content.decode()
    html = page.content.decode()
    assert "?kind=train&dataset=" in html and "?kind=pipeline&dataset=" not in html
    figures = client.get(reverse("viewer:dataset_figures", args=[dataset.pk]))
    assert figures.status_code == 200, figures.content[:500]
    bundle = figures.json()
    assert bundle["diffraction"]["ndim"] == 3 and bundle["object"]["isosurface"]["data"]
    train_form = client.get(reverse("viewer:job_new") + "?kind=train").content.decode()
    # the dataset's option in the dataset menu (a bare value="N" may be any menu's option)
    option = f'<option value="{dataset.pk}">#{dataset.pk} {dataset.name}'
    assert option in train_form and "none: simulate" in train_form
    predict_form = client.get(reverse("viewer:job_new") + "?kind=predict").content.decode()
    assert option not in predict_form
    assert cast.client(cast.outsider).get(reverse("viewer:dataset", args=[dataset.pk])).status_code == 404
