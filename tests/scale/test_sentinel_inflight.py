"""Bumps in flight through Redis Sentinel (docs/cache.md, "Outages", mechanism 1).

This process's cache is the Sentinel master of scripts/topology.py (scale proof 2
runs with REDIS_SENTINELS). The master is paused (``CLIENT PAUSE``) for less than
the sentinels' down-after (1 s), so no failover starts. Two bumps are made in
this process during the pause: the first times out and marks the process
failing, the second is sent without waiting, on the in-flight connection, which
found the master through the sentinels when this process first used it (and
skipped the failover fence's handshake). A reader connected to the master before the pause asks for both
counters after both bumps returned: when the master resumes it must see both.
"""
from __future__ import annotations

import threading
import time

import pytest
import redis

from core import cache as cache_layer
from core.cache.inflight import inflight
from tests.cache.helpers import reset_health, wait_healthy
from tests.cache.servers import resp2_command
from tests.scale.topology import sentinel_master_port

PAUSE_MS = 800  # under the sentinels' down-after-milliseconds (1000)


@pytest.mark.parametrize("pool_ready", [True, False])
def test_bumps_of_a_failing_process_reach_the_paused_sentinel_master_first(topology, settings, pool_ready):
    sentinel = topology.get("sentinel")
    if not sentinel or not settings.REDIS_SENTINELS:
        pytest.skip("needs the cache on the topology's Sentinel set (scale proof 2)")
    port = sentinel_master_port(sentinel)
    assert port, "the sentinels do not agree on a master"
    reset_health()
    scopes = ["inflight-a", "inflight-b"]
    before = {s: v for s, v in cache_layer.get_versions(scopes).items() if s in scopes}
    keys = [cache_layer.backend().version_key(s) for s in scopes]
    db = settings.CACHES["default"]["LOCATION"][0].rsplit("/", 1)[1] or "0"
    reader = redis.Redis(host="127.0.0.1", port=port, db=int(db), socket_timeout=10, protocol=2)
    assert [int(v) for v in reader.mget(keys)] == [before[s] for s in scopes]
    # The in-flight connection was made when this process first used the master, before the pause.
    assert inflight.answered(), inflight.last_error
    if not pool_ready:
        cache_layer.backend()._client().connection_pool.disconnect()
    resp2_command(port, "CLIENT", "PAUSE", PAUSE_MS, "ALL")
    try:
        for scope in scopes:
            cache_layer.bump_now({scope})
        assert cache_layer.health.failing
        seen = {}
        read = threading.Thread(target=lambda: seen.update(values=reader.mget(keys)))
        read.start()
        time.sleep(0.2)  # the reader's MGET is in the master, held by the pause
    finally:
        resp2_command(port, "CLIENT", "UNPAUSE")  # held until the pause ends on Redis 7.0
    read.join(timeout=10)
    assert [int(v) for v in seen["values"]] == [before[s] + 1 for s in scopes]
    wait_healthy(timeout=10)
    deadline = time.monotonic() + 3
    while inflight.owed() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert inflight.owed() == 0
    reset_health()
