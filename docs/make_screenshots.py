"""Take the screenshots of docs/viewer.md as a new user would: through the running app, in Chromium.

Start the app with the README's run command (``python3 dev.py app``), then::

    .venv/bin/python docs/make_screenshots.py [--base http://127.0.0.1:8000] \
        [--data ../shared/data/real/aps34idc_Au_S0054_rocking_scan.cxi] [--out docs/screenshots]

It signs in with the demo account, uploads the raw file on the upload page, opens its dataset
page, submits a ``pipeline`` job (shipped model, then ``ER**50`` with shrink-wrap) and a conventional ``phase`` job
(600 iterations, 4 random starts) from the submit forms with their defaults, catches the phase job
while it runs, and, once both succeeded, saves the result viewer (isosurface coloured by phase and
slices, then by the displacement along G after a click on its switch, then on the orthogonal lab
grid after a click on the lab-frame switch, then by the strain along G, diffraction, error curves
and PRTF), the comparison of prediction, refinement and
conventional phasing, and the dashboard. Debian's Chromium (``/usr/bin/chromium``) through
Playwright, headless, 1280×800; nothing is downloaded. Prints the χ² of each job.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "real" / "aps34idc_Au_S0054_rocking_scan.cxi"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
JOB_TIMEOUT_MS = 15 * 60 * 1000


def card(page, plot_id: str):
    """The ``section.card`` around a plot."""
    return page.locator(f"#{plot_id}").locator("xpath=ancestor::section[contains(@class, 'card')][1]")


def submit(page, base: str, kind: str, dataset_id: str, fields: dict[str, str] | None = None) -> str:
    """Submit a job of ``kind`` on the dataset from its form (defaults + ``fields``); return its URL."""
    page.goto(f"{base}/jobs/new/?kind={kind}&dataset={dataset_id}")
    for name, value in (fields or {}).items():
        page.fill(f"#job-form [name={name}]", value)
    page.click("#job-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/jobs/\d+/$"), timeout=60_000)
    return page.url


def wait_finished(page) -> str:
    """Wait until the job page shows a finished status; return it."""
    page.wait_for_function(
        "() => ['succeeded', 'failed', 'cancelled'].includes(document.getElementById('job').dataset.status)",
        timeout=JOB_TIMEOUT_MS,
    )
    return page.get_attribute("#job", "data-status")


def chi2_of(page) -> str:
    """The χ² row of the metrics table."""
    for row in page.locator("#metrics-table tr").all_inner_texts():
        if row.strip().startswith("χ²") and "free" not in row:
            return row.split()[-1]
    return "?"


def main() -> int:
    """Drive the app and save the screenshots; return 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="http://127.0.0.1:8000")
    parser.add_argument("--user", default="demo")
    parser.add_argument("--password", default="demo-password")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    base = args.base.rstrip("/")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(f"{base}/accounts/login/")
        page.fill("input[name=username]", args.user)
        page.fill("input[name=password]", args.password)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/")

        t0 = time.monotonic()
        page.goto(f"{base}/datasets/upload/")
        page.set_input_files("#file-input", str(args.data))
        page.wait_for_url(re.compile(r".*/datasets/\d+/$"), timeout=300_000)
        print(f"upload + check: {time.monotonic() - t0:.1f} s", flush=True)
        dataset_id = page.url.rstrip("/").split("/")[-1]
        page.wait_for_selector("body[data-rendered='1']", timeout=120_000)
        page.screenshot(path=str(args.out / "dataset.png"), full_page=True)

        pipeline_url = submit(page, base, "pipeline", dataset_id)
        phase_url = submit(page, base, "phase", dataset_id, {"runs": "4"})
        page.wait_for_function("() => document.getElementById('job').dataset.status === 'running'",
                               timeout=JOB_TIMEOUT_MS)
        page.wait_for_function("() => document.querySelectorAll('#plot-live .scatterlayer .trace').length > 0"
                               " && +document.getElementById('progress-pct').textContent.replace(' %', '') >= 20",
                               timeout=JOB_TIMEOUT_MS)
        page.screenshot(path=str(args.out / "job_running.png"), full_page=False)

        page.goto(pipeline_url)
        print(f"pipeline: {wait_finished(page)}", flush=True)
        page.wait_for_selector("body[data-result-rendered='1']", timeout=120_000)
        page.wait_for_timeout(800)  # the 3D axis labels follow the first render
        print(f"pipeline chi2 {chi2_of(page)}", flush=True)
        card(page, "plot-iso").locator("xpath=..").screenshot(path=str(args.out / "result_isosurface.png"))
        card(page, "plot-diffraction").screenshot(path=str(args.out / "result_diffraction.png"))
        compare_url = page.get_attribute("#compare-link", "href")
        page.click("#displacement-toggle")  # the file gives λ and θ_B: u along G in pm
        page.wait_for_url(re.compile(r".*\?field=u$"))
        page.wait_for_selector("body[data-result-rendered='1']", timeout=120_000)
        page.wait_for_timeout(800)
        print(f"displacement: {page.inner_text('#displacement-note')}", flush=True)
        card(page, "plot-iso").locator("xpath=..").screenshot(path=str(args.out / "result_displacement.png"))
        page.click("#lab-toggle")  # the file names APS 34-ID-C and its arm angles: the orthogonal lab grid
        page.wait_for_url(re.compile(r".*\?field=u&frame=lab$"))
        page.wait_for_selector("body[data-result-rendered='1']", timeout=120_000)
        page.wait_for_timeout(800)
        print(f"lab frame: {page.inner_text('#lab-note')}; {page.inner_text('#units-note')}", flush=True)
        card(page, "plot-iso").locator("xpath=..").screenshot(path=str(args.out / "result_lab_frame.png"))
        page.click("#strain-toggle")  # the same geometry gives the direction of G: ε = Ĝ·∇u in %
        page.wait_for_url(re.compile(r".*\?field=strain&frame=lab$"))
        page.wait_for_selector("body[data-result-rendered='1']", timeout=120_000)
        page.wait_for_timeout(800)
        print(f"strain: {page.inner_text('#strain-note')}", flush=True)
        card(page, "plot-iso").locator("xpath=..").screenshot(path=str(args.out / "result_strain.png"))

        page.goto(phase_url)
        print(f"phase: {wait_finished(page)}", flush=True)
        page.wait_for_selector("body[data-result-rendered='1']", timeout=120_000)
        print(f"phase (4 starts) chi2 {chi2_of(page)}", flush=True)
        card(page, "plot-errors").locator("xpath=..").screenshot(path=str(args.out / "result_errors_prtf.png"))

        phase_id = phase_url.rstrip("/").split("/")[-1]
        page.goto(f"{base}{compare_url},{phase_id}" if compare_url.startswith("/") else f"{compare_url},{phase_id}")
        page.wait_for_selector("body[data-rendered='1']", timeout=120_000)
        page.wait_for_timeout(800)
        page.screenshot(path=str(args.out / "compare.png"), full_page=True)

        page.goto(f"{base}/")
        page.wait_for_selector("body[data-rendered='1']")
        page.screenshot(path=str(args.out / "dashboard.png"), full_page=False)
        browser.close()
    print(f"screenshots in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
