"""Reads: every query the pages and the API make, built on ``access.get_for_user``."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from webapp.core.access import get_for_user, visible
from webapp.core.models import Dataset, Job, ModelVersion, ResearchGroup


def groups_of(user: Any) -> QuerySet[ResearchGroup]:
    """Research groups ``user`` belongs to (staff: all)."""
    return visible(user, ResearchGroup.objects.all())


def datasets_visible_to(user: Any) -> QuerySet[Dataset]:
    """Datasets of the user's groups, newest first."""
    return visible(user, Dataset.objects.select_related("group", "owner"))


def dataset_get_for_user(user: Any, pk: Any, *, write: bool = False) -> Dataset:
    """One dataset, or ``Http404`` for outsiders."""
    return get_for_user(user, Dataset.objects.select_related("group", "owner"), pk, write=write)


def jobs_visible_to(user: Any) -> QuerySet[Job]:
    """Jobs of the user's groups, newest first."""
    return visible(user, Job.objects.select_related("group", "owner", "dataset", "model_version", "parent"))


def job_get_for_user(user: Any, pk: Any, *, write: bool = False) -> Job:
    """One job, or ``Http404`` for outsiders."""
    return get_for_user(
        user, Job.objects.select_related("group", "owner", "dataset", "model_version", "parent"), pk, write=write
    )


def model_versions_visible_to(user: Any) -> QuerySet[ModelVersion]:
    """Model versions the user may see (shipped, default, and those trained by their groups)."""
    return visible(user, ModelVersion.objects.select_related("parent", "trained_by_job"))


def model_version_get_for_user(user: Any, pk: Any, *, write: bool = False) -> ModelVersion:
    """One model version, or ``Http404``; writing needs staff."""
    return get_for_user(user, ModelVersion.objects.select_related("parent", "trained_by_job"), pk, write=write)


def default_model_version(dims: int = 3) -> ModelVersion | None:
    """The default model version for 2D or 3D data, or None when none is registered."""
    return ModelVersion.objects.filter(dims=dims, status="default").first()


def job_children(job: Job) -> QuerySet[Job]:
    """The jobs whose parent is ``job`` (pipeline steps, refinements)."""
    return Job.objects.filter(parent=job).order_by("id")
