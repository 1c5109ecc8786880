"""Shared helpers for the cache-layer tests (owned with tests/cache/test_core_cache.py)."""
import time

import pytest

from core import cache as cache_layer


def wait_healthy(timeout: float = 3.0) -> None:
    """Wait until this process trusts the cache again (probe thread recovered)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cache_layer.health.healthy():
            return
        time.sleep(0.02)
    raise AssertionError("the cache layer did not recover")


def reset_health() -> None:
    """Forget any outage a previous test left behind (its probe thread stops by itself)."""
    health = cache_layer.health
    with health.lock:
        health.failing = False
        health.fence_needed = False
        health.pending_bumps.clear()


@pytest.fixture
def healthy_cache():
    reset_health()
    yield
    reset_health()


def version(scope: str) -> int:
    return cache_layer.get_versions([scope])[scope]


def get_json(client, url, **extra):
    response = client.get(url, **extra)
    body = response.json() if response.content else None
    return response, body


def fresh(caller, path):
    """GET right after a write: must be a MISS (the write retired the entry)."""
    response = caller.get(path)
    assert response.status_code == 200, response.content
    assert response["X-Cache"] == "MISS", "a write must retire the cached entry"
    return response.json()["data"]


def by_id(rows, pk):
    """The row with id ``pk`` of a list payload."""
    return next(row for row in rows if row["id"] == pk)


def one_redis_backend(why_not: str):
    """The backend, when it is exactly one Redis (RedisBackend); otherwise the
    test is skipped, saying ``why_not`` (a Cluster or Sentinel, local memory)."""
    from core.cache.backends import backend
    from core.cache.redis_backend import RedisBackend

    b = backend()
    if type(b) is not RedisBackend:
        pytest.skip(why_not)
    return b
