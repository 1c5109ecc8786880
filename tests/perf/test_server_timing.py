"""The Server-Timing header (core/middleware.py, docs/API.md "Profiling"): on every
endpoint with PERF_HEADERS on, and its query count is the count pytest-django sees."""
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from tests.accounts.factories import SkillFactory, WorkerUserFactory
from tests.conftest import auth_client
from tests.jobs.factories import ApplicationFactory, JobFactory, SavedJobFactory
from tests.payments.factories import PaymentFactory
from tests.ratings.factories import ReviewFactory

HEADER = re.compile(
    r'^db;dur=(?P<db>\d+\.\d\d);desc="(?P<n>\d+) queries", '
    r'cache;desc="(?P<cache>hit|miss)", '
    r"app;dur=(?P<app>\d+\.\d\d)$"
)


@pytest.fixture
def perf_headers(settings):
    """PERF_HEADERS on (middleware instances are built at a client's first request)."""
    settings.PERF_HEADERS = True


@pytest.fixture
def world(db):
    """One of everything, seen from a worker who applied, saved, was paid and reviewed."""
    worker = WorkerUserFactory()
    job = JobFactory(skills=[SkillFactory(), SkillFactory()])
    ApplicationFactory(job=job, worker=worker)
    SavedJobFactory(job=job, user=worker)
    payment = PaymentFactory(recipient=worker)
    review = ReviewFactory(reviewed=worker)
    return {"worker": worker, "job": job, "payment": payment, "review": review}


def _endpoints(w):
    worker, job = w["worker"], w["job"]
    public = [
        "/api/v1/health/",
        "/api/v1/jobs/",
        "/api/v1/jobs/?status=open&ordering=-rate",
        f"/api/v1/jobs/{job.pk}/",
        "/api/v1/categories/",
        "/api/v1/skills/",
        f"/api/v1/users/{worker.pk}/",
        f"/api/v1/users/{worker.pk}/reviews/",
        f"/api/v1/users/{w['review'].reviewer_id}/reviews-given/",
        "/api/v1/reviews/",
    ]
    private = [
        "/api/v1/users/me/",
        "/api/v1/users/me/balance/",
        "/api/v1/users/me/saved-jobs/",
        "/api/v1/applications/",
        "/api/v1/payments/",
        f"/api/v1/payments/{w['payment'].pk}/",
        f"/api/v1/users/{worker.pk}/payments/",
    ]
    return public, private


def _timing(response) -> re.Match:
    header = response.headers.get("Server-Timing", "")
    match = HEADER.match(header)
    assert match, f"{response.request['PATH_INFO']}: bad Server-Timing {header!r}"
    return match


@pytest.mark.usefixtures("perf_headers")
def test_every_get_endpoint_reports_the_queries_it_ran(world):
    public, private = _endpoints(world)
    anon, worker = APIClient(), auth_client(world["worker"])
    for client, paths in ((anon, public), (worker, private)):
        for path in paths:
            with CaptureQueriesContext(connection) as seen:
                response = client.get(path)
            assert response.status_code == 200, (path, response.content)
            timing = _timing(response)
            assert int(timing["n"]) == len(seen.captured_queries), path
            expected_cache = response.headers.get("X-Cache", "MISS").lower()
            assert timing["cache"] == expected_cache, path
            assert float(timing["app"]) >= float(timing["db"])


@pytest.mark.usefixtures("perf_headers")
def test_count_matches_django_assert_num_queries(world, django_assert_num_queries):
    client = auth_client(world["worker"])
    first = client.get("/api/v1/jobs/")  # warm nothing: measure a MISS below with another query string
    n = int(_timing(first)["n"])
    with django_assert_num_queries(n):
        again = client.get("/api/v1/jobs/?ordering=-created_at")
    assert again.headers["X-Cache"] == "MISS"
    assert int(_timing(again)["n"]) == n


@pytest.mark.usefixtures("perf_headers")
def test_an_anonymous_hit_runs_no_query(world, django_assert_num_queries):
    anon = APIClient()
    assert _timing(anon.get("/api/v1/jobs/"))["cache"] == "miss"
    with django_assert_num_queries(0):
        response = anon.get("/api/v1/jobs/")
    timing = _timing(response)
    assert (timing["n"], timing["cache"]) == ("0", "hit")


@pytest.mark.usefixtures("perf_headers")
def test_writes_and_errors_carry_the_header_too(world):
    worker = auth_client(world["worker"])
    other_job = JobFactory()
    with CaptureQueriesContext(connection) as seen:
        created = worker.post(f"/api/v1/jobs/{other_job.pk}/apply/", {"cover_note": "hi"})
    assert created.status_code == 201
    assert int(_timing(created)["n"]) == len(seen.captured_queries)
    missing = APIClient().get("/api/v1/jobs/999999/")
    assert missing.status_code == 404
    assert _timing(missing)["cache"] in ("hit", "miss")


def test_no_header_when_perf_headers_is_off(settings, db):
    settings.PERF_HEADERS = False
    response = APIClient().get("/api/v1/health/")
    assert "Server-Timing" not in response.headers
