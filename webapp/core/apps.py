"""Django app config of the server-side core (models, services, API)."""

from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Groups, datasets, jobs, model versions and API tokens."""

    name = "webapp.core"
    label = "core"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "CDI core"
