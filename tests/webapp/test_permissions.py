"""The permission matrix: owner, group member, outsider and staff over every API route,
download and page. Outsiders get 404 everywhere; read-only tokens cannot write."""

from __future__ import annotations

import pytest
from django.urls import NoReverseMatch, get_resolver, reverse

READS = [
    "/api/datasets/{dataset}",
    "/api/datasets/{dataset}/download",
    "/api/jobs/{job}",
    "/api/jobs/{job}/result",
    "/api/jobs/{job}/files/summary.json",
    "/api/models/{model}",
]
WRITES = [
    ("/api/jobs/{job}/rerun", {"params": {"algorithm": "ER**5"}}, 201),
    ("/api/jobs/{job}/cancel", {}, 200),
]


def _fill(route: str, records) -> str:
    return route.format(dataset=records.dataset.pk, job=records.job.pk, model=records.model.pk)


@pytest.mark.parametrize("route", READS)
@pytest.mark.parametrize("role,expected", [("owner", 200), ("member", 200), ("staff", 200), ("outsider", 404)])
def test_every_read_route_and_download_is_open_to_the_group_and_404_for_outsiders(cast, records, route, role, expected):
    user = cast.people[role]
    for client in (cast.api(user), cast.client(user)):
        response = client.get(_fill(route, records))
        assert response.status_code == expected, (role, route, response.content[:200])


@pytest.mark.parametrize("route,body,ok", WRITES)
@pytest.mark.parametrize("role", ["owner", "member", "staff", "outsider"])
def test_job_writes_are_open_to_the_group_and_404_for_outsiders(cast, records, route, body, ok, role):
    response = cast.api(cast.people[role]).post(_fill(route, records), body, content_type="application/json")
    assert response.status_code == (404 if role == "outsider" else ok), response.content[:300]


def test_outsider_gets_404_when_submitting_a_job_on_another_groups_dataset(cast, records):
    body = {"kind": "phase", "dataset": records.dataset.pk}
    response = cast.api(cast.outsider).post("/api/jobs", body, content_type="application/json")
    assert response.status_code == 404
    response = cast.api(cast.member).post("/api/jobs", body, content_type="application/json")
    assert response.status_code == 201


def test_outsider_gets_404_when_refining_another_groups_job(cast, records):
    body = {"kind": "refine", "parent": records.job.pk, "dataset": None, "group": cast.beta.pk}
    response = cast.api(cast.outsider).post("/api/jobs", body, content_type="application/json")
    assert response.status_code == 404


def test_lists_show_only_the_users_groups(cast, records):
    for role, count in (("owner", 1), ("member", 1), ("staff", 1), ("outsider", 0)):
        client = cast.api(cast.people[role])
        assert len(client.get("/api/datasets").json()) == count, role
        assert len(client.get("/api/jobs").json()) == count, role
        assert len(client.get("/api/models").json()) == count, role


def test_anonymous_requests_get_401_and_a_wrong_token_too(cast, records):
    from django.test import Client

    assert Client().get(f"/api/jobs/{records.job.pk}").status_code == 401
    assert Client(HTTP_AUTHORIZATION="Bearer cdi_wrong").get("/api/jobs").status_code == 401


def test_read_only_token_reads_but_gets_403_on_every_write(cast, records):
    client = cast.api(cast.owner, read_only=True)
    assert client.get(f"/api/jobs/{records.job.pk}").status_code == 200
    assert client.get(f"/api/jobs/{records.job.pk}/result").status_code == 200
    for route, body, _ok in WRITES:
        assert client.post(_fill(route, records), body, content_type="application/json").status_code == 403
    body = {"kind": "phase", "dataset": records.dataset.pk}
    assert client.post("/api/jobs", body, content_type="application/json").status_code == 403


def test_only_staff_promote_or_retire_models_and_outsiders_get_404(cast, records):
    url = f"/api/models/{records.model.pk}/promote"
    assert cast.api(cast.outsider).post(url).status_code == 404
    assert cast.api(cast.member).post(url).status_code == 403
    response = cast.api(cast.staff).post(url)
    assert response.status_code == 200 and response.json()["status"] == "default"
    # Once default, a model is visible to everyone signed in; retiring it is still staff-only.
    assert cast.api(cast.outsider).get(f"/api/models/{records.model.pk}").status_code == 200
    assert cast.api(cast.outsider).post(f"/api/models/{records.model.pk}/retire").status_code == 403
    assert cast.api(cast.staff).post(f"/api/models/{records.model.pk}/retire").json()["status"] == "retired"


def test_session_writes_need_the_csrf_token(cast, records):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(cast.owner)
    response = client.post(f"/api/jobs/{records.job.pk}/cancel")
    assert response.status_code == 403


def _viewer_routes_with_pk() -> list[str]:
    """Names of the viewer's URL patterns that take a primary key (those that exist now)."""
    try:
        resolver = get_resolver().namespace_dict["viewer"][1]
    except KeyError:
        return []
    names = []
    for pattern in resolver.url_patterns:
        name = getattr(pattern, "name", None)
        if name and "<int:pk>" in str(pattern.pattern):
            names.append(name)
    return names


def _reverse(name: str, pk: int) -> str | None:
    for kwargs in ({"pk": pk}, {"pk": pk, "action": "promote"}):
        try:
            return reverse(f"viewer:{name}", kwargs=kwargs)
        except NoReverseMatch:
            continue
    return None


def test_outsider_gets_404_for_every_viewer_page_about_another_groups_rows(cast, records):
    names = _viewer_routes_with_pk()
    if not names:
        pytest.skip("the viewer pages are not there yet")
    client = cast.client(cast.outsider)
    for name in names:
        pk = records.dataset.pk if "dataset" in name else records.model.pk if "model" in name else records.job.pk
        url = _reverse(name, pk)
        if url is None:
            continue
        # 405 (wrong method) reveals nothing; the method the page accepts must give 404.
        codes = {client.get(url).status_code, client.post(url).status_code}
        assert codes <= {404, 405} and 404 in codes, (name, url, codes)
