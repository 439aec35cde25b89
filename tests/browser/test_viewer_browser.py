"""The pages in a real Chromium (Debian's, through Playwright) against a live server, a real
Redis and a real Celery worker: upload, pipeline to 100 %, result viewer, compare, cancel, 404.

Screenshots go to ``test-artifacts/`` (git-ignored). Skipped when /usr/bin/chromium or the
library workflows the jobs need are missing.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import aps_like_metadata, small_pattern, write_job_data

pytestmark = [pytest.mark.browser, pytest.mark.integration]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]  # fmt: skip
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
JOB_TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the module (never downloaded: Debian's binary or skip)."""
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium"),
                                              headless=True, args=CHROMIUM_ARGS)  # fmt: skip
        yield chromium
        chromium.close()


@pytest.fixture
def open_page(browser, live_server):
    """``open_page(user, password)``: a 1280×800 page signed in through the login form."""
    contexts = []
    blocked: list[str] = []

    def _open(username: str, password: str):
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        contexts.append(context)
        page = context.new_page()
        # Nothing may come from the internet: record (and abort) any request off the live server.
        page.route(re.compile(r"^(?!" + re.escape(live_server.url) + ").*"),
                   lambda route: (blocked.append(route.request.url), route.abort()))  # fmt: skip
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server.url}/")
        return page

    yield _open
    for context in contexts:
        context.close()
    assert not [u for u in blocked if not u.startswith("data:")], f"pages loaded from outside: {blocked}"


def shot(page, name: str) -> Path:
    """Save a full-page screenshot under test-artifacts/."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def write_cxi_pattern(path: Path, n: int = 64) -> Path:
    """A small simulated Bragg pattern written as a CXI file by the library."""
    from reconstruction.io import DiffractionData, write_prepared

    intensity = small_pattern(n, photons=1e9)
    write_prepared(str(path), DiffractionData(intensity=intensity, mask=np.zeros(intensity.shape, bool)))
    return path


def drop_file(page, selector: str, path: Path) -> None:
    """Drag and drop ``path`` onto ``selector`` (a real ``drop`` event carrying a File)."""
    payload = base64.b64encode(path.read_bytes()).decode()
    transfer = page.evaluate_handle(
        """([b64, name]) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name));
            return transfer;
        }""",
        [payload, path.name],
    )
    page.dispatch_event(selector, "dragover", {"dataTransfer": transfer})
    page.dispatch_event(selector, "drop", {"dataTransfer": transfer})


def wait_for_dataset_page(page) -> None:
    """Wait for the upload to open the dataset page; fail with the page's message otherwise."""
    try:
        page.wait_for_url(re.compile(r".*/datasets/\d+/$"), timeout=30_000)
    except Exception:  # noqa: BLE001 - report what the page says, then fail
        shot(page, "upload_failed")
        pytest.fail(f"upload did not open the dataset page: {page.inner_text('#upload-error')!r} "
                    f"{page.inner_text('#upload-status')!r}")  # fmt: skip


def needs(*modules: str) -> None:
    """Skip unless the library workflows a job kind calls are importable."""
    for module in modules:
        pytest.importorskip(module, reason=f"{module} is not there yet")


def submit_job_form(page) -> None:
    """Submit the job form; fail with the page's text unless it opens the new job's page."""
    page.click("#job-form button[type=submit]")
    if not re.match(r".*/jobs/\d+/$", page.url):
        shot(page, "submit_failed")
        pytest.fail(f"the job was not submitted: {page.inner_text('main')}")


def wait_finished(page, *, timeout_ms: int = JOB_TIMEOUT_MS) -> str:
    """Wait until the job page shows a finished status; return it."""
    page.wait_for_function(
        "() => ['succeeded', 'failed', 'cancelled'].includes(document.getElementById('job').dataset.status)",
        timeout=timeout_ms,
    )
    return page.get_attribute("#job", "data-status")


@pytest.mark.django_db(transaction=True)
def test_member_drops_a_cxi_file_runs_a_pipeline_and_sees_every_view(open_page, live_server, cast, celery_worker, tmp_path):
    needs("reconstruction.io.workflow", "reconstruction.nn.workflow", "reconstruction.phasing.workflow")
    from reconstruction.nn.workflow import default_checkpoint_path

    if not default_checkpoint_path(3).is_file():
        pytest.skip("the shipped default 3D model is not there yet")
    page = open_page("member", "pw-member")
    page.goto(f"{live_server.url}/datasets/upload/")
    drop_file(page, "#drop-zone", write_cxi_pattern(tmp_path / "crystal.cxi"))
    wait_for_dataset_page(page)
    page.wait_for_selector("body[data-rendered='1']", timeout=30_000)
    assert page.locator("#plot-3d canvas").count() > 0  # 3D view of the intensity
    assert page.locator("#slices-sliders input[type=range]").count() == 3
    shot(page, "dataset_page")

    page.click("a.button:text('pipeline')")
    page.wait_for_url(re.compile(r".*/jobs/new/.*kind=pipeline.*"))
    page.select_option("#preset", "quick")
    page.click("#job-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/jobs/\d+/$"))
    status = wait_finished(page)
    assert status == "succeeded", page.inner_text("#job-error")
    assert page.inner_text("#progress-pct") == "100 %"
    page.wait_for_selector("body[data-result-rendered='1']", timeout=30_000)
    assert page.locator("#plot-iso canvas").count() > 0  # WebGL isosurface
    assert page.locator("#plot-object .heatmaplayer image, #plot-object .hm image").count() >= 6
    assert page.locator("#plot-errors .scatterlayer .trace").count() >= 1
    assert page.locator("#plot-diffraction .heatmaplayer image, #plot-diffraction .hm image").count() >= 6
    # one slider moves the slices; the title follows
    slider = page.locator("#object-sliders input[type=range]").first
    slider.fill(str(int(slider.get_attribute("min")) + 1))
    page.wait_for_function("() => document.querySelector('#plot-object').textContent.includes('amplitude, z = ')")
    shot(page, "job_result_page")

    page.click("#compare-link")
    page.wait_for_url(re.compile(r".*/compare/\?jobs=.*"))
    page.wait_for_selector("body[data-rendered='1']", timeout=30_000)
    assert page.locator(".compare-col").count() >= 2
    assert page.locator(".compare-col .cmp-iso canvas").count() >= 2
    # the second and third results are aligned onto the first, and each says how
    assert "reference" in page.locator(".compare-col .alignment").first.inner_text()
    for n in range(1, page.locator(".compare-col").count()):
        assert re.search(r"aligned: shift \(.+\) voxel \(x, y, z\), (twin flipped|no twin flip), phase offset",
                         page.locator(".compare-col .alignment").nth(n).inner_text())  # fmt: skip
    page.check("input[name=plane][value='1']")
    low, high = int(page.get_attribute("#plane-index", "min")), int(page.get_attribute("#plane-index", "max"))
    page.locator("#plane-index").fill(str((low + high) // 2))
    page.wait_for_function("() => [...document.querySelectorAll('.cmp-slices')].every((d) => d.textContent.includes('phase, y = '))")
    shot(page, "compare_page")

    page.goto(f"{live_server.url}/")
    page.wait_for_selector("body[data-rendered='1']")
    assert page.locator("#jobs-table tbody tr .badge.succeeded").count() >= 1
    shot(page, "dashboard")


@pytest.mark.django_db(transaction=True)
def test_member_cancels_a_running_job_from_its_page(open_page, live_server, cast, celery_worker, tmp_path):
    needs("reconstruction.io.workflow", "reconstruction.phasing.workflow")
    from webapp.core.models import Dataset

    page = open_page("member", "pw-member")
    page.goto(f"{live_server.url}/datasets/upload/")
    page.set_input_files("#file-input", str(write_cxi_pattern(tmp_path / "long.cxi")))
    wait_for_dataset_page(page)
    dataset = Dataset.objects.latest("created")
    page.goto(f"{live_server.url}/jobs/new/?kind=phase&dataset={dataset.pk}")
    page.fill("input[name=algorithm]", "HIO**100000")
    page.fill("input[name=cycles]", "10")
    submit_job_form(page)
    try:
        page.wait_for_function("() => document.getElementById('job').dataset.status === 'running'", timeout=JOB_TIMEOUT_MS)
        # The status is in the server-rendered HTML: wait for job.js (behind the 4.8 MB plotly.js)
        # to bind the cancel button, or the click lands on a button that does nothing yet.
        page.wait_for_selector("#job[data-ready='1']")
        for attempt in range(3):
            with page.expect_response(re.compile(r".*/cancel/$"), timeout=60_000) as cancel_response:
                page.click("#cancel-button")
            if cancel_response.value.ok:
                break
            # SQLite only: a write racing the worker's progress writes can fail with "database is
            # locked"; the button comes back and a person would click again (see the report).
            assert "database is locked" in cancel_response.value.text(), cancel_response.value.text()
            page.wait_for_selector("#cancel-button:not([disabled])")
        assert cancel_response.value.ok, cancel_response.value.text()
        try:
            status = wait_finished(page, timeout_ms=60_000)
        except Exception:  # noqa: BLE001 - show the job's state and the worker's log, then fail
            from webapp.core.models import Job

            job = Job.objects.latest("created")
            pytest.fail(f"not cancelled: {job.status} cancel_requested={job.cancel_requested} stage={job.stage!r}\n"
                        f"{job.log[-2000:]}\n--- worker ---\n{celery_worker.log()[-3000:]}")  # fmt: skip
        assert status == "cancelled"
        assert page.locator("#cancel-button").is_hidden()
        shot(page, "job_cancelled")
    finally:
        # Whatever happened above, never leave a million-iteration job on the one test worker.
        from webapp.core.models import Job

        Job.objects.filter(status__in=["queued", "running"]).update(cancel_requested=True)


@pytest.mark.django_db(transaction=True)
def test_outsider_sees_404_for_another_groups_job_and_dataset(open_page, live_server, cast, records):
    page = open_page("outsider", "pw-outsider")
    for url in (f"/jobs/{records.job.pk}/", f"/datasets/{records.dataset.pk}/", f"/compare/?jobs={records.job.pk}"):
        response = page.goto(f"{live_server.url}{url}")
        assert response.status == 404, url
    page.goto(f"{live_server.url}/")
    page.wait_for_selector("body[data-rendered='1']")
    assert page.locator("#jobs-table tbody tr[data-job]").count() == 0


@pytest.mark.django_db(transaction=True)
def test_result_page_of_a_finished_job_renders_with_labelled_colour_bars(open_page, live_server, cast, records):
    page = open_page("member", "pw-member")
    page.goto(f"{live_server.url}/jobs/{records.job.pk}/")
    page.wait_for_selector("body[data-result-rendered='1']", timeout=30_000)
    text = page.inner_text("#result")
    for label in ("phase (rad)", "amplitude (a.u.)", "log10 intensity", "iteration", "x (voxel)"):
        assert label in text, label
    # the fixture's data (an .npy pattern) carry no geometry: the page says why positions are in voxels
    assert "voxel size is not in the data's metadata" in page.inner_text("#units-note")
    assert page.locator("#displacement-switch").is_hidden()  # no Bragg angle, no displacement
    assert page.locator("#panel-psf").is_hidden()  # a coherent model: no kernel to show
    first = int(page.get_attribute("body", "data-first-render-ms"))
    assert first <= int(page.get_attribute("body", "data-result-rendered-ms"))
    # the threshold slider recomputes the isosurface on the server
    page.locator("#iso-threshold").fill("0.6")
    page.wait_for_function("() => document.querySelector('#plot-iso .gtitle').textContent.includes('at 0.60 of max')")
    shot(page, "fixture_result_page")
    # the fixture crystal has a phase ramp: removing it reloads the page with ?ramp=1 and says which
    page.click("#ramp-toggle")
    page.wait_for_url(re.compile(r".*/jobs/\d+/\?ramp=1$"))
    page.wait_for_selector("body[data-result-rendered='1']", timeout=30_000)
    assert page.is_checked("#ramp-toggle") and "rad per voxel along z, y, x" in page.inner_text("#ramp-values")
    page.locator("#iso-threshold").fill("0.5")
    page.wait_for_function("() => document.querySelector('#plot-iso .gtitle').textContent.includes('at 0.50 of max')")


@pytest.mark.django_db(transaction=True)
def test_the_displacement_switch_recolours_the_result_in_pm_where_the_data_give_the_bragg_angle(
    open_page, live_server, cast, records
):
    from reconstruction.io import Metadata

    meta = Metadata(wavelength_m=1.3776e-10, extra={"bragg_angle_deg": 17.16})
    write_job_data(records.job, meta)
    page = open_page("member", "pw-member")
    page.goto(f"{live_server.url}/jobs/{records.job.pk}/")
    page.wait_for_selector("body[data-result-rendered='1']", timeout=30_000)
    assert page.locator("#displacement-switch").is_visible() and not page.is_checked("#displacement-toggle")
    assert "phase (rad)" in page.inner_text("#result")
    page.click("#displacement-toggle")
    page.wait_for_url(re.compile(r".*/jobs/\d+/\?field=u$"))
    page.wait_for_selector("body[data-result-rendered='1']", timeout=30_000)
    assert page.is_checked("#displacement-toggle")
    assert "d = 0.2335 nm" in page.inner_text("#displacement-note")
    assert page.inner_text("#panel-iso h2") == "Amplitude isosurface coloured by displacement"
    text = page.inner_text("#result")
    assert "u along G (pm)" in text and "phase (rad)" not in text
    # the slice slider re-cuts the displacement volume and names it
    page.locator("#object-sliders input[data-axis='0']").fill("9")
    page.wait_for_function("() => [...document.querySelectorAll('#plot-object .annotation-text')]"
                           ".some((a) => a.textContent.startsWith('u, z = 9'))")
    # with the ramp switch too, both stay on
    page.click("#ramp-toggle")
    page.wait_for_url(re.compile(r".*/jobs/\d+/\?ramp=1&field=u$"))
    page.wait_for_selector("body[data-result-rendered='1']", timeout=30_000)
    assert page.is_checked("#ramp-toggle") and page.is_checked("#displacement-toggle")
    shot(page, "fixture_result_displacement")


@pytest.mark.django_db(transaction=True)
def test_a_result_phased_with_a_psf_shows_the_fitted_kernel_and_its_metrics(open_page, live_server, cast, records):
    from dataclasses import replace

    from reconstruction.io import read_result, write_result
    from reconstruction.phasing.coherence import PartialCoherence, psf_kernel

    record = read_result(str(records.job.result_path))
    kernel = np.fft.fftshift(psf_kernel(record.obj.shape, PartialCoherence(fwhm=1.2)))
    write_result(str(records.job.result_path),
                 replace(record, arrays={**record.arrays, "psf": kernel},
                         metrics={**record.metrics, "psf_fwhm_px": 1.2, "chi2_coherent": 0.02}))  # fmt: skip
    page = open_page("member", "pw-member")
    page.goto(f"{live_server.url}/jobs/{records.job.pk}/")
    page.wait_for_selector("body[data-result-rendered='1']", timeout=30_000)
    assert page.locator("#panel-psf").is_visible()
    assert "along x (FWHM 1.20 px)" in page.inner_text("#plot-psf")
    metrics = page.inner_text("#metrics-table")
    assert "partial-coherence PSF, FWHM (pixels)" in metrics and "χ² without the PSF" in metrics
    shot(page, "fixture_result_psf")


@pytest.mark.django_db(transaction=True)
def test_the_lab_frame_switch_redraws_a_bragg_result_on_an_orthogonal_grid(open_page, live_server, cast, records):
    from reconstruction.io import read_result

    record = read_result(str(records.job.result_path))
    n = record.obj.shape[0]
    meta = aps_like_metadata(n)
    write_job_data(records.job, meta)
    page = open_page("member", "pw-member")
    page.goto(f"{live_server.url}/jobs/{records.job.pk}/")
    page.wait_for_selector("body[data-result-rendered='1']", timeout=30_000)
    assert page.locator("#lab-switch").is_visible() and not page.is_checked("#lab-toggle")
    assert "from orthogonal" in page.inner_text("#lab-note")
    page.click("#lab-toggle")
    page.wait_for_url(re.compile(r".*/jobs/\d+/\?frame=lab$"))
    page.wait_for_selector("body[data-result-rendered='1']", timeout=30_000)
    assert page.is_checked("#lab-toggle") and "z along the beam" in page.inner_text("#lab-note")
    assert "orthogonal lab grid" in page.inner_text("#units-note")
    assert "x (nm)" in page.inner_text("#result")
    # the strain along G needs the same geometry; it replaces the displacement, never both
    page.click("#displacement-toggle")
    page.wait_for_url(re.compile(r".*/jobs/\d+/\?field=u&frame=lab$"))
    page.wait_for_selector("body[data-result-rendered='1']", timeout=30_000)
    page.click("#strain-toggle")
    page.wait_for_url(re.compile(r".*/jobs/\d+/\?field=strain&frame=lab$"))
    page.wait_for_selector("body[data-result-rendered='1']", timeout=30_000)
    assert page.is_checked("#strain-toggle") and not page.is_checked("#displacement-toggle")
    assert "ε along G (%)" in page.inner_text("#result")
    assert page.inner_text("#field-stats").startswith("ε over the crystal (amplitude ≥ 30 %")
    assert page.inner_text("#panel-iso h2") == "Amplitude isosurface coloured by strain"
    # the compare page keeps the strain and the lab frame for every column
    from webapp.core.models import Job

    other = Job.objects.create(group=cast.alpha, owner=cast.owner, kind="refine", status="succeeded",
                               dataset=records.dataset, parent=records.job, params={}, progress=1.0)  # fmt: skip
    other.result_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(records.job.result_path, other.result_path)
    shutil.copyfile(records.job.result_dir / "prepared.cxi", other.result_dir / "prepared.cxi")
    page.goto(f"{live_server.url}/compare/?jobs={records.job.pk},{other.pk}&field=strain&frame=lab")
    page.wait_for_selector("body[data-rendered='1']", timeout=30_000)
    text = page.inner_text("#compare")
    assert text.count("isosurface coloured by strain") == 2 and "aligned:" in text
    assert "ε along G (%)" in text


@pytest.mark.django_db(transaction=True)
def test_dashboard_selects_two_results_and_opens_them_side_by_side(open_page, live_server, cast, records):
    from tests.conftest import write_result_file
    from webapp.core.models import Job

    other = Job.objects.create(group=cast.alpha, owner=cast.owner, kind="phase", status="succeeded", progress=1.0,
                               dataset=records.dataset, metrics={"chi2": 0.02})  # fmt: skip
    other.result_dir.mkdir(parents=True, exist_ok=True)
    write_result_file(other.result_path)
    page = open_page("member", "pw-member")
    page.wait_for_selector("body[data-rendered='1']")
    for job in (records.job, other):
        page.check(f"#jobs-table tr[data-job='{job.pk}'] input.pick")
    page.click("#compare-selected")
    page.wait_for_url(re.compile(r".*/compare/\?jobs=\d+,\d+$"))
    page.wait_for_selector("body[data-rendered='1']", timeout=30_000)
    assert page.locator(".compare-col .cmp-iso canvas").count() == 2
    assert page.locator(".cmp-slices .heatmaplayer image, .cmp-slices .hm image").count() == 4
    assert "aligned: shift (+0.00, +0.00, +0.00) voxel" in page.locator(".compare-col .alignment").nth(1).inner_text()
    shot(page, "compare_two_fixture_results")


@pytest.mark.django_db(transaction=True)
def test_result_page_fits_a_laptop_and_a_large_screen_without_overlap_or_sideways_scrolling(open_page, live_server, cast, records):
    page = open_page("member", "pw-member")
    for width, height in ((1280, 800), (1920, 1080), (2560, 1440)):
        page.set_viewport_size({"width": width, "height": height})
        page.goto(f"{live_server.url}/jobs/{records.job.pk}/")
        page.wait_for_selector("body[data-result-rendered='1']", timeout=30_000)
        assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth"), width
        boxes = {name: page.locator(f"#{name}").bounding_box() for name in
                 ("plot-iso", "plot-object", "plot-errors", "plot-diffraction")}  # fmt: skip
        for name, box in boxes.items():
            assert box and box["width"] > 200 and box["x"] + box["width"] <= width + 1, (width, name, box)
        iso, obj = boxes["plot-iso"], boxes["plot-object"]
        # side by side on the first screen, not overlapping
        assert iso["x"] + iso["width"] <= obj["x"] + 1 and abs(iso["y"] - obj["y"]) < 80, (width, iso, obj)
        if width == 1920:
            shot(page, "result_page_1920")


@pytest.mark.django_db(transaction=True)
def test_member_phases_esrfs_logo_with_its_uploaded_support_file_and_sees_the_2d_result(open_page, live_server, cast,
                                                                                       celery_worker):
    """A 2D user's path: upload the pattern and ESRF's 0/1 support EDF, choose the support in
    the phase form, get the 512² logo back."""
    needs("reconstruction.io.workflow", "reconstruction.phasing.workflow")
    from tests.conftest import REAL_DATA, wait_for
    from webapp.core import services
    from webapp.core.models import Dataset, Job

    if not REAL_DATA.is_dir():
        pytest.skip(f"real data folder {REAL_DATA} is absent")
    page = open_page("member", "pw-member")
    ids = {}
    for name in ("esrf_id10_logo5mu_20sec_support.edf", "esrf_id10_logo5mu_20sec.edf"):
        page.goto(f"{live_server.url}/datasets/upload/")
        page.set_input_files("#file-input", str(REAL_DATA / name))
        wait_for_dataset_page(page)
        ids[name] = Dataset.objects.get(name=name).pk
    page.goto(f"{live_server.url}/jobs/new/?kind=phase&dataset={ids['esrf_id10_logo5mu_20sec.edf']}")
    page.select_option("select[name=support_dataset]", str(ids["esrf_id10_logo5mu_20sec_support.edf"]))
    page.fill("input[name=algorithm]", "HIO**100,ER**30")
    page.fill("input[name=cycles]", "1")
    submit_job_form(page)
    status = wait_finished(page)
    job = Job.objects.latest("created")
    assert status == "succeeded", f"{page.inner_text('#job-error')}\n{job.log}"
    assert job.summary.get("shape") == [512, 512] and job.metrics["chi2"] < 0.02
    page.wait_for_selector("body[data-result-rendered='1']", timeout=30_000)
    assert page.locator("#plot-object .heatmaplayer image, #plot-object .hm image").count() >= 2
    support_id = ids["esrf_id10_logo5mu_20sec_support.edf"]
    assert page.locator(f"details a[href$='/datasets/{support_id}/']").count() == 1  # the support, linked
    shot(page, "job_result_2d_logo")
    # the peak is off the grid centre by a fraction of a pixel; the switch reloads the page, so
    # click it (``check`` would read the state back while the page is being replaced)
    page.click("#ramp-toggle")
    page.wait_for_url(re.compile(r".*/jobs/\d+/\?ramp=1$"))
    page.wait_for_selector("body[data-result-rendered='1']", timeout=30_000)
    assert page.is_checked("#ramp-toggle")
    assert "rad per pixel along y, x" in page.inner_text("#ramp-values")
    shot(page, "job_result_2d_logo_ramp_removed")
    # a second reconstruction (another seed), then both side by side, aligned
    second = services.job_submit(user=cast.member, group=cast.alpha, kind="phase", dataset=job.dataset,
                                 params={**job.params, "seed": 1})  # fmt: skip
    wait_for(lambda: Job.objects.get(pk=second.pk).is_finished or None, timeout_s=120, what="the second phase job")
    page.goto(f"{live_server.url}/compare/?jobs={job.pk},{second.pk}")
    page.wait_for_selector("body[data-rendered='1']", timeout=30_000)
    assert page.locator("#compare-controls").is_hidden()  # no plane to choose in 2D
    assert re.search(r"aligned: shift \(.+\) pixel \(x, y\)", page.locator(".compare-col .alignment").nth(1).inner_text())
    assert page.locator(".cmp-slices .heatmaplayer image, .cmp-slices .hm image").count() >= 4
    shot(page, "compare_2d_logo")
