"""THE one access helper used by every page, API route and download.

Rules: a user sees the rows of the research groups they belong to; staff see everything;
outsiders get ``Http404`` (never 403, so the existence of a row is not revealed). A request
authenticated with a read-only API token may read but not write (``PermissionDenied``, 403).
Model versions have no group: every signed-in user sees the default and shipped ones and the
candidates trained by their groups' jobs; only staff change them.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.core.exceptions import PermissionDenied
from django.db.models import Model, Q, QuerySet
from django.http import Http404

M = TypeVar("M", bound=Model)

READ_ONLY_ATTR = "_cdi_read_only_token"


def is_read_only(user: Any) -> bool:
    """True when the request was authenticated with a read-only API token."""
    return bool(getattr(user, READ_ONLY_ATTR, False))


def require_write_allowed(user: Any) -> None:
    """Raise ``PermissionDenied`` for anonymous users and read-only tokens."""
    if not getattr(user, "is_authenticated", False):
        raise PermissionDenied("sign in first")
    if is_read_only(user):
        raise PermissionDenied("this API token is read-only")


def visible(user: Any, queryset: QuerySet[M]) -> QuerySet[M]:
    """Restrict ``queryset`` to the rows ``user`` may see (by group, or staff)."""
    if not getattr(user, "is_authenticated", False):
        return queryset.none()
    if user.is_staff:
        return queryset
    model = queryset.model
    if model._meta.label == "core.ModelVersion":
        return queryset.filter(
            Q(trained_by_job__isnull=True)
            | Q(status="default")
            | Q(trained_by_job__group__members=user)
        ).distinct()
    if model._meta.label == "core.ResearchGroup":
        return queryset.filter(members=user)
    return queryset.filter(group__members=user)


def get_for_user(user: Any, queryset: QuerySet[M], pk: Any, *, write: bool = False) -> M:
    """Return the row ``pk`` of ``queryset`` if ``user`` may see it (write: change it).

    Raises ``Http404`` for outsiders, anonymous users and unknown ids, and
    ``PermissionDenied`` for read-only tokens (and non-staff changing a model version).
    """
    try:
        obj = visible(user, queryset).get(pk=pk)
    except (queryset.model.DoesNotExist, ValueError, TypeError):
        raise Http404("not found") from None
    if write:
        require_write_allowed(user)
        if obj._meta.label == "core.ModelVersion" and not user.is_staff:
            raise PermissionDenied("only staff change model versions")
    return obj


def group_for_user(user: Any, group_id: Any = None, *, write: bool = True):
    """Return the research group ``group_id`` of ``user`` (or their only group when None).

    Raises ``Http404`` when the user is not a member, ``PermissionDenied`` for read-only tokens
    and ``ValueError`` when None is given and the user belongs to several groups.
    """
    from webapp.core.models import ResearchGroup

    if write:
        require_write_allowed(user)
    groups = visible(user, ResearchGroup.objects.all())
    if group_id is None:
        mine = list(ResearchGroup.objects.filter(members=user)) if user.is_authenticated else []
        if len(mine) == 1:
            return mine[0]
        if not mine:
            raise Http404("you belong to no research group")
        raise ValueError("you belong to several groups: say which one with 'group'")
    return get_for_user(user, groups, group_id)
