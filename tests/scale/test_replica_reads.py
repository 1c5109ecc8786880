"""Read replicas against real engines: scripts/topology.py's PostgreSQL primary and
its streaming replica, which applies WAL ``recovery_min_apply_delay`` late.

Run with DATABASE_URL (the primary) and DATABASE_REPLICA_URLS (the replica) of the
topology: the test database is created on the primary and streams to the replica.
gunicorn A takes the writes, gunicorn B (2 workers) the reads.

- A write, then at once a GET of what it changed: the replica provably does not
  have the write yet (asked directly), the GET shows it all the same (the build's
  read floor is past the replica's position, so it read the primary).
- GETs of data nobody wrote lately do read the replica (counted by B's metrics).
- Nothing but reads ever reached the replica (B's and A's metrics: no write, no
  locking read) -- a hot standby would also refuse them with a 5xx.
"""
from __future__ import annotations

import random
import time
import uuid

import psycopg
import pytest
from django.conf import settings
from django.db import connection

from jobs.models import Job
from tests.cache.servers import Gunicorn, delete_prefix, gunicorn_pair
from tests.cache.world import World

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

API = "/api/v1"
ROUNDS = 20


def replica_settings():
    return [db for alias, db in settings.DATABASES.items() if alias.startswith("replica_")]


@pytest.fixture
def servers():
    if not replica_settings():
        pytest.skip("needs DATABASE_REPLICA_URLS (scripts/topology.py)")
    with gunicorn_pair(f"rr{uuid.uuid4().hex[:8]}", read_workers=2) as pair:
        yield pair


def replica_connection():
    r = replica_settings()[0]
    return psycopg.connect(host=r["HOST"], port=r["PORT"], user=r["USER"], dbname=connection.settings_dict["NAME"],
                           autocommit=True)


def test_a_lagging_replica_is_read_only_when_it_has_the_write(servers):
    a, b = servers
    world = World(random.Random(3))
    jobs = list(Job.objects.order_by("pk"))
    with replica_connection() as replica:
        # Wait until the replica has the world (it applies WAL late by design).
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            row = replica.execute("SELECT count(*) FROM jobs_job").fetchone()
            if row[0] == len(jobs):
                break
            time.sleep(0.1)
        replica_reads_before = b.db_queries().get(("replica_0", "read"), 0)
        # Untouched data, read twice by B (miss then hit): the miss may and does read the replica.
        for job in jobs:
            assert b.api.get(f"{API}/jobs/{job.pk}/").status == 200
        replica_reads_idle = b.db_queries().get(("replica_0", "read"), 0) - replica_reads_before
        assert replica_reads_idle > 0, "reads of data nobody wrote lately never went to the replica"

        behind = 0
        for n in range(ROUNDS):
            job = jobs[n % len(jobs)]
            title = f"Round {n} {uuid.uuid4().hex[:6]}"
            # Warm the detail (a HIT before the write: the read after it must be invalidated).
            b.api.get(f"{API}/jobs/{job.pk}/")
            b.api.get(f"{API}/jobs/{job.pk}/?_warm=1")
            response = a.api.request("PATCH", f"{API}/jobs/{job.pk}/", token=world.tok(job.client_id),
                                     body={"title": title})
            assert response.status == 200, response.body
            on_replica = replica.execute("SELECT title FROM jobs_job WHERE id = %s", [job.pk]).fetchone()[0]
            behind += on_replica != title
            for path in (f"{API}/jobs/{job.pk}/", f"{API}/jobs/?client={job.client_id}&per_page=100"):
                got = b.api.get(path)
                assert got.status == 200
                shown = got.data["title"] if isinstance(got.data, dict) else next(
                    j["title"] for j in got.data if j["id"] == job.pk)
                assert shown == title, f"stale read of {path}: {shown!r} after {title!r} (replica had {on_replica!r})"
    counts_b, counts_a = b.db_queries(), a.db_queries()
    print(f"replica behind the write it was asked about right after it returned: {behind}/{ROUNDS}; "
          f"replica reads for {len(jobs)} idle details: {replica_reads_idle:.0f}; B statements by database: "
          f"{ {f'{d}/{k}': int(v) for (d, k), v in sorted(counts_b.items())} }")
    # The delay is real: most of the time the replica did not have the write yet.
    assert behind >= ROUNDS // 2, f"the replica was behind only {behind}/{ROUNDS} times: is the apply delay set?"
    for counts in (counts_a, counts_b):
        assert counts.get(("replica_0", "write"), 0) == 0
        assert counts.get(("replica_0", "locking_read"), 0) == 0


def test_a_replica_that_is_down_is_skipped_at_once():
    """A replica URL nobody answers at (a free port: connection refused): every
    GET, misses included, is answered from the primary without waiting; health says
    the replica is unavailable. Needs only PostgreSQL and Redis (no topology)."""
    if connection.vendor != "postgresql" or not settings.CACHE_IS_REDIS:
        pytest.skip("needs PostgreSQL and Redis")
    from tests.cache.servers import free_port

    prefix = f"rd{uuid.uuid4().hex[:8]}"
    down = f"postgres://postgres@127.0.0.1:{free_port()}/nothing"
    server = Gunicorn(workers=1, redis_url=settings.REDIS_URL, key_prefix=prefix,
                      extra_env={"DATABASE_REPLICA_URLS": down})
    try:
        server.wait_ready()
        World(random.Random(4))
        slowest = 0.0
        for job in Job.objects.order_by("pk"):
            for path in (f"{API}/jobs/{job.pk}/", f"{API}/jobs/?client={job.client_id}"):
                response = server.api.get(path)
                assert response.status == 200, (path, response.status)
                slowest = max(slowest, response.elapsed)
        health = server.api.get(f"{API}/health/")
        assert health.status == 200
        assert health.data["replicas"]["replica_0"]["status"] == "unavailable"
        counts = server.db_queries()
        print(f"replica down: slowest GET {slowest:.3f}s; statements {counts}")
        assert counts.get(("replica_0", "read"), 0) == 0
        # Far below the connect timeout: a refused replica is never waited on.
        assert slowest < 1.5
    finally:
        server.stop()
        delete_prefix(settings.REDIS_URL, prefix)
