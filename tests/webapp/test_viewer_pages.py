"""The viewer's pages and JSON endpoints through Django's test client, with the shared cast."""

from __future__ import annotations

import gzip
import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from django.urls import reverse

from tests.conftest import aps_like_metadata, write_job_data
from webapp.core.models import Dataset, Job


def body_json(response) -> dict:
    """JSON of a response that may be gzip-encoded."""
    content = response.content
    if response.get("Content-Encoding") == "gzip":
        content = gzip.decompress(content)
    return json.loads(content)


def page_urls(records) -> list[str]:
    """Every page (HTML) of one group's records."""
    job = records.job
    return [
        reverse("viewer:dashboard"),
        reverse("viewer:upload"),
        reverse("viewer:dataset", args=[records.dataset.pk]),
        reverse("viewer:job", args=[job.pk]),
        reverse("viewer:job_new") + f"?kind=phase&dataset={records.dataset.pk}",
        reverse("viewer:job_new") + f"?rerun={job.pk}",
        reverse("viewer:compare") + f"?jobs={job.pk}",
        reverse("viewer:models"),
    ]


def private_urls(records) -> list[str]:
    """Pages and endpoints that show one group's rows."""
    job = records.job
    return [
        reverse("viewer:dataset", args=[records.dataset.pk]),
        reverse("viewer:dataset_figures", args=[records.dataset.pk]),
        reverse("viewer:job", args=[job.pk]),
        reverse("viewer:job_status", args=[job.pk]),
        reverse("viewer:job_figures", args=[job.pk]),
        reverse("viewer:job_isosurface", args=[job.pk]),
        reverse("viewer:job_npz", args=[job.pk]),
        reverse("viewer:job_vtk", args=[job.pk]),
        reverse("viewer:job_new") + f"?rerun={job.pk}",
        reverse("viewer:compare") + f"?jobs={job.pk}",
    ]


def test_every_page_renders_for_a_group_member_without_loading_anything_from_the_internet(cast, records):
    client = cast.client(cast.member)
    for url in page_urls(records):
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), url
        if "<script" in html and "/jobs/" in url and "new" not in url:
            assert "/static/plotly/plotly-cdi.min.js" in html, url


def test_pages_send_anonymous_visitors_to_the_login_page(client, records):
    response = client.get(reverse("viewer:job", args=[records.job.pk]))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_login_page_renders(client, db):
    response = client.get("/accounts/login/")
    assert response.status_code == 200 and b"Sign in" in response.content


def test_outsider_gets_404_for_every_page_and_endpoint_of_another_group(cast, records):
    client = cast.client(cast.outsider)
    for url in private_urls(records):
        assert client.get(url).status_code == 404, url
    assert client.post(reverse("viewer:job_cancel", args=[records.job.pk])).status_code == 404


def test_dashboard_lists_only_the_users_groups_and_filters_by_kind(cast, records):
    own = cast.client(cast.member).get(reverse("viewer:jobs_json")).json()
    assert [r["id"] for r in own["jobs"]] == [records.job.pk]
    assert own["jobs"][0]["chi2"] == pytest.approx(0.01)
    assert cast.client(cast.outsider).get(reverse("viewer:jobs_json")).json()["jobs"] == []
    filtered = cast.client(cast.member).get(reverse("viewer:jobs_json") + "?kind=train").json()
    assert filtered["jobs"] == []
    by_text = cast.client(cast.member).get(reverse("viewer:jobs_json") + "?q=pattern").json()
    assert len(by_text["jobs"]) == 1


def test_numeric_query_values_that_are_not_plain_ids_are_ignored_or_refused(cast, records):
    client = cast.client(cast.member)
    for query in ("?group=²", "?q=%23²", "?group=99999999999999999999", "?q=99999999999999999999"):
        response = client.get(reverse("viewer:jobs_json") + query)
        assert response.status_code == 200, query
    assert len(client.get(reverse("viewer:jobs_json") + "?q=%23²").json()["jobs"]) == 0
    for ref in ("²", "99999999999999999999"):
        url = reverse("viewer:job_aligned", args=[records.job.pk]) + f"?ref={ref}"
        assert client.get(url).status_code in (400, 404), ref


def test_job_figures_carry_isosurface_slices_diffraction_and_error_curve(cast, records):
    response = cast.client(cast.member).get(reverse("viewer:job_figures", args=[records.job.pk]),
                                            HTTP_ACCEPT_ENCODING="gzip")  # fmt: skip
    assert response.status_code == 200 and response["Content-Encoding"] == "gzip"
    bundle = body_json(response)["result"]
    assert bundle["object"]["isosurface"]["data"][0]["type"] == "mesh3d"
    assert len(bundle["object"]["slices"]["data"]) == 6
    assert bundle["diffraction"]["calculated"]["shape"] == [16, 16, 16]
    assert bundle["errors"]["data"][0]["name"] == "χ²"
    again = cast.client(cast.member).get(reverse("viewer:job_figures", args=[records.job.pk]))  # cached, plain
    assert body_json(again)["result"]["object"]["origin"] == bundle["object"]["origin"]


def test_isosurface_endpoint_recomputes_at_the_requested_threshold(cast, records):
    client = cast.client(cast.member)
    url = reverse("viewer:job_isosurface", args=[records.job.pk])
    low = body_json(client.get(url + "?threshold=0.1"))
    high = body_json(client.get(url + "?threshold=0.9"))
    assert low["meta"]["threshold"] == 0.1 and high["meta"]["threshold"] == 0.9
    assert client.get(url + "?threshold=2").status_code == 400


def test_npz_download_holds_the_complex_object_and_its_support(cast, records):
    response = cast.client(cast.member).get(reverse("viewer:job_npz", args=[records.job.pk]))
    assert response.status_code == 200
    data = np.load(io.BytesIO(response.content))
    assert data["obj"].dtype == np.complex64 and data["obj"].shape == (16, 16, 16)
    assert data["support"].dtype == bool
    assert np.isnan(data["voxel_size_m"]).all() and "displacement_m" not in data  # an .npy pattern: no geometry


def test_vtk_download_without_geometry_is_on_the_data_grid_in_voxels(cast, records, tmp_path):
    from reconstruction.io.vtk import read_vtk

    (tmp_path / "a.vtk").write_bytes(cast.client(cast.member).get(reverse("viewer:job_vtk", args=[records.job.pk])).content)
    fields, spacing = read_vtk(tmp_path / "a.vtk")
    assert set(fields) == {"amplitude", "phase", "support"} and spacing == 1.0
    assert "data grid, voxels" in (tmp_path / "a.vtk").read_bytes()[:120].decode()


def test_npz_download_carries_the_voxel_size_and_the_displacement_where_the_data_give_them(cast, records):
    from reconstruction.io import Metadata
    from reconstruction.metrics import displacement_field

    meta = Metadata(wavelength_m=1.3776e-10, distance_m=0.5, x_pixel_size_m=55e-6, y_pixel_size_m=55e-6,
                    extra={"bragg_angle_deg": 17.16})  # fmt: skip
    write_job_data(records.job, meta)
    data = np.load(io.BytesIO(cast.client(cast.member).get(reverse("viewer:job_npz", args=[records.job.pk])).content))
    detector = 1.3776e-10 * 0.5 / (16 * 55e-6)
    assert np.isnan(data["voxel_size_m"][0]) and data["voxel_size_m"][1:] == pytest.approx([detector] * 2)
    g = 4 * np.pi * np.sin(np.radians(17.16)) / 1.3776e-10
    assert float(data["g_norm_per_m"]) == pytest.approx(g)
    u = data["displacement_m"]
    shown = data["support"] & (np.abs(data["obj"]) >= 0.1 * np.abs(data["obj"]).max())
    assert np.array_equal(np.isfinite(u), shown)
    np.testing.assert_allclose(u[shown], displacement_field(data["obj"], g, support=shown)[shown], rtol=1e-5)


def test_job_status_reports_progress_curves_and_log_tail(cast, records):
    status = cast.client(cast.member).get(reverse("viewer:job_status", args=[records.job.pk])).json()
    assert status["status"] == "succeeded" and status["finished"] and status["has_result"]
    assert status["curves"] == {"chi2": [1.0, 0.1, 0.01]}


def test_dataset_figures_show_log_slices_through_the_peak_and_a_3d_view(cast, records):
    bundle = body_json(cast.client(cast.member).get(reverse("viewer:dataset_figures", args=[records.dataset.pk])))
    assert bundle["kind"] == "diffraction"
    pattern = np.load(records.dataset.path)
    assert bundle["diffraction"]["index"] == list(np.unravel_index(int(np.argmax(pattern)), pattern.shape))
    assert bundle["volume3d"]["data"][0]["type"] == "mesh3d"


def test_refused_upload_shows_the_library_message_and_keeps_nothing(cast, records, media_root):
    pytest.importorskip("reconstruction.io.workflow", reason="the io workflow (inspect_file) is not there yet")
    upload = io.BytesIO(b"this is not diffraction data")
    upload.name = "notes.txt"
    before = Dataset.objects.count()
    response = cast.client(cast.member).post(reverse("viewer:upload"), {"file": upload}, HTTP_ACCEPT="application/json")
    assert response.status_code == 400
    assert response.json()["error"]
    assert Dataset.objects.count() == before


def test_upload_of_a_pattern_creates_a_dataset_and_returns_its_page(cast, records):
    pytest.importorskip("reconstruction.io.workflow", reason="the io workflow (inspect_file) is not there yet")
    buffer = io.BytesIO()
    np.save(buffer, np.random.default_rng(1).poisson(5.0, (16, 16, 16)).astype(np.float32))
    buffer.seek(0)
    buffer.name = "new_pattern.npy"
    response = cast.client(cast.member).post(reverse("viewer:upload"), {"file": buffer}, HTTP_ACCEPT="application/json")
    assert response.status_code == 200, response.content
    dataset = Dataset.objects.get(pk=response.json()["id"])
    assert dataset.group == cast.alpha
    assert response.json()["url"] == reverse("viewer:dataset", args=[dataset.pk])


def test_submit_form_lists_every_parameter_with_its_help(cast, records):
    html = cast.client(cast.member).get(reverse("viewer:job_new") + f"?kind=phase&dataset={records.dataset.pk}").content.decode()
    for name in ("algorithm", "cycles", "runs", "keep", "support", "seed"):
        assert f'name="{name}"' in html
    assert "independent random starts" in html
    assert "presets-data" in html


def test_the_pipeline_form_offers_the_seeded_presets_and_the_shrinkwrap_switch(cast, records):
    url = reverse("viewer:job_new") + f"?kind=pipeline&dataset={records.dataset.pk}"
    html = cast.client(cast.member).get(url).content.decode()
    assert 'name="shrinkwrap"' in html and "update the support by shrink-wrap" in html
    assert "thorough" in html and "ER**20,HIO**160,ER**20" in html


def test_the_refine_forms_shrinkwrap_switch_is_on_by_default_and_can_be_turned_off(cast, records):
    """Shrink-wrap is the refinement's default (a ticked box); an unticked box submits False."""
    url = reverse("viewer:job_new") + f"?kind=refine&parent={records.job.pk}"
    html = cast.client(cast.member).get(url).content.decode()
    assert re.search(r'<input type="checkbox" name="shrinkwrap"\s+checked>', html), html
    for ticked in (True, False):
        form = {"kind": "refine", "dataset": records.dataset.pk, "parent": records.job.pk, "algorithm": "ER**5",
                "support_threshold": "0.1"}
        response = cast.client(cast.member).post(reverse("viewer:job_new"), form | ({"shrinkwrap": "on"} if ticked else {}))
        assert response.status_code == 302, response.content.decode()[:2000]
        job = Job.objects.get(pk=int(response["Location"].rstrip("/").split("/")[-1]))
        assert job.kind == "refine" and job.params["shrinkwrap"] is ticked


def test_invalid_parameters_are_shown_next_to_their_field_and_nothing_is_queued(cast, records):
    before = Job.objects.count()
    response = cast.client(cast.member).post(
        reverse("viewer:job_new"), {"kind": "phase", "dataset": records.dataset.pk, "cycles": "0", "runs": "1",
                                    "keep": "1", "algorithm": "ER**5", "support": "auto", "seed": "0"})  # fmt: skip
    assert response.status_code == 400
    assert "must be ≥ 1" in response.content.decode()
    assert Job.objects.count() == before


def test_submitting_a_job_redirects_to_its_page(cast, records):
    response = cast.client(cast.member).post(
        reverse("viewer:job_new"), {"kind": "phase", "dataset": records.dataset.pk, "cycles": "1", "runs": "1",
                                    "keep": "1", "algorithm": "ER**5", "support": "auto", "seed": "0"})  # fmt: skip
    assert response.status_code == 302
    job = Job.objects.exclude(pk=records.job.pk).get()
    assert response["Location"] == reverse("viewer:job", args=[job.pk])
    assert job.params["cycles"] == 1 and job.dataset == records.dataset and job.owner == cast.member


def test_rerun_with_edited_parameters_creates_a_new_job(cast, records):
    response = cast.client(cast.owner).post(
        reverse("viewer:job_new"), {"rerun": records.job.pk, "algorithm": "ER**7", "cycles": "2", "runs": "1",
                                    "keep": "1", "support": "auto", "seed": "3"})  # fmt: skip
    assert response.status_code == 302
    job = Job.objects.exclude(pk=records.job.pk).get()
    assert job.params["algorithm"] == "ER**7" and job.params["seed"] == 3 and job.dataset == records.dataset


def test_cancel_stops_a_queued_job(cast, records):
    job = Job.objects.create(group=cast.alpha, owner=cast.owner, kind="phase", dataset=records.dataset)
    response = cast.client(cast.member).post(reverse("viewer:job_cancel", args=[job.pk]), HTTP_ACCEPT="application/json")
    assert response.json()["status"] == "cancelled"


def test_only_staff_promote_model_versions(cast, records):
    url = reverse("viewer:model_action", args=[records.model.pk, "promote"])
    assert cast.client(cast.member).post(url).status_code == 403
    response = cast.client(cast.staff).post(url, HTTP_ACCEPT="application/json")
    assert response.json()["status"] == "default"
    assert b"Retire" in cast.client(cast.staff).get(reverse("viewer:models")).content


def test_training_job_figures_show_train_and_validation_loss(cast, records):
    job = Job.objects.create(group=cast.alpha, owner=cast.owner, kind="train", status="succeeded",
                             summary={"history": {"train_loss": [0.9, 0.5, 0.3], "val_loss": [1.0, 0.6, 0.4],
                                                  "lr": [3e-4] * 3}})  # fmt: skip
    bundle = cast.client(cast.member).get(reverse("viewer:job_figures", args=[job.pk])).json()
    assert bundle["result"] is None
    assert [t["name"] for t in bundle["loss"]["data"]] == ["train loss", "val loss"]


REAL_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "real"


def real_dataset(cast, media_root, name: str, kind: str) -> Dataset:
    """A dataset of group alpha holding a copy of one real file (skips when the data is absent)."""
    source = REAL_DATA / name
    if not source.exists():
        pytest.skip(f"real data {name} not available")
    folder = media_root / "datasets" / str(cast.alpha.pk) / "real"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, folder / name)
    return Dataset.objects.create(group=cast.alpha, owner=cast.owner, name=name, file=f"datasets/{cast.alpha.pk}/real/{name}",
                                  size_bytes=source.stat().st_size, sha256=name, kind=kind)  # fmt: skip


def test_a_real_pynx_object_file_gets_an_isosurface_and_slices(cast, media_root):
    dataset = real_dataset(cast, media_root, "bcdi_S11_Pt_pynx_modes_252_420_392.h5", "object")
    bundle = body_json(cast.client(cast.member).get(reverse("viewer:dataset_figures", args=[dataset.pk])))
    assert bundle["object"]["isosurface"]["meta"]["n_vertices"] > 1000
    assert bundle["object"]["shape"] == [86, 118, 122]


def test_a_file_that_cannot_be_drawn_says_why_without_server_paths(cast, media_root):
    dataset = real_dataset(cast, media_root, "PETRAIII_P25_Near_Field_Ptycho.cxi", "other")
    response = cast.client(cast.member).get(reverse("viewer:dataset_figures", args=[dataset.pk]))
    assert response.status_code == 422
    message = response.json()["error"]
    assert "stack of 2D frames" in message and str(media_root) not in message


def test_cached_figures_follow_a_rewritten_result_file(cast, records):
    from tests.conftest import write_result_file

    client = cast.client(cast.member)
    url = reverse("viewer:job_figures", args=[records.job.pk])
    assert body_json(client.get(url))["result"]["object"]["shape"] == [16, 16, 16]
    write_result_file(records.job.result_path, n=24)
    assert body_json(client.get(url))["result"]["object"]["shape"] == [24, 24, 24]


def test_the_cxi_download_button_of_the_job_page_works_with_the_browser_session(cast, records):
    client = cast.client(cast.member)
    html = client.get(reverse("viewer:job", args=[records.job.pk])).content.decode()
    href = re.search(r'id="download-cxi" href="([^"]+)"', html).group(1)
    response = client.get(href)
    assert response.status_code == 200
    assert b"".join(response.streaming_content)[:8] == b"\x89HDF\r\n\x1a\n"


def test_result_positions_are_in_voxels_with_a_note_when_the_data_give_no_voxel_size(cast, records):
    bundle = body_json(cast.client(cast.member).get(reverse("viewer:job_figures", args=[records.job.pk])))["result"]
    units = bundle["object"]["units"]
    assert units["unit"] == "voxel" and units["voxel_size_nm"] is None
    assert "voxel size is not in the data's metadata" in units["note"]
    assert bundle["object"]["isosurface"]["layout"]["scene"]["xaxis"]["title"]["text"] == "x (voxel)"


def test_result_positions_are_in_nm_from_the_prepared_data_of_the_job(cast, records):
    from reconstruction.io import Metadata

    meta = Metadata(wavelength_m=1e-10, distance_m=2.0, x_pixel_size_m=55e-6, y_pixel_size_m=55e-6,
                    rocking_angles_deg=np.linspace(10, 10.15, 16), rocking_axis="theta",
                    extra={"bragg_angle_deg": 15.0})  # fmt: skip
    write_job_data(records.job, meta)
    bundle = body_json(cast.client(cast.member).get(reverse("viewer:job_figures", args=[records.job.pk])))["result"]
    units = bundle["object"]["units"]
    # detector axes: 1e-10 * 2 / (16 * 55e-6) = 227.3 nm; rocking axis: 1e-10 / (2 * 16 * radians(0.01) * sin 15°)
    rocking_nm = 1e-10 / (2 * 16 * np.radians(0.01) * np.sin(np.radians(15.0))) * 1e9
    assert units["unit"] == "nm"
    assert units["voxel_size_nm"] == pytest.approx([rocking_nm, 227.27, 227.27], rel=1e-3)
    slices = bundle["object"]["slices"]
    assert slices["layout"]["xaxis"]["title"]["text"] == "x (nm)"
    assert slices["data"][0]["dx"] == pytest.approx(227.27, rel=1e-3)
    iso = bundle["object"]["isosurface"]
    assert iso["layout"]["scene"]["zaxis"]["title"]["text"] == "z (nm)" and iso["meta"]["unit"] == "nm"


def test_the_displacement_view_needs_the_bragg_angle_and_follows_the_page_query(cast, records):
    from reconstruction.io import Metadata

    client = cast.client(cast.member)
    figures_url = reverse("viewer:job_figures", args=[records.job.pk])
    without = body_json(client.get(figures_url + "?field=u"))["result"]["object"]
    assert without["displacement"]["available"] is False and without["field"]["name"] == "phase"
    assert "Bragg angle" in without["displacement"]["note"]

    meta = Metadata(wavelength_m=1.3776e-10, extra={"bragg_angle_deg": 17.0})
    write_job_data(records.job, meta)
    phase = body_json(client.get(figures_url))["result"]["object"]
    assert phase["displacement"]["available"] and not phase["displacement"]["shown"]
    assert phase["displacement"]["d_spacing_nm"] == pytest.approx(0.13776 / (2 * np.sin(np.radians(17.0))))
    shown = body_json(client.get(figures_url + "?ramp=1&field=u"))["result"]["object"]
    assert shown["field"]["name"] == "displacement" and shown["displacement"]["shown"]
    assert shown["phase_ramp"] is not None  # both switches at once
    assert shown["isosurface"]["data"][0]["colorbar"]["title"]["text"] == "u along G (pm)"
    iso = body_json(client.get(reverse("viewer:job_isosurface", args=[records.job.pk]) + "?threshold=0.4&field=u"))
    assert iso["data"][0]["colorbar"]["title"]["text"] == "u along G (pm)"
    html = client.get(reverse("viewer:job", args=[records.job.pk]) + "?ramp=1&field=u").content.decode()
    assert 'id="displacement-toggle" checked' in html and 'id="ramp-toggle" checked' in html
    assert f"{figures_url}?ramp=1&amp;field=u" in html  # the data-figures-url attribute
    assert f"{figures_url}?ramp\\u003D1\\u0026field\\u003Du" in html  # the prefetch, escaped for a JS string


def test_compare_aligns_a_shifted_twin_onto_the_first_result_and_says_so(cast, records, media_root):
    from reconstruction.io import read_result, write_result
    from reconstruction.metrics import fourier_shift, twin_of

    record = read_result(str(records.job.result_path))
    x = np.indices(record.obj.shape)[2] - 8
    record.obj = record.obj * np.exp(0.8j * np.cos(x / 3.0)) * (1 + 0.5 * (x > 1))  # not its own twin
    write_result(str(records.job.result_path), record)
    record.obj = (fourier_shift(twin_of(record.obj), (2, -1, 1)) * np.exp(0.9j)).astype(np.complex64)
    record.support = np.roll(twin_of(record.support.astype(float)).real > 0.5, (2, -1, 1), axis=(0, 1, 2))
    other = Job.objects.create(group=cast.alpha, owner=cast.owner, kind="refine", status="succeeded",
                               dataset=records.dataset, parent=records.job, params={}, progress=1.0)  # fmt: skip
    other.result_dir.mkdir(parents=True, exist_ok=True)
    write_result(str(other.result_path), record)
    client = cast.client(cast.member)
    page = client.get(reverse("viewer:compare") + f"?jobs={records.job.pk},{other.pk}").content.decode()
    aligned_url = reverse("viewer:job_aligned", args=[other.pk]) + f"?ref={records.job.pk}"
    assert aligned_url.split("?")[0] in page
    body = body_json(client.get(aligned_url))
    how = body["result"]["alignment"]
    assert how["aligned"] and how["twin"] and how["rel_error"] < 1e-3
    assert how["shift_px"] == pytest.approx([2, -1, 1], abs=1e-6)  # the twin of a shifted twin is shifted back
    assert "twin flipped" in how["text"] and "shift (+1.00, -1.00, +2.00) voxel (x, y, z)" in how["text"]
    assert body["result"]["object"]["origin"] == body_json(
        client.get(reverse("viewer:job_figures", args=[records.job.pk])))["result"]["object"]["origin"]
    assert client.get(reverse("viewer:job_aligned", args=[other.pk]) + "?ref=x").status_code == 400
    assert cast.client(cast.outsider).get(aligned_url).status_code == 404


def test_the_lab_frame_needs_the_diffractometer_geometry_and_follows_the_page_query(cast, records):
    from reconstruction.io import read_result

    client = cast.client(cast.member)
    figures_url = reverse("viewer:job_figures", args=[records.job.pk])
    without = body_json(client.get(figures_url + "?frame=lab"))["result"]["object"]
    assert without["frame"]["available"] is False and without["frame"]["shown"] == "data"

    record = read_result(str(records.job.result_path))
    n = record.obj.shape[0]
    meta = aps_like_metadata(n)
    write_job_data(records.job, meta)
    data_grid = body_json(client.get(figures_url))["result"]["object"]
    assert data_grid["frame"]["available"] and data_grid["frame"]["shown"] == "data"
    assert "APS 34-ID-C" in data_grid["frame"]["note"] and "from orthogonal" in data_grid["frame"]["note"]
    lab = body_json(client.get(figures_url + "?frame=lab&field=u"))["result"]
    obj = lab["object"]
    assert obj["frame"]["shown"] == "lab" and "z along the beam" in obj["frame"]["note"]
    sizes = obj["units"]["voxel_size_nm"]
    assert sizes[0] == sizes[1] == sizes[2] and "orthogonal lab grid" in obj["units"]["note"]
    assert obj["field"]["name"] == "displacement"  # the switches combine
    assert lab["diffraction"]["shape"] == list(record.obj.shape)  # the data keep their own grid
    iso = body_json(client.get(reverse("viewer:job_isosurface", args=[records.job.pk]) + "?threshold=0.4&frame=lab"))
    assert iso["data"][0]["type"] == "mesh3d"
    html = client.get(reverse("viewer:job", args=[records.job.pk]) + "?frame=lab").content.decode()
    assert 'id="lab-toggle" checked' in html and f"{figures_url}?frame=lab" in html
    npz = np.load(io.BytesIO(client.get(reverse("viewer:job_npz", args=[records.job.pk])).content))
    assert npz["lab_obj"].shape == record.obj.shape and float(npz["lab_voxel_size_m"]) == pytest.approx(sizes[0] * 1e-9)
    assert npz["lab_basis_m"].shape == (3, 3) and npz["lab_support"].dtype == bool
    # the strain along G, on the data's grid and on the lab grid, names itself and its unit
    assert data_grid["strain"]["available"] and not data_grid["strain"]["shown"]
    for query in ("?field=strain", "?field=strain&frame=lab"):
        obj = body_json(client.get(figures_url + query))["result"]["object"]
        assert obj["field"] == {"name": "strain", "label": "ε", "title": "ε along G (%)"}, query
        assert obj["strain"]["shown"] and obj["isosurface"]["data"][0]["colorbar"]["title"]["text"] == "ε along G (%)"
    assert np.isfinite(npz["strain"]).any() and np.linalg.norm(npz["g_direction_lab"]) == pytest.approx(1.0)
    html = client.get(reverse("viewer:job", args=[records.job.pk]) + "?field=strain&frame=lab").content.decode()
    assert 'id="strain-toggle" checked' in html and f"{figures_url}?field=strain&amp;frame=lab" in html
    # the compare page carries the field and frame to every column, aligned ones included
    other = Job.objects.create(group=cast.alpha, owner=cast.owner, kind="refine", status="succeeded",
                               dataset=records.dataset, parent=records.job, params={}, progress=1.0)  # fmt: skip
    other.result_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(records.job.result_path, other.result_path)
    shutil.copyfile(records.job.result_dir / "prepared.cxi", other.result_dir / "prepared.cxi")
    page = client.get(reverse("viewer:compare") + f"?jobs={records.job.pk},{other.pk}&field=strain&frame=lab").content.decode()
    assert f"{figures_url}?field=strain&amp;frame=lab" in page
    aligned_url = reverse("viewer:job_aligned", args=[other.pk]) + f"?ref={records.job.pk}&field=strain&frame=lab"
    assert aligned_url.replace("&", "&amp;") in page
    aligned = body_json(client.get(aligned_url))["result"]
    assert aligned["alignment"]["aligned"] and aligned["object"]["frame"]["shown"] == "lab"
    assert aligned["object"]["field"]["name"] == "strain"
    assert "<strong>strain ε</strong>" in page and "<strong>lab frame</strong>" in page
    # the VTK download is on the lab grid, with every field the data allow
    from reconstruction.io.vtk import read_vtk

    vtk_path = records.job.result_dir / "download.vtk"
    vtk_path.write_bytes(client.get(reverse("viewer:job_vtk", args=[records.job.pk])).content)
    fields, spacing = read_vtk(vtk_path)
    assert set(fields) == {"amplitude", "phase", "support", "displacement_pm", "strain_pct"}
    assert spacing == pytest.approx(sizes[0], rel=1e-6) and fields["amplitude"].max() == pytest.approx(1.0)
