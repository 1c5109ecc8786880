"""The cache layer on its own (core/cache/), through test-only views
(tests/cache/testviews.py). Runs on the local-memory cache in the embedded run and
on Redis (the Lua scripts) in CI's PostgreSQL + Redis run."""
import logging
import threading
import time

import pytest
from django.db import transaction
from rest_framework.test import APIClient

from core import cache as cache_layer
from core.cache import response as response_module
from jobs.models import Category
from tests.accounts.factories import UserFactory
from tests.cache import testviews
from tests.cache.helpers import get_json, healthy_cache, reset_health, version, wait_healthy  # noqa: F401
from tests.conftest import auth_client

pytestmark = [
    pytest.mark.urls("tests.cache.testviews"),
    pytest.mark.usefixtures("healthy_cache"),
    pytest.mark.django_db,
]


@pytest.fixture(autouse=True)
def _views():
    testviews.reset()
    yield
    testviews.reset()


def test_miss_then_hit_with_the_same_envelope():
    client = APIClient()
    first, body1 = get_json(client, "/t/thing/")
    second, body2 = get_json(client, "/t/thing/")
    assert first.status_code == second.status_code == 200
    assert (first["X-Cache"], second["X-Cache"]) == ("MISS", "HIT")
    assert testviews.BUILDS["count"] == 1
    for body in (body1, body2):
        assert body["success"] is True and body["message"] is None
        assert body["data"]["value"] == 1
        assert body["correlation_id"] and body["timestamp"]
    # The envelope tail is made per response, not cached.
    assert body1["correlation_id"] != body2["correlation_id"]
    assert {k: v for k, v in body1.items() if k not in ("correlation_id", "timestamp")} == {
        k: v for k, v in body2.items() if k not in ("correlation_id", "timestamp")
    }


def test_a_hit_does_no_query(django_assert_num_queries):
    client = APIClient()
    client.get("/t/categories/")
    with django_assert_num_queries(0):
        response = client.get("/t/categories/")
    assert response["X-Cache"] == "HIT"


def test_bumping_a_scope_retires_only_entries_that_depend_on_it():
    client = APIClient()
    client.get("/t/thing/?scope=a")
    client.get("/t/thing/?scope=b")
    testviews.STATE["value"] = 2
    cache_layer.bump_now({"a"})
    ra, ba = get_json(client, "/t/thing/?scope=a")
    rb, bb = get_json(client, "/t/thing/?scope=b")
    assert (ra["X-Cache"], ba["data"]["value"]) == ("MISS", 2)
    # b was not bumped: still the old entry (this is what the bump is for).
    assert (rb["X-Cache"], bb["data"]["value"]) == ("HIT", 1)


def test_bump_is_one_increment_per_scope():
    before = cache_layer.get_versions(["x", "y"])
    cache_layer.bump_now({"x", "y"})
    after = cache_layer.get_versions(["x", "y"])
    assert after["x"] == before["x"] + 1 and after["y"] == before["y"] + 1


def test_key_ignores_query_order_but_not_values():
    client = APIClient()
    assert client.get("/t/thing/?a=1&b=2")["X-Cache"] == "MISS"
    assert client.get("/t/thing/?b=2&a=1")["X-Cache"] == "HIT"
    assert client.get("/t/thing/?a=1&b=3")["X-Cache"] == "MISS"
    assert client.get("/t/thing/?a=1")["X-Cache"] == "MISS"


@pytest.mark.django_db
def test_private_entries_are_keyed_by_user():
    x, y = UserFactory(), UserFactory()
    as_x, as_y = auth_client(x), auth_client(y)
    rx, bx = get_json(as_x, "/t/mine/")
    assert (rx["X-Cache"], bx["data"]["id"]) == ("MISS", x.pk)
    assert as_x.get("/t/mine/")["X-Cache"] == "HIT"
    ry, by = get_json(as_y, "/t/mine/")
    assert ry["X-Cache"] == "MISS"
    assert (by["data"]["id"], by["data"]["email"]) == (y.pk, y.email)
    ra, ba = get_json(APIClient(), "/t/mine/")
    assert ba["data"]["id"] is None
    # A change to the caller (user:<id>) retires the caller's private entries only.
    cache_layer.bump_now({f"user:{x.pk}"})
    assert as_x.get("/t/mine/")["X-Cache"] == "MISS"
    assert as_y.get("/t/mine/")["X-Cache"] == "HIT"


@pytest.mark.django_db
def test_a_hit_never_skips_the_permission_check():
    user = UserFactory()
    assert auth_client(user).get("/t/auth-only/")["X-Cache"] == "MISS"
    assert auth_client(user).get("/t/auth-only/")["X-Cache"] == "HIT"
    response = APIClient().get("/t/auth-only/")
    assert response.status_code == 401
    assert "X-Cache" not in response


def test_errors_are_not_cached_and_release_the_rebuild_lock():
    client = APIClient()
    start = time.monotonic()
    for _ in range(3):
        response = client.get("/t/missing/")
        assert response.status_code == 404
    # A lock left behind would make each later request wait STAMPEDE_WAIT_SECONDS.
    assert time.monotonic() - start < cache_layer.STAMPEDE_WAIT_SECONDS
    assert testviews.BUILDS["count"] == 3


def test_a_response_with_a_message_is_not_cached():
    client = APIClient()
    assert client.get("/t/message/").json()["message"] == "hello"
    second = client.get("/t/message/")
    assert second["X-Cache"] == "MISS" and second.json()["message"] == "hello"
    assert testviews.BUILDS["count"] == 2


def test_every_entry_and_counter_has_a_ttl(settings):
    settings.RESPONSE_CACHE_TTL = 120
    APIClient().get("/t/thing/?scope=ttl")
    backend = cache_layer.backend()
    entries = [k for k in backend.scan_prefix(cache_layer.RESPONSE_PREFIX) if "ThingView" in k]
    assert len(entries) == 1
    assert 0 < backend.ttl(entries[0]) <= 120
    counter_ttl = backend.ttl(cache_layer.VERSION_PREFIX + "ttl")
    assert counter_ttl is not None and 0 < counter_ttl <= cache_layer.VERSION_TTL


def test_a_missing_counter_restarts_from_a_fresh_larger_value():
    old = version("evicted")
    cache_layer.bump_now({"evicted"})
    cache_layer.bump_now({"evicted"})
    seen = {old, old + 1, old + 2}
    assert version("evicted") == old + 2
    cache_layer.backend().delete(cache_layer.VERSION_PREFIX + "evicted")  # as if evicted
    time.sleep(0.001)
    fresh = version("evicted")
    assert fresh > max(seen)
    # A bump of a missing counter does not restart at 1 either.
    cache_layer.backend().delete(cache_layer.VERSION_PREFIX + "evicted")
    time.sleep(0.001)
    cache_layer.bump_now({"evicted"})
    assert version("evicted") > fresh


def test_an_evicted_counter_does_not_revive_old_entries():
    client = APIClient()
    client.get("/t/thing/?scope=ev")
    for _ in range(3):  # entries exist under several versions
        cache_layer.bump_now({"ev"})
        client.get("/t/thing/?scope=ev")
    testviews.STATE["value"] = 99
    cache_layer.backend().delete(cache_layer.VERSION_PREFIX + "ev")
    response, body = get_json(client, "/t/thing/?scope=ev")
    assert (response["X-Cache"], body["data"]["value"]) == ("MISS", 99)


@pytest.mark.django_db(transaction=True)
def test_bump_waits_for_commit_and_rollback_bumps_nothing():
    before = version("tx")
    with transaction.atomic():
        cache_layer.bump("tx")
        assert version("tx") == before  # not before the data is visible
    assert version("tx") == before + 1
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            cache_layer.bump("tx")
            raise RuntimeError("roll back")
    assert version("tx") == before + 1
    cache_layer.bump("tx")  # outside a transaction: at once
    assert version("tx") == before + 2


@pytest.mark.django_db(transaction=True)
def test_versions_are_read_before_the_database_query(monkeypatch):
    events = []
    real_versions = cache_layer.get_versions

    def recording_versions(scopes):
        events.append("versions")
        return real_versions(scopes)

    def record_query(execute, sql, params, many, context):
        events.append("query")
        return execute(sql, params, many, context)

    monkeypatch.setattr(response_module, "get_versions", recording_versions)
    # The anonymous fast path reads them in its one-round-trip lookup (Redis).
    backend_cls = type(cache_layer.backend())
    real_fast = backend_cls.fast_lookup

    def recording_fast(self, *args, **kwargs):
        events.append("versions")
        return real_fast(self, *args, **kwargs)

    monkeypatch.setattr(backend_cls, "fast_lookup", recording_fast)
    from django.db import connection

    with connection.execute_wrapper(record_query):
        APIClient().get("/t/categories/")
    assert events[0] == "versions" and "query" in events


@pytest.mark.django_db(transaction=True)
def test_a_reader_that_raced_a_writer_stores_old_data_under_the_old_version():
    Category.objects.create(name="Before", slug="before")
    client = APIClient()

    def write_after_the_reader_queried():
        # The writer commits and bumps after the reader read the old row.
        Category.objects.filter(slug="before").update(name="After")
        cache_layer.bump("categories")

    testviews.HOOKS["after_query"] = write_after_the_reader_queried
    racing, body = get_json(client, "/t/categories/")
    assert body["data"]["names"] == ["Before"]  # it started before the write
    later, body = get_json(client, "/t/categories/")
    assert later["X-Cache"] == "MISS"
    assert body["data"]["names"] == ["After"]


def test_stampede_one_build_for_concurrent_misses():
    testviews.STATE["sleep"] = 0.2
    n = 8
    barrier = threading.Barrier(n)
    results = []

    def hit():
        client = APIClient()
        barrier.wait()
        response = client.get("/t/thing/?scope=hot")
        results.append((response.status_code, response["X-Cache"], response.json()["data"]["value"]))

    threads = [threading.Thread(target=hit) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == n
    assert all(status == 200 and value == 1 for status, _, value in results)
    assert testviews.BUILDS["count"] <= 2, testviews.BUILDS
    assert sum(1 for _, xc, _ in results if xc == "HIT") >= n - 2


def test_hit_and_miss_are_counted_per_endpoint():
    metric = cache_layer.CACHE_REQUESTS
    endpoint = "ThingView.get"
    hits0 = metric.labels(endpoint, "hit")._value.get()
    misses0 = metric.labels(endpoint, "miss")._value.get()
    cache_layer.backend().reset_stats()
    client = APIClient()
    client.get("/t/thing/?scope=m")
    client.get("/t/thing/?scope=m")
    client.get("/t/thing/?scope=m")
    assert metric.labels(endpoint, "hit")._value.get() - hits0 == 2
    assert metric.labels(endpoint, "miss")._value.get() - misses0 == 1
    stats = cache_layer.backend().stats()
    assert stats[f"{endpoint}|lookup"] == 3 and stats[f"{endpoint}|miss"] == 1


def test_server_timing_says_hit_or_miss(settings):
    # PERF_HEADERS is read when the middleware is built: build a fresh client.
    settings.PERF_HEADERS = True
    client = APIClient()
    miss = client.get("/t/thing/?scope=st")
    hit = client.get("/t/thing/?scope=st")
    assert 'cache;desc="miss"' in miss["Server-Timing"]
    assert 'cache;desc="hit"' in hit["Server-Timing"]
    assert 'desc="0 queries"' in hit["Server-Timing"]


# --- failures (simulated in this process; tests/cache/test_redis_failure.py uses a real Redis) ---


class _Broken(Exception):
    pass


class CacheSwitch:
    """Makes every backend operation raise (``down()``) until ``up()``."""

    OPERATIONS = ("versions", "bump", "ping", "lookup", "get", "store", "release")

    def __init__(self, monkeypatch):
        self.monkeypatch = monkeypatch
        self.cls = type(cache_layer.backend())
        self.saved = {name: getattr(self.cls, name) for name in self.OPERATIONS}

    def down(self):
        def fail(*args, **kwargs):
            raise _Broken("connection refused")

        for name in self.OPERATIONS:
            self.monkeypatch.setattr(self.cls, name, fail)

    def up(self):
        for name, fn in self.saved.items():
            self.monkeypatch.setattr(self.cls, name, fn)


@pytest.fixture
def switch(monkeypatch):
    switch = CacheSwitch(monkeypatch)
    yield switch
    switch.up()
    reset_health()


def test_cache_down_answers_from_the_database_and_logs_once(switch, caplog):
    client = APIClient()
    client.get("/t/thing/")
    with caplog.at_level(logging.WARNING, logger="shiftboard.cache"):
        switch.down()
        for value in (1, 2, 3):
            testviews.STATE["value"] = value
            response, body = get_json(client, "/t/thing/")
            assert response.status_code == 200
            assert response["X-Cache"] == "MISS" and body["data"]["value"] == value
        cache_layer.bump_now({"things"})
        switch.up()
        wait_healthy()
    response, body = get_json(client, "/t/thing/")
    assert body["data"]["value"] == 3
    messages = [r.getMessage() for r in caplog.records]
    assert sum("cache unavailable" in m for m in messages) == 1, messages
    assert sum("available again" in m for m in messages) == 1, messages


def test_bumps_missed_during_an_outage_are_delivered_and_fenced(switch):
    client = APIClient()
    client.get("/t/thing/?scope=p")
    assert client.get("/t/thing/?scope=p")["X-Cache"] == "HIT"
    generation = version(cache_layer.GENERATION_SCOPE)
    # The write happens while the cache is down: its bump cannot be delivered.
    switch.down()
    testviews.STATE["value"] = 2
    cache_layer.bump_now({"p"})
    assert "p" in cache_layer.health.pending_bumps
    assert not cache_layer.health.healthy()
    switch.up()
    wait_healthy()
    assert cache_layer.health.pending_bumps == set()
    assert version(cache_layer.GENERATION_SCOPE) > generation
    response, body = get_json(client, "/t/thing/?scope=p")
    assert (response["X-Cache"], body["data"]["value"]) == ("MISS", 2)


def test_outage_fence_retires_every_entry_from_before_the_outage(switch):
    """A reader that saw the outage (no write of its own) still fences: another
    process may have written during it."""
    client = APIClient()
    client.get("/t/thing/?scope=untouched")
    generation = version(cache_layer.GENERATION_SCOPE)
    switch.down()
    assert client.get("/t/thing/?scope=untouched")["X-Cache"] == "MISS"  # bypass
    switch.up()
    wait_healthy()
    assert version(cache_layer.GENERATION_SCOPE) > generation
    assert client.get("/t/thing/?scope=untouched")["X-Cache"] == "MISS"
    assert client.get("/t/thing/?scope=untouched")["X-Cache"] == "HIT"


def test_cache_stats_command_prints_hit_ratio_and_live_keys():
    import json
    from io import StringIO

    from django.core.management import call_command

    cache_layer.backend().reset_stats()
    client = APIClient()
    for _ in range(4):
        client.get("/t/thing/?scope=job:41&scope=job:42")  # 1 miss, 3 hits
    client.get("/t/thing/?scope=jobs")  # 1 miss
    out = StringIO()
    call_command("cache_stats", "--json", stdout=out)
    stats = json.loads(out.getvalue())
    assert (stats["lookups"], stats["hits"], stats["misses"]) == (5, 3, 2)
    assert stats["hit_ratio"] == 0.6
    assert stats["endpoints"]["ThingView.get"]["hit_ratio"] == 0.6
    assert stats["version_counters"]["job:<id>"] == 2 and stats["version_counters"]["jobs"] == 1
    assert stats["responses"]["ThingView.get"] == 2
    text = StringIO()
    call_command("cache_stats", "--reset", stdout=text)
    assert "hit ratio: 60.0% (3 hits, 2 misses)" in text.getvalue()
    assert "job:<id>" in text.getvalue()
    assert cache_layer.backend().stats() == {}
