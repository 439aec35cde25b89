"""The viewer's partial plotly.js bundle: same version as the pinned package, every trace type."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import plotly.graph_objs

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "frontend" / "static" / "plotly" / "plotly-cdi.min.js"
ENTRY = ROOT / "frontend" / "plotly-bundle" / "entry.js"
PACKAGE_JS = (
    Path(importlib.util.find_spec("plotly").submodule_search_locations[0])
    / "package_data" / "plotly.min.js"
)


def _header_version(path: Path) -> str:
    head = path.read_text(encoding="utf-8", errors="replace")[:300]
    match = re.search(r"plotly\.js v(\d+\.\d+\.\d+)", head)
    assert match, f"no version header in {path}"
    return match.group(1)


def test_the_partial_bundle_is_the_plotly_js_version_of_the_pinned_package():
    assert _header_version(BUNDLE) == _header_version(PACKAGE_JS)
    assert f'version="{_header_version(PACKAGE_JS)}"' in BUNDLE.read_text(encoding="utf-8")
    assert BUNDLE.stat().st_size < PACKAGE_JS.stat().st_size / 2


def test_every_trace_type_the_figures_draw_is_registered_in_the_bundle():
    trace_types = {name.lower() for name in plotly.graph_objs.__all__} & {
        "scatter", "heatmap", "mesh3d", "isosurface", "volume", "surface", "scatter3d",
        "scattergl", "contour", "histogram", "bar", "image", "cone", "streamtube", "heatmapgl",
    }
    source = "".join(p.read_text() for p in (ROOT / "webapp" / "viewer").glob("*.py"))
    source += "".join(p.read_text() for p in (ROOT / "frontend" / "static").rglob("*.js")
                      if "plotly" not in p.parts)
    used = {t for t in re.findall(r"""["']?type["']?\s*:\s*["'](\w+)["']""", source)
            if t in trace_types}
    registered = set(re.findall(r"plotly\.js/lib/(\w+)", ENTRY.read_text())) | {"scatter"}
    assert used, "no trace type found: the pattern above no longer matches the figure code"
    assert used <= registered, f"add {sorted(used - registered)} to frontend/plotly-bundle/entry.js"


def test_pages_load_the_bundle_named_by_the_setting(settings):
    from webapp.viewer.context import plotly_js

    assert plotly_js(None) == {"PLOTLY_JS": "plotly/plotly-cdi.min.js"}
    settings.CDI_PLOTLY_JS = "vendor/plotly.min.js"
    assert plotly_js(None) == {"PLOTLY_JS": "vendor/plotly.min.js"}
