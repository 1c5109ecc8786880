"""A read replica that is promoted is no longer read (core.replicas, "not replicating").

The test builds a streaming replica of its own: ``pg_basebackup -R`` of
scripts/topology.py's primary (where the test database lives) into a new data
directory, started on a free port as the ``postgres`` user, no apply delay. gunicorn
(1 worker) has it as its only replica. Then:

- GETs of data nobody wrote lately read it (``shiftboard_db_queries_total``);
  /readyz says ``ok``, ``shiftboard_db_replica_replicating`` 1;
- ``pg_ctl promote``: the server leaves recovery and takes writes of its own -- a
  job's title changed there only, and a WAL switch that puts its own position past
  the primary's (so the position check alone would let it pass any read floor);
- after ``REPLICA_PROBE_SECONDS`` (the router's re-check interval) GETs of every
  job, each a miss: not one read reaches the promoted server, none shows the title
  that exists only there; /readyz and /api/v1/health/ say ``not_replicating`` with
  the reason (200, never a 5xx), /metrics says replicating 0 (the alert's gauge)
  and up 1 (it answers).

Needs the topology's PostgreSQL (``make scale-proofs`` starts it) and Redis.
"""
from __future__ import annotations

import random
import shutil
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.db import connection

from jobs.models import Job
from tests.cache.servers import Gunicorn, delete_prefix
from tests.cache.world import World
from tests.scale.topology import script

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

API = "/api/v1"
PROBE_SECONDS = 1.0
DIVERGED = "Only on the promoted server"


def _pg(*args: str) -> str:
    return script.run([str(script.PG_BIN / args[0]), *args[1:]], as_pg=True, timeout=120)


def _connect(port: int) -> psycopg.Connection:
    db = connection.settings_dict
    return psycopg.connect(host="127.0.0.1", port=port, user=db["USER"], dbname=db["NAME"], autocommit=True)


def _until(what: str, ok, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ok():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def own_replica(topology):
    """A streaming replica of the topology's primary on a free port: (port, data dir)."""
    if "pg" not in topology:
        pytest.skip("the topology has no PostgreSQL")
    if connection.settings_dict["PORT"] and int(connection.settings_dict["PORT"]) != topology["pg"]["primary"]["port"]:
        pytest.skip("DATABASE_URL is not the topology's primary")
    primary_port = topology["pg"]["primary"]["port"]
    data = Path(topology["pg"]["primary"]["data"]).parent / f"promoted-{uuid.uuid4().hex[:8]}"
    port = script.free_port()
    _pg("pg_basebackup", "-h", "127.0.0.1", "-p", str(primary_port), "-U", script.PG_USER, "-D", str(data),
        "-R", "-X", "stream", "-c", "fast", "--no-sync")
    # Its own port, no apply delay (the topology's replica applies WAL late on purpose).
    script.run(["bash", "-c", f"cat >> {data / 'postgresql.conf'} <<'EOF'\nport = {port}\n"
                              "recovery_min_apply_delay = 0\nEOF"], as_pg=True)
    try:
        _pg("pg_ctl", "-D", str(data), "-l", str(data / "server.log"), "-w", "start")
        yield port, data
    finally:
        script.run([str(script.PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                   as_pg=True, check=False)
        shutil.rmtree(data, ignore_errors=True)


def _replica_reads(server) -> float:
    return server.db_queries().get(("replica_0", "read"), 0)


def _gauges(server) -> dict[str, float]:
    import re

    pattern = r'^(shiftboard_db_replica_\w+)\{alias="replica_0"\} (\S+)$'
    return {name: float(value) for name, value in re.findall(pattern, server.metrics(), flags=re.M)}


def test_a_promoted_replica_is_no_longer_read_and_is_reported(own_replica):
    if not settings.CACHE_IS_REDIS:
        pytest.skip("needs Redis")
    port, data = own_replica
    db = connection.settings_dict
    prefix = f"rp{uuid.uuid4().hex[:8]}"
    server = Gunicorn(workers=1, redis_url=settings.REDIS_URL, key_prefix=prefix, extra_env={
        "DATABASE_REPLICA_URLS": f"postgres://{db['USER']}@127.0.0.1:{port}/{db['NAME']}",
        "REPLICA_PROBE_SECONDS": str(PROBE_SECONDS),
    })
    try:
        server.wait_ready(path="/livez")
        World(random.Random(11))
        jobs = list(Job.objects.order_by("pk"))
        with _connect(port) as replica:
            _until("the replica to replay the world", lambda: replica.execute(
                "SELECT count(*) FROM jobs_job").fetchone()[0] == len(jobs))

            # Following the primary: it serves reads, and says so.
            for job in jobs:
                assert server.api.get(f"{API}/jobs/{job.pk}/").status == 200
            ready = server.api.get("/readyz")
            assert ready.status == 200
            assert ready.body["checks"]["replica_lag"]["replicas"]["replica_0"]["status"] == "ok"
            assert _gauges(server)["shiftboard_db_replica_replicating"] == 1.0
            reads_following = _replica_reads(server)
            assert reads_following > 0, "reads of data nobody wrote lately never went to the replica"

            # Promoted: a timeline of its own, a write of its own, and its own position
            # past the primary's.
            _pg("pg_ctl", "-D", str(data), "-w", "promote")
            _until("the promotion", lambda: replica.execute("SELECT pg_is_in_recovery()").fetchone()[0] is False)
            target = jobs[0]
            replica.execute("UPDATE jobs_job SET title = %s WHERE id = %s", [DIVERGED, target.pk])
            replica.execute("SELECT pg_switch_wal()")
            replica.execute("CREATE TABLE promoted_only (x int)")
            own = replica.execute("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint").fetchone()[0]
            with connection.cursor() as cursor:
                cursor.execute("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint")
                primary = cursor.fetchone()[0]
            assert own > primary, "the promoted server's position should pass the primary's (any floor)"

        # Past the router's re-check interval: the next read asks the server again.
        time.sleep(PROBE_SECONDS + 0.2)
        fresh = uuid.uuid4().hex[:8]
        for job in jobs:
            got = server.api.get(f"{API}/jobs/{job.pk}/?_fresh={fresh}")  # a miss: a build under a floor
            assert got.status == 200, got.body
            assert got.data["title"] == job.title, f"read from the promoted server: {got.data['title']!r}"
        listing = server.api.get(f"{API}/jobs/?client={target.client_id}&per_page=100&_fresh={fresh}")
        assert listing.status == 200
        assert DIVERGED not in {j["title"] for j in listing.data}
        assert _replica_reads(server) == reads_following, "a read went to the promoted server"

        ready = server.api.get("/readyz")
        assert ready.status == 200 and ready.body["status"] == "ready"
        check = ready.body["checks"]["replica_lag"]
        entry = check["replicas"]["replica_0"]
        assert check["ok"] is False and entry["ok"] is False
        assert entry["status"] == "not_replicating" and "promoted" in entry["reason"], entry
        health = server.api.get(f"{API}/health/")
        assert health.status == 200
        assert health.data["replicas"]["replica_0"]["status"] == "not_replicating"
        gauges = _gauges(server)
        assert gauges["shiftboard_db_replica_replicating"] == 0.0
        assert gauges["shiftboard_db_replica_up"] == 1.0
        counts = server.db_queries()
        print(f"promoted replica: {reads_following:.0f} replica reads before the promotion, none after; "
              f"its position {own} past the primary's {primary}; statements "
              f"{ {f'{d}/{k}': int(v) for (d, k), v in sorted(counts.items())} }; reason: {entry['reason']}")
        assert counts.get(("replica_0", "write"), 0) == 0
    finally:
        server.stop()
        delete_prefix(settings.REDIS_URL, prefix)
