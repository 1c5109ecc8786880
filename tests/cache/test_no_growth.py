"""Issue 10, class 3 (b): a request for a row that does not exist leaves no key
behind. Its reads create the missing counters (the order on a miss needs them
before the database says 404), and the response, not being stored, drops the
ones its own reads created (``versions.drop_created``). Runs on local memory in
the embedded run and on Redis (a real key set, compared before and after) with
REDIS_URL. ``transaction=True``: bumps run in ``on_commit``, as in production."""
import pytest
from rest_framework.test import APIClient

from core import cache as cache_layer
from core.cache import keys as cache_keys
from tests.accounts.factories import UserFactory
from tests.conftest import auth_client
from tests.jobs.factories import JobFactory

pytestmark = pytest.mark.django_db(transaction=True)

MISSING = 999_999_999


def _all_keys() -> dict[str, object]:
    """Every key of this run's cache (counters, entries, locks, token entries,
    statistics) with its value; throttle histories aside (a throttled request
    counts, by design)."""
    b = cache_layer.backend()
    keys = sorted(k for k in b.scan_prefix("") if not k.startswith(("throttle", "fail:", cache_keys.STATS_KEY)))
    if b.grouped:
        # A Cluster: a logical key has a copy per group and get() reads the current
        # group's; the key set (every group's) is what must not grow.
        return dict.fromkeys(keys)
    return {k: b.get(k) for k in keys}


def _warm(client, user=None):
    job = JobFactory(client=user) if user is not None else JobFactory()
    for _ in range(3):  # a token is trusted from its second sight (callers.py)
        assert client.get("/api/v1/jobs/").status_code == 200
        assert client.get(f"/api/v1/jobs/{job.pk}/").status_code == 200
    return job


MISSING_READS = [
    f"/api/v1/jobs/{MISSING}/",
    f"/api/v1/jobs/{MISSING}/?_x=1",
    f"/api/v1/users/{MISSING}/",
    f"/api/v1/users/{MISSING}/reviews/",
    f"/api/v1/users/{MISSING}/reviews-given/?page=1",
    "/api/v1/jobs/?page=999",  # past the end
    "/api/v1/jobs/?min_rate=ten",  # a 400
]


def test_an_anonymous_404_leaves_no_key():
    anon = APIClient()
    job = _warm(anon)
    before = _all_keys()
    for url in MISSING_READS:
        for _ in range(2):
            assert anon.get(url).status_code in (400, 404), url
    after = _all_keys()
    assert after == before, sorted(set(after) ^ set(before))
    # The counters that existed are untouched: the warm entries still hit.
    assert anon.get(f"/api/v1/jobs/{job.pk}/")["X-Cache"] == "HIT"
    assert anon.get("/api/v1/jobs/")["X-Cache"] == "HIT"


def test_a_signed_in_404_leaves_no_key():
    user = UserFactory()
    me = auth_client(user)
    job = _warm(me, user)
    before = _all_keys()
    for url in [*MISSING_READS, f"/api/v1/payments/{MISSING}/", f"/api/v1/jobs/{MISSING}/applications/"]:
        for _ in range(2):
            assert me.get(url).status_code in (400, 404), url
    after = _all_keys()
    assert after == before, sorted(set(after) ^ set(before))
    assert me.get(f"/api/v1/jobs/{job.pk}/")["X-Cache"] == "HIT"


def test_a_row_that_appears_later_is_read_fresh():
    """The 404 dropped the counter it created; the row's first read afterwards
    creates it again, builds and stores, and a write retires that entry."""
    anon = APIClient()
    job = JobFactory(title="Before")
    pk = job.pk
    job.delete()
    counter = cache_keys.VERSION_PREFIX + f"job:{pk}"
    cache_layer.backend().delete(counter)  # as if the id had never been seen (or evicted)
    assert anon.get(f"/api/v1/jobs/{pk}/").status_code == 404
    assert cache_layer.backend().get(counter) is None
    JobFactory(pk=pk, title="Again", client=job.client)
    response = anon.get(f"/api/v1/jobs/{pk}/")
    assert (response.status_code, response.json()["data"]["title"]) == (200, "Again")
    assert anon.get(f"/api/v1/jobs/{pk}/")["X-Cache"] == "HIT"
    auth_client(job.client).patch(f"/api/v1/jobs/{pk}/", {"title": "After"}, format="json")
    assert anon.get(f"/api/v1/jobs/{pk}/").json()["data"]["title"] == "After"


def test_ignored_parameters_leave_no_key():
    anon = APIClient()
    job = _warm(anon)
    before = _all_keys()
    for n in range(5):
        assert anon.get(f"/api/v1/jobs/{job.pk}/?_x={n}")["X-Cache"] == "HIT"
        assert anon.get(f"/api/v1/jobs/?_x={n}&format=json")["X-Cache"] == "HIT"
    assert _all_keys() == before
