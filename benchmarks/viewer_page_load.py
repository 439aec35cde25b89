"""Measure the result page of a 64³ job in Chromium: figure bytes sent and time to first render.

Run: ``.venv/bin/python benchmarks/viewer_page_load.py [--repeat 5] [--shape 64] [--keep]``.

It creates a private var folder (SQLite + media), a user in a group and a succeeded ``phase``
job whose result.cxi holds a 64³ crystal (strained, so the phase varies) with 600-iteration
error curves and a PRTF, starts ``manage.py runserver``, and opens the job page in headless
Chromium (Debian's /usr/bin/chromium through Playwright) with a cold cache each time. Time is
navigation start to the marks job.js sets on ``<body>``: ``data-first-render-ms`` ("first
render": what the user sees first is drawn: the object slices, the error curve, the PRTF and the
WebGL isosurface, i.e. every figure of the first screen) and ``data-result-rendered-ms`` (the
measured/calculated diffraction panel below them too: the whole page). The breakdown
(``data-t-data``: figure JSON parsed, ``data-t-figures2d``, ``data-t-isosurface``,
``data-t-diffraction``) and the HTML/script timings of the Navigation Timing API are reported as
well. Each run opens the page in a fresh context (cold browser cache: plotly.js is fetched and
parsed) and then again (warm cache). The very first load also computes the figures server-side (then
cached on disk). Prints a JSON summary.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]  # fmt: skip


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def seed(var: Path, shape: int) -> int:
    """Create the database, a user 'bench' (password 'bench') and a succeeded job; return its id."""
    env = dict(os.environ, CDI_VAR_DIR=str(var), DJANGO_SETTINGS_MODULE="webapp.settings")
    subprocess.check_call([PY, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env)
    code = f"""
import django, numpy as np
django.setup()
from django.contrib.auth import get_user_model
from webapp.core.models import ResearchGroup, Job
from reconstruction.io import ResultRecord, write_result
from reconstruction.fourier import intensity_of
n = {shape}
z, y, x = np.mgrid[:n, :n, :n] - n // 2
r = np.sqrt((x / 1.0) ** 2 + (y / 0.8) ** 2 + (z / 0.9) ** 2)
amp = np.clip(n / 6 + 0.5 - r, 0, 1)
phase = 1.5 * np.sin(2 * np.pi * x / (n / 2)) * np.cos(2 * np.pi * z / n)
obj = (amp * np.exp(1j * phase)).astype(np.complex64)
intensity = intensity_of(obj) * 1e9 / intensity_of(obj).sum()
intensity = np.random.default_rng(0).poisson(intensity).astype(np.float32)
curves = {{"chi2": np.logspace(0, -2.5, 600), "chi2_free": np.logspace(0, -2.2, 600)}}
freq = np.linspace(0, 1, 32)
record = ResultRecord(obj=obj, support=amp > 0.1, intensity=intensity, mask=np.zeros(obj.shape, bool),
    algorithm="(ER**20,HIO**160,ER**20)**3", curves=curves, metrics={{"chi2": 0.003, "chi2_free": 0.006}},
    arrays={{"prtf": np.exp(-freq / 0.5).astype(np.float32), "prtf_freq": freq.astype(np.float32)}})
user = get_user_model().objects.create_user("bench", password="bench")
group = ResearchGroup.objects.create(name="bench")
group.members.add(user)
job = Job.objects.create(group=group, owner=user, kind="phase", status="succeeded", progress=1.0,
    params={{"algorithm": "ER**20,HIO**160,ER**20", "cycles": 3}}, metrics=record.metrics)
job.result_dir.mkdir(parents=True, exist_ok=True)
write_result(str(job.result_path), record)
print(job.pk)
"""
    out = subprocess.run([PY, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    return int(out.stdout.strip().splitlines()[-1])


def _load(page, url: str) -> dict:
    """Open ``url`` and wait for the full result viewer; return its timings (ms) and bytes."""
    sizes: dict[str, int] = {}

    def on_response(response) -> None:
        if "figures.json" in response.url:
            sizes["figures_bytes_sent"] = int(response.headers.get("content-length") or 0)
            sizes["figures_bytes_json"] = len(response.body())

    page.on("response", on_response)
    page.goto(url)
    page.wait_for_selector("body[data-result-rendered='1']", timeout=60_000)
    page.remove_listener("response", on_response)
    marks = page.evaluate("""() => {
        const b = document.body.dataset, nav = performance.getEntriesByType("navigation")[0];
        return {data_ms: +b.tData, figures2d_ms: +b.tFigures2d, isosurface_ms: +b.tIsosurface,
                labels_ms: +b.tLabels, diffraction_ms: +b.tDiffraction, dom_content_loaded_ms: Math.round(nav.domContentLoadedEventEnd)};
    }""")
    return {
        "first_render_ms": float(page.get_attribute("body", "data-first-render-ms")),
        "all_figures_ms": float(page.get_attribute("body", "data-result-rendered-ms")),
        **marks,
        **sizes,
    }


def measure(bases: dict[str, str], job_id: int, repeat: int) -> dict:
    """Per run and bundle: a fresh browser context (cold cache), then the same page again (warm).

    ``bases`` maps a plotly.js bundle to the server that serves it; the bundles alternate within
    each run, so they are measured side by side under the same machine load.
    """
    from playwright.sync_api import sync_playwright

    results = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
        for i, (bundle, base) in ((i, b) for i in range(repeat) for b in bases.items()):
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            page = context.new_page()
            page.goto(f"{base}/accounts/login/")
            page.fill("input[name=username]", "bench")
            page.fill("input[name=password]", "bench")
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/")
            cold = _load(page, f"{base}/jobs/{job_id}/")
            warm = _load(page, f"{base}/jobs/{job_id}/")
            results.append({"run": i, "bundle": bundle, "cold": cold, "warm": warm})
            if i == repeat - 1 and bundle == next(iter(bases)):
                shots = ROOT / "test-artifacts"
                shots.mkdir(exist_ok=True)
                page.screenshot(path=str(shots / "bench_result_page.png"), full_page=True)
            context.close()
        browser.close()
    return {"runs": results}


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def main() -> int:
    """Seed, serve, measure, print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--shape", type=int, default=64)
    parser.add_argument("--keep", action="store_true", help="keep the var folder")
    parser.add_argument("--out", type=Path, help="also write the JSON summary to this file")
    parser.add_argument("--bundles", nargs="+", default=["plotly/plotly-cdi.min.js"],
                        help="plotly.js static paths to compare (CDI_PLOTLY_JS), e.g. also vendor/plotly.min.js")
    args = parser.parse_args()
    var = Path(tempfile.mkdtemp(prefix="viewer-bench-"))
    servers = []
    try:
        job_id = seed(var, args.shape)
        bases = {}
        for bundle in args.bundles:
            port = free_port()
            env = dict(os.environ, CDI_VAR_DIR=str(var), DJANGO_SETTINGS_MODULE="webapp.settings", DJANGO_DEBUG="1",
                       CDI_PLOTLY_JS=bundle)
            servers.append(subprocess.Popen([PY, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"], cwd=ROOT,
                                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            for _ in range(100):
                with socket.socket() as sock:
                    if sock.connect_ex(("127.0.0.1", port)) == 0:
                        break
                time.sleep(0.1)
            bases[bundle] = f"http://127.0.0.1:{port}"
        summary = measure(bases, job_id, args.repeat)
        keys = ("dom_content_loaded_ms", "data_ms", "figures2d_ms", "labels_ms", "first_render_ms", "all_figures_ms")
        summary.update(
            shape=args.shape,
            load_average=os.getloadavg(),
            median_ms={bundle: {f"{cache}_{key}": _median([r[cache][key] for r in summary["runs"] if r["bundle"] == bundle])
                                for cache in ("cold", "warm") for key in keys}
                       for bundle in args.bundles},
        )  # fmt: skip
        text = json.dumps(summary, indent=2)
        print(text)
        if args.out:
            args.out.write_text(text)
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=10)
        if not args.keep:
            shutil.rmtree(var, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
