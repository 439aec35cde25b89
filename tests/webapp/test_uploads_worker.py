"""Upload validation in a real Celery worker (queue ``io``): the same 201 / 400 answers as the
in-process check, and a clear 503 leaving no file and no row when no worker answers in time."""

from __future__ import annotations

import pytest

from tests.conftest import free_port, point_celery_at, small_pattern
from tests.webapp.test_uploads import BAD_FILES, _npy_bytes, _stored_files, _upload
from webapp.core.models import Dataset

workflow = pytest.importorskip(
    "reconstruction.io.workflow", reason="io's inspect_file is not there yet"
)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def in_worker(settings):
    """Validate uploads in the worker with a generous timeout (the test machine is slow)."""
    settings.CDI_VALIDATE_IN_WORKER = True
    settings.CDI_VALIDATION_TIMEOUT_S = 60.0
    return settings


def test_a_good_upload_checked_by_the_worker_gives_201_and_the_librarys_metadata(
    cast, celery_worker, in_worker, media_root, tmp_path
):
    content = _npy_bytes(small_pattern(16))
    probe = tmp_path / "pattern.npy"
    probe.write_bytes(content)
    expected = workflow.inspect_file(str(probe))
    response = _upload(cast.api(cast.owner), "pattern.npy", content)
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["kind"] == "diffraction-3d" and data["shape"] == [16, 16, 16]
    assert data["metadata"]["path"] == "pattern.npy" and str(media_root) not in str(
        data["metadata"]
    )
    same = {k: v for k, v in expected.items() if k not in ("path", "seconds")}
    assert {k: data["metadata"][k] for k in same} == same  # the library's own metadata, unchanged
    assert "cdi.inspect_upload" in celery_worker.log()  # it really went through the worker
    assert "address space capped at 16384 MiB" in celery_worker.log()  # CDI_WORKER_MEMORY_LIMIT_MB
    again = _upload(cast.api(cast.member), "copy.npy", content)
    assert (
        again.status_code == 200
        and again.json()["duplicate"] is True
        and Dataset.objects.count() == 1
    )


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_a_bad_file_checked_by_the_worker_gets_400_with_the_librarys_message(
    cast, celery_worker, in_worker, media_root, tmp_path, name
):
    from reconstruction.errors import ReconstructionError

    content = BAD_FILES[name]
    probe = tmp_path / name
    probe.write_bytes(content)
    with pytest.raises(ReconstructionError) as refused:
        workflow.inspect_file(str(probe))
    before = _stored_files(media_root)
    response = _upload(cast.api(cast.owner), name, content)
    assert response.status_code == 400, response.content
    detail = response.json()["detail"]
    assert detail == str(refused.value).replace(str(probe), name)
    assert str(media_root) not in detail
    assert Dataset.objects.count() == 0 and _stored_files(media_root) == before


@pytest.fixture
def unconsumed_queue(redis_server):
    """Publish to a Redis database no worker reads (as if no worker listened on ``io``)."""
    point_celery_at(redis_server.rsplit("/", 1)[0] + "/7")
    yield
    point_celery_at(redis_server)


def test_no_worker_answering_in_time_gives_503_and_keeps_nothing(
    cast, unconsumed_queue, in_worker, media_root
):
    in_worker.CDI_VALIDATION_TIMEOUT_S = 1.0
    before = _stored_files(media_root)
    response = _upload(cast.api(cast.owner), "pattern.npy", _npy_bytes(small_pattern(8)))
    assert response.status_code == 503, response.content
    detail = response.json()["detail"]
    assert "no worker checked the file within 1 s" in detail and "try again" in detail
    assert str(media_root) not in detail
    assert Dataset.objects.count() == 0 and _stored_files(media_root) == before


def test_a_wait_longer_than_the_redis_connect_timeout_ends_as_no_answer_not_unreachable(
    cast, unconsumed_queue, in_worker, media_root
):
    """The reply client's read timeout follows the validation timeout (redis-py used to apply its
    5 s connect timeout to the blocking read, so any file checked in over 5 s gave 503)."""
    in_worker.CDI_VALIDATION_TIMEOUT_S = 6.5
    response = _upload(cast.api(cast.owner), "pattern.npy", _npy_bytes(small_pattern(8)))
    assert response.status_code == 503, response.content
    assert "no worker checked the file within 6.5 s" in response.json()["detail"]


def test_an_unreachable_queue_gives_503_and_keeps_nothing(cast, in_worker, media_root):
    from workers.app import app

    old = app.conf.broker_url
    point_celery_at(f"redis://127.0.0.1:{free_port()}/0")
    try:
        before = _stored_files(media_root)
        response = _upload(cast.api(cast.owner), "pattern.npy", _npy_bytes(small_pattern(8)))
    finally:
        point_celery_at(old)
    assert response.status_code == 503, response.content
    assert "unreachable" in response.json()["detail"] and "try again" in response.json()["detail"]
    assert Dataset.objects.count() == 0 and _stored_files(media_root) == before


def test_the_upload_page_shows_the_no_answer_message(cast, unconsumed_queue, in_worker, media_root):
    import io

    from django.urls import reverse

    in_worker.CDI_VALIDATION_TIMEOUT_S = 0.5
    upload = io.BytesIO(_npy_bytes(small_pattern(8)))
    upload.name = "pattern.npy"
    before = _stored_files(media_root)
    response = cast.client(cast.member).post(
        reverse("viewer:upload"), {"file": upload}, HTTP_ACCEPT="application/json"
    )
    assert response.status_code < 500 and "try again" in response.content.decode()
    assert Dataset.objects.count() == 0 and _stored_files(media_root) == before
