"""The cache against other spellings and bad deploys (issue 10, classes 2, 3 and
4): one resource has one cache identity whatever the spelling of its id or page,
a write is seen through every spelling, evicting any key never serves a stale
read, busy counters do not expire together, and a new release never serves the
old one's entries.
``transaction=True``: bumps run in ``on_commit``, as in production."""
import pytest
from rest_framework.test import APIClient

from core import cache as cache_layer
from core.cache import keys as cache_keys
from tests.cache.helpers import by_id
from tests.conftest import auth_client
from tests.jobs.factories import JobFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _get(path):
    response = APIClient().get(path)
    assert response.status_code == 200, (path, response.content[:200])
    return response


def _keys(prefix: str) -> set[str]:
    return set(cache_layer.backend().scan_prefix(prefix))


def _ttl(logical_key: str):
    return cache_layer.backend().ttl(logical_key)


def _edit(job, title):
    response = auth_client(job.client).patch(f"/api/v1/jobs/{job.pk}/", {"title": title}, format="json")
    assert response.status_code == 200, response.content


# --- class 2: one resource, one cache identity -------------------------------------

DETAIL_SPELLINGS = ["/api/v1/jobs/{pk}/", "/api/v1/jobs/0{pk}/", "/api/v1/jobs/000{pk}/"]
LIST_SPELLINGS = [
    "/api/v1/jobs/",
    "/api/v1/jobs/?page=1",
    "/api/v1/jobs/?page=01",
    "/api/v1/jobs/?per_page=20",
    "/api/v1/jobs/?per_page=020&page=1",
]


def test_every_spelling_of_a_job_is_one_entry_and_sees_the_write():
    job = JobFactory(title="Before")
    urls = [u.format(pk=job.pk) for u in DETAIL_SPELLINGS]
    assert _get(urls[0])["X-Cache"] == "MISS"
    for url in urls[1:]:
        assert _get(url)["X-Cache"] == "HIT", url  # the same entry, not one per spelling
    _edit(job, "After")
    for n, url in enumerate(urls):
        response = _get(url)
        assert response.json()["data"]["title"] == "After", url
        assert response["X-Cache"] == ("MISS" if n == 0 else "HIT")


def test_every_spelling_of_the_first_page_is_one_entry_and_sees_the_write():
    job = JobFactory(title="Before")
    assert _get(LIST_SPELLINGS[0])["X-Cache"] == "MISS"
    for url in LIST_SPELLINGS[1:]:
        assert _get(url)["X-Cache"] == "HIT", url
    _edit(job, "After")
    for url in LIST_SPELLINGS:
        assert by_id(_get(url).json()["data"], job.pk)["title"] == "After", url
    # a repeated filter is read as the view reads it (the last value): the same
    # entry as the value sent once, fresh too (tests/cache/test_query_identity.py
    # goes through every filter)
    assert _get("/api/v1/jobs/?status=open")["X-Cache"] == "MISS"
    assert _get("/api/v1/jobs/?status=open&status=open")["X-Cache"] == "HIT"
    _edit(job, "Again")
    assert by_id(_get("/api/v1/jobs/?status=open&status=open").json()["data"], job.pk)["title"] == "Again"
    # a larger page size than the maximum is the maximum
    assert _get("/api/v1/jobs/?per_page=100")["X-Cache"] == "MISS"
    assert _get("/api/v1/jobs/?per_page=5000")["X-Cache"] == "HIT"


def test_counters_read_often_do_not_expire_together():
    """A confirmed counter with less than half its life left is refreshed by the
    next read (it used to expire 24 h after creation, however busy)."""
    JobFactory()
    _get("/api/v1/jobs/")
    generation = cache_keys.VERSION_PREFIX + cache_keys.GENERATION_SCOPE
    short = cache_keys.VERSION_TTL // 4
    _shorten(generation, short)
    assert _ttl(generation) <= short
    _get("/api/v1/jobs/")  # the fast path's read
    assert _ttl(generation) > cache_keys.VERSION_TTL / 2
    _shorten(generation, short)
    auth_client(JobFactory().client).get("/api/v1/jobs/")  # the DRF path's read
    assert _ttl(generation) > cache_keys.VERSION_TTL / 2


def _shorten(key: str, seconds: int) -> None:
    cache_layer.backend().expire(key, seconds)  # on a Cluster: every group's copy


PUBLIC_READS = ["/api/v1/jobs/", "/api/v1/jobs/{pk}/", "/api/v1/users/{client}/", "/api/v1/jobs/?city={city}"]


def _titles(job) -> list[str]:
    out = []
    for template in PUBLIC_READS:
        url = template.format(pk=job.pk, client=job.client_id, city=job.city)
        data = _get(url).json()["data"]
        if "title" in (data if isinstance(data, dict) else {}):
            out.append(data["title"])
        elif isinstance(data, list):
            out.append(by_id(data, job.pk)["title"])
    return out


def test_evicting_any_key_never_serves_a_stale_read():
    """Warm every public read of a job, then for every key the cache holds
    (counters, entries, locks, statistics) in turn: evict it, write, read
    everything again. Each read shows the write."""
    job = JobFactory(title="t0")
    assert set(_titles(job)) == {"t0"}
    _titles(job)  # hits

    def warm_keys():
        return sorted(k for k in _keys("") if not k.startswith(("throttle", "fail:")))

    rounds = len(warm_keys())
    assert any(k.startswith(cache_keys.VERSION_PREFIX) for k in warm_keys())
    assert any(k.startswith(cache_keys.RESPONSE_PREFIX) for k in warm_keys())
    for n in range(1, rounds + 1):
        present = warm_keys()
        key = present[n % len(present)]
        cache_layer.backend().delete(key)  # evicted before the write (on a Cluster: in every group)
        _edit(job, f"t{n}")
        assert set(_titles(job)) == {f"t{n}"}, key
        _titles(job)  # warm again
        present = warm_keys()
        key = present[n % len(present)]
        cache_layer.backend().delete(key)  # evicted after the write, before the next read
        assert set(_titles(job)) == {f"t{n}"}, key


# --- class 4: a new release never serves the old one's entries --------------------

def test_a_new_release_does_not_serve_the_previous_releases_entries(settings):
    job = JobFactory()
    url = f"/api/v1/jobs/{job.pk}/"
    settings.RESPONSE_CACHE_RELEASE = "release-1"
    assert _get(url)["X-Cache"] == "MISS"
    assert _get(url)["X-Cache"] == "HIT"
    settings.RESPONSE_CACHE_RELEASE = "release-2"
    assert _get(url)["X-Cache"] == "MISS"
    assert _get(url)["X-Cache"] == "HIT"
    settings.RESPONSE_CACHE_RELEASE = "release-1"  # an old process, still running
    assert _get(url)["X-Cache"] == "HIT"


def test_the_default_release_is_a_digest_of_the_code(settings, tmp_path):
    settings.RESPONSE_CACHE_RELEASE = ""
    first = cache_keys.release()
    assert len(first) == 16 and first == cache_keys.release()
    settings.BASE_DIR = tmp_path
    for package in cache_keys.RELEASE_PACKAGES:
        (tmp_path / package).mkdir()
    (tmp_path / "core" / "envelope.py").write_text("A = 1\n")
    cache_keys.release.cache_clear()
    a = cache_keys.release()
    (tmp_path / "core" / "envelope.py").write_text("A = 2\n")
    cache_keys.release.cache_clear()
    assert cache_keys.release() != a
    cache_keys.release.cache_clear()
