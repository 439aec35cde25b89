"""Dataset uploads: streamed to disk with a size limit, hashed, validated by the library,
de-duplicated per group; a refused file leaves no file and no row."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.conftest import REAL_DATA, small_pattern
from webapp.core.models import Dataset

workflow = pytest.importorskip("reconstruction.io.workflow", reason="io's inspect_file is not there yet")


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _upload(client, name: str, content: bytes, **fields):
    return client.post("/api/datasets", {"file": SimpleUploadedFile(name, content), **fields})


def _stored_files(media_root: Path) -> list[Path]:
    return [p for p in media_root.rglob("*") if p.is_file()]


def test_uploading_a_pattern_stores_it_hashed_with_the_librarys_metadata(cast, media_root):
    content = _npy_bytes(small_pattern(16))
    response = _upload(cast.api(cast.owner), "pattern.npy", content)
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["sha256"] == hashlib.sha256(content).hexdigest() and data["size_bytes"] == len(content)
    assert data["kind"] == "diffraction-3d" and data["shape"] == [16, 16, 16] and data["group"] == cast.alpha.pk
    dataset = Dataset.objects.get(pk=data["id"])
    assert dataset.path.read_bytes() == content
    assert dataset.path.is_relative_to(media_root / "datasets" / str(cast.alpha.pk))
    assert not list((media_root / "uploads-tmp").iterdir())  # moved, not copied


def test_uploading_the_same_file_twice_in_a_group_returns_the_existing_dataset(cast, media_root):
    content = _npy_bytes(small_pattern(16))
    first = _upload(cast.api(cast.owner), "a.npy", content).json()
    before = _stored_files(media_root)
    response = _upload(cast.api(cast.member), "b.npy", content)
    assert response.status_code == 200
    assert response.json()["id"] == first["id"] and response.json()["duplicate"] is True
    assert "already dataset" in response.json()["message"]
    assert _stored_files(media_root) == before and Dataset.objects.count() == 1


BAD_FILES = {
    "garbage.npy": b"this is not numpy at all",
    "empty.h5": b"",
    "truncated.cxi": b"\x89HDF\r\n\x1a\n" + b"\x00" * 40,
    "text.edf": b"hello world\n" * 10,
    "vector.npy": _npy_bytes(np.arange(5.0)),
    "pickle.npy": b"",  # filled below: an object array that would need pickle
    "four_d.npy": _npy_bytes(np.zeros((2, 3, 4, 5), np.float32)),
    "negative.npy": _npy_bytes(-np.ones((8, 8, 8), np.float32)),
    "archive.npz": b"PK\x03\x04" + b"\x00" * 30,
}

_pickled = io.BytesIO()
np.save(_pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
BAD_FILES["pickle.npy"] = _pickled.getvalue()


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_a_bad_file_gets_400_with_the_librarys_message_and_leaves_nothing(cast, media_root, tmp_path, name):
    from reconstruction.errors import ReconstructionError

    content = BAD_FILES[name]
    probe = tmp_path / name
    probe.write_bytes(content)
    before = _stored_files(media_root)
    with pytest.raises(ReconstructionError) as refused:
        workflow.inspect_file(str(probe))
    response = _upload(cast.api(cast.owner), name, content)
    assert response.status_code == 400, response.content
    detail = response.json()["detail"]
    assert detail == str(refused.value).replace(str(probe), name)
    assert str(media_root) not in detail  # the server's paths are not shown
    assert Dataset.objects.count() == 0
    assert _stored_files(media_root) == before


def test_an_upload_over_the_limit_is_refused_with_413_while_streaming(cast, media_root, settings):
    settings.CDI_UPLOAD_LIMIT_BYTES = 1000
    before = _stored_files(media_root)
    response = _upload(cast.api(cast.owner), "big.npy", _npy_bytes(np.zeros(2000, np.float32)))
    assert response.status_code == 413
    assert "upload limit is 1,000 bytes" in response.json()["detail"]
    assert Dataset.objects.count() == 0 and _stored_files(media_root) == before


def test_an_upload_declaring_a_huge_size_is_refused_before_reading_it(cast, settings):
    settings.CDI_UPLOAD_LIMIT_BYTES = 10
    response = _upload(cast.api(cast.owner), "big.npy", b"\x00" * (2 * 1024**2))
    assert response.status_code == 413 and "upload limit" in response.json()["detail"]


def test_a_read_only_token_cannot_upload(cast):
    response = _upload(cast.api(cast.owner, read_only=True), "p.npy", _npy_bytes(small_pattern(8)))
    assert response.status_code == 403 and Dataset.objects.count() == 0


def test_a_user_in_several_groups_must_name_the_group(cast):
    cast.beta.members.add(cast.owner)
    response = _upload(cast.api(cast.owner), "p.npy", _npy_bytes(small_pattern(8)))
    assert response.status_code == 400 and "group" in str(response.json()["detail"])
    response = _upload(cast.api(cast.owner), "p.npy", _npy_bytes(small_pattern(8)), group=cast.beta.pk)
    assert response.status_code == 201 and response.json()["group"] == cast.beta.pk


def test_uploading_into_someone_elses_group_gives_404(cast):
    response = _upload(cast.api(cast.outsider), "p.npy", _npy_bytes(small_pattern(8)), group=cast.alpha.pk)
    assert response.status_code == 404


@pytest.mark.parametrize("name", ["aps34idc_Au_S0054_rocking_scan.cxi", "esrf_id10_logo5mu_20sec.edf"])
def test_real_beamline_files_are_accepted(cast, name):
    path = REAL_DATA / name
    if not path.exists():
        pytest.skip("real data not present")
    response = _upload(cast.api(cast.owner), name, path.read_bytes())
    assert response.status_code == 201, response.content
    assert response.json()["kind"] in ("diffraction-3d", "diffraction-2d")
