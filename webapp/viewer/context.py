"""Template context shared by the viewer pages."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def plotly_js(request: HttpRequest) -> dict[str, str]:
    """Give templates ``PLOTLY_JS``: the static path of the plotly.js bundle to load."""
    return {"PLOTLY_JS": settings.CDI_PLOTLY_JS}
