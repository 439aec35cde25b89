"""Django admin: staff manage users, research groups, model versions, jobs and tokens."""

from django.contrib import admin

from webapp.core.models import ApiToken, Dataset, Job, ModelVersion, ResearchGroup


@admin.register(ResearchGroup)
class ResearchGroupAdmin(admin.ModelAdmin):
    list_display = ("name", "created")
    filter_horizontal = ("members",)
    search_fields = ("name",)


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "group", "owner", "kind", "format", "size_bytes", "created")
    list_filter = ("group", "kind", "format")
    search_fields = ("name", "sha256")
    readonly_fields = ("sha256", "size_bytes", "file", "metadata", "shape")


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "status", "group", "owner", "progress", "stage", "attempts", "created")
    list_filter = ("status", "kind", "group")
    readonly_fields = ("celery_task_id", "log", "curves", "summary", "metrics", "latest_values")


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ("name", "version", "dims", "status", "trained_by_job", "created")
    list_filter = ("status", "dims")
    readonly_fields = ("sha256",)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("user", "name", "prefix", "read_only", "created", "last_used")
    readonly_fields = ("key_hash", "prefix", "last_used")
