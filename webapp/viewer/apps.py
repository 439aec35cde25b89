"""Django app config of the browser pages (dashboard, upload, job and result viewer)."""

from django.apps import AppConfig


class ViewerConfig(AppConfig):
    """HTML pages and the JSON figure endpoints they fetch."""

    name = "webapp.viewer"
    label = "viewer"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "CDI viewer"
