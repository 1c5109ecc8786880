"""The fast path for anonymous public hits (core.cache.AnonymousHitMiddleware):
the same response as the DRF path, without DRF, sessions or auth; only for
anonymous JSON GETs of public AllowAny endpoints; a miss falls through to DRF
with the lookup handed over (counted once)."""
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

import core.cache as core_cache
from accounts import services as account_services
from core.cache.middleware import make_view
from tests.accounts.factories import ClientUserFactory, SkillFactory
from tests.conftest import auth_client
from tests.jobs.factories import CategoryFactory, JobFactory
from tests.ratings.factories import ReviewFactory

pytestmark = pytest.mark.django_db(transaction=True)

COMPARED_HEADERS = ["X-Cache", "Content-Type", "Allow", "Vary", "X-Frame-Options", "Content-Length"]


def public_paths():
    review = ReviewFactory()
    job = JobFactory(skills=[SkillFactory()], category=CategoryFactory())
    return [
        "/api/v1/jobs/",
        "/api/v1/jobs/?per_page=5&ordering=-rate",
        f"/api/v1/jobs/{job.pk}/",
        "/api/v1/categories/",
        "/api/v1/skills/",
        f"/api/v1/users/{job.client_id}/",
        "/api/v1/reviews/",
        f"/api/v1/users/{review.reviewed_id}/reviews/",
        f"/api/v1/users/{review.reviewer_id}/reviews-given/",
    ]


def without_tail(response):
    body = json.loads(response.content)
    assert body["correlation_id"] == response["X-Request-ID"]
    assert body["timestamp"].endswith("Z")
    del body["correlation_id"], body["timestamp"]
    return body


def test_same_response_as_the_drf_path(dispatches):
    for path in public_paths():
        anon = APIClient()
        first = anon.get(path)
        assert first.status_code == 200 and first["X-Cache"] == "MISS", path
        stored = len(dispatches)
        fast = anon.get(path)
        assert len(dispatches) == stored, f"{path}: the hit went through DRF"
        # A session cookie (an unknown session: still anonymous) takes the DRF path.
        anon.cookies["sessionid"] = "unknown"
        slow = anon.get(path)
        assert len(dispatches) == stored + 1
        assert fast["X-Cache"] == slow["X-Cache"] == "HIT", path
        assert without_tail(fast) == without_tail(slow), path
        for header in COMPARED_HEADERS:
            assert fast.get(header) == slow.get(header), f"{path}: {header}"
        assert set(fast.headers) == set(slow.headers), path
        assert fast.content.startswith(b'{"success":true,"data":')


def test_hit_without_queries_and_counted(dispatches):
    JobFactory()
    anon = APIClient()
    anon.get("/api/v1/jobs/")
    before = core_cache.backend().stats()
    metric = core_cache.CACHE_REQUESTS.labels("JobViewSet.list", "hit")
    hits_before = metric._value.get()
    with CaptureQueriesContext(connection) as ctx:
        response = anon.get("/api/v1/jobs/")
    assert response["X-Cache"] == "HIT"
    assert len(ctx.captured_queries) == 0
    assert metric._value.get() == hits_before + 1
    after = core_cache.backend().stats()
    assert after["JobViewSet.list|lookup"] == before["JobViewSet.list|lookup"] + 1
    assert after.get("JobViewSet.list|miss") == before.get("JobViewSet.list|miss")


def test_a_miss_is_looked_up_once_and_stored_by_drf(dispatches):
    JobFactory()
    core_cache.backend().reset_stats()
    anon = APIClient()
    assert anon.get("/api/v1/jobs/?page=1")["X-Cache"] == "MISS"
    assert core_cache.backend().stats() == {"JobViewSet.list|lookup": 1, "JobViewSet.list|miss": 1}
    assert anon.get("/api/v1/jobs/?page=1")["X-Cache"] == "HIT"
    assert dispatches == ["/api/v1/jobs/"]


def test_row_scopes_are_checked_on_the_fast_path(dispatches):
    client = ClientUserFactory(last_name="Before")
    JobFactory(client=client)
    anon = APIClient()
    anon.get("/api/v1/jobs/")
    assert anon.get("/api/v1/jobs/")["X-Cache"] == "HIT"
    account_services.user_update(user=client, user_fields={"last_name": "After"}, profile_fields={})
    response = anon.get("/api/v1/jobs/")
    assert response["X-Cache"] == "MISS"
    assert response.json()["data"][0]["client"]["last_name"] == "After"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"HTTP_ACCEPT": "text/html"},
        {"HTTP_ACCEPT": "text/html,application/json;q=0.9"},
        {"HTTP_ACCEPT": "application/xml"},
        {"QUERY_STRING": "format=api"},
    ],
)
def test_not_json_goes_to_drf(dispatches, kwargs):
    JobFactory()
    anon = APIClient()
    anon.get("/api/v1/jobs/")
    n = len(dispatches)
    response = anon.get("/api/v1/jobs/", **kwargs)
    assert len(dispatches) == n + 1
    assert response.get("X-Cache") != "HIT" or response.status_code == 200


def test_accept_json_or_wildcard_takes_the_fast_path(dispatches):
    JobFactory()
    anon = APIClient()
    anon.get("/api/v1/jobs/")
    n = len(dispatches)
    for accept in ["application/json", "*/*", "application/json, text/plain, */*"]:
        assert anon.get("/api/v1/jobs/", HTTP_ACCEPT=accept)["X-Cache"] == "HIT"
    assert len(dispatches) == n


def test_callers_with_credentials_and_private_endpoints_go_to_drf(dispatches):
    user = ClientUserFactory()
    JobFactory()
    APIClient().get("/api/v1/jobs/")  # stored
    api = auth_client(user)
    n = len(dispatches)
    assert api.get("/api/v1/jobs/")["X-Cache"] == "HIT"  # a token: the DRF path (auth runs)
    assert len(dispatches) == n + 1
    # Private endpoints are never eligible: an anonymous caller gets DRF's 401.
    assert APIClient().get("/api/v1/users/me/saved-jobs/").status_code == 401
    assert APIClient().get("/api/v1/users/me/").status_code == 401
    assert len(dispatches) == n + 3


def test_no_public_endpoint_is_throttled_on_get():
    """The fast path skips DRF's throttles: it is only taken where a GET has none."""
    middleware = core_cache.AnonymousHitMiddleware(lambda request: None)
    from django.test import RequestFactory

    for path in public_paths():
        request = RequestFactory().get(path)
        found = middleware._target(request)
        assert found is not None, f"{path} should be eligible"
        target, match = found
        view = make_view(match, match.func.cls, request)
        view.action = target["meta"]["name"]
        assert view.get_throttles() == []
