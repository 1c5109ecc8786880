"""A cached list's total kept under its coarse versions (core/cache/counts.py):
a miss that only a row scope or another page caused skips the COUNT; a
membership change (a coarse bump) counts again; each filter has its own total."""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core import cache as cache_layer
from jobs.models import JobStatus
from tests.accounts.factories import ClientUserFactory
from tests.conftest import auth_client
from tests.jobs.factories import CategoryFactory, JobFactory

pytestmark = pytest.mark.django_db(transaction=True)


def miss(client, path):
    """A MISS of ``path``: its total and whether it ran a COUNT."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
    assert response.status_code == 200, response.content
    assert response["X-Cache"] == "MISS"
    counted = any("COUNT(" in q["sql"].upper() for q in queries.captured_queries)
    return response.json()["pagination"]["total_items"], counted


def reused(result, total):
    """The total is right and, on one Redis or local memory, taken from the memo
    (no COUNT). On a Cluster each group keeps its own copies of the version
    counters, so only misses whose key falls in the same group share a total
    (docs/scaling.md): there the total is checked, the COUNT may run."""
    assert result[0] == total
    if not cache_layer.backend().grouped:
        assert result[1] is False


@pytest.fixture
def busting(settings):
    """``_b`` kept in the key (as the bench sets it): every ``_b`` a MISS."""
    settings.RESPONSE_CACHE_KEY_EXTRA_PARAMS = ("_b",)


def test_another_page_or_a_forced_miss_reuses_the_total(anon, busting):
    JobFactory.create_batch(3)
    assert miss(anon, "/api/v1/jobs/?per_page=2") == (3, True)
    reused(miss(anon, "/api/v1/jobs/?per_page=2&page=2"), 3)
    reused(miss(anon, "/api/v1/jobs/?per_page=2&_b=1"), 3)
    reused(miss(anon, "/api/v1/jobs/?_b=2"), 3)


def test_a_filter_has_its_own_total(anon, busting):
    JobFactory.create_batch(2)
    JobFactory(status=JobStatus.FILLED)
    assert miss(anon, "/api/v1/jobs/?status=open") == (2, True)
    assert miss(anon, "/api/v1/jobs/?status=filled") == (1, True)
    reused(miss(anon, "/api/v1/jobs/?status=open&page=1&_b=1"), 2)


def test_a_membership_change_counts_again_a_row_change_does_not(anon):
    job = JobFactory(title="Before")
    JobFactory()
    assert miss(anon, "/api/v1/jobs/") == (2, True)
    # An edit of a shown job retires the entry (row scope), not the total.
    response = auth_client(job.client).patch(f"/api/v1/jobs/{job.pk}/", {"title": "After"}, format="json")
    assert response.status_code == 200
    assert miss(anon, "/api/v1/jobs/") == (2, False)
    # A new job changes which rows the list holds: a coarse bump, a new count.
    body = {"title": "New", "category": CategoryFactory().pk, "city": "Köln", "rate": "12.00",
            "start_at": "2031-01-01T08:00:00Z", "end_at": "2031-01-01T16:00:00Z"}
    assert auth_client(ClientUserFactory()).post("/api/v1/jobs/", body, format="json").status_code == 201
    assert miss(anon, "/api/v1/jobs/") == (3, True)
