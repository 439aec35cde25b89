"""Root URLs: the JSON API at /api/, Django's login views at /accounts/, admin, and the pages."""

from __future__ import annotations

from importlib.util import find_spec

from django.contrib import admin
from django.urls import include, path

from webapp.core.api import api

urlpatterns = [
    path("api/", api.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
]

# The pages (owned by "viewer") are mounted at the root as soon as they exist.
if find_spec("webapp.viewer") is not None and find_spec("webapp.viewer.urls") is not None:
    urlpatterns.append(path("", include("webapp.viewer.urls")))
