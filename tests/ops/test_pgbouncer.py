"""Shiftboard behind PgBouncer in transaction mode (docs/operations.md): a private
PgBouncer on a free port in front of the shared PostgreSQL; through it, a part of
the suite that takes row locks and runs money flows (in a child pytest), and a
gunicorn with Django's pool whose readiness follows PgBouncer going away and back.

Needs PostgreSQL (the suite's second pass) and the Debian package pgbouncer
(CI installs it); skipped otherwise, except that under CI=true a missing
pgbouncer fails them (tests/prerequisites.py)."""
import os
import subprocess
import sys
import time

import psycopg
import pytest
from django.conf import settings
from django.db import connection

from tests.cache.servers import Gunicorn
from tests.prerequisites import needs

from .pgbouncer import PgBouncer, binary

pytestmark = [
    pytest.mark.postgres,
    needs(binary() is not None, "pgbouncer not installed (apt-get install pgbouncer)"),
]

# Row locks and concurrent requests over HTTP, the money flows, the slow-query hook.
SUITE_PART = ["tests/jobs/test_concurrency.py", "tests/payments", "tests/ops/test_slow_queries.py"]


def _db():
    d = connection.settings_dict
    return d["HOST"] or "127.0.0.1", int(d["PORT"] or 5432), d["USER"], d.get("PASSWORD") or ""


@pytest.fixture
def bouncer():
    host, port, user, password = _db()
    b = PgBouncer(host, port, user, password)
    b.start()
    yield b
    b.cleanup()


def _drop_database(name: str) -> None:
    host, port, user, password = _db()
    with psycopg.connect(host=host, port=port, user=user, password=password or None, dbname="postgres",
                         autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_part_of_the_suite_passes_through_pgbouncer(bouncer):
    host, port, user, password = _db()
    base_name = f"{connection.settings_dict['NAME']}_pgb"
    child_test_db = f"test_{base_name}"
    _drop_database(child_test_db)
    env = {
        **os.environ,
        "DATABASE_URL": bouncer.url(user, base_name),
        "DISABLE_SERVER_SIDE_CURSORS": "1",
        "CACHE_KEY_PREFIX": f"sbpgb{os.getpid()}",
    }
    if settings.REDIS_URL:
        env["REDIS_URL"] = settings.REDIS_URL
    try:
        # --reuse-db: the child creates its test database through PgBouncer but does
        # not drop it there (PgBouncer's idle server connections would block the
        # DROP); it is dropped below, directly.
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-o", "addopts=-p no:cacheprovider", "-x", "-q", "--reuse-db", *SUITE_PART],
            cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=900,
        )
    finally:
        bouncer.stop()
        _drop_database(child_test_db)
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:] + bouncer.log_tail()
    assert " passed" in summary and " failed" not in summary, summary
    assert int(summary.split(" passed")[0].split()[-1]) >= 20, summary


@pytest.mark.django_db(transaction=True)
def test_pooled_gunicorn_through_pgbouncer_readiness_follows_the_database(bouncer):
    user = _db()[2]
    server = Gunicorn(
        workers=1,
        redis_url=settings.REDIS_URL,
        key_prefix=f"sbpgbg{os.getpid()}",
        extra_env={
            "DATABASE_URL": bouncer.url(user, connection.settings_dict["NAME"]),
            "DATABASE_POOL": "1",
            "DATABASE_POOL_MAX_SIZE": "2",
            "DISABLE_SERVER_SIDE_CURSORS": "1",
        },
    )
    try:
        server.wait_ready()
        assert server.api.get("/readyz").status == 200
        assert server.api.get("/api/v1/jobs/").status == 200
        bouncer.stop()
        ready = server.api.get("/readyz")
        assert ready.status == 503 and ready.body["checks"]["database"]["ok"] is False
        assert server.api.get("/livez").status == 200
        bouncer.start()
        deadline = time.monotonic() + 15
        while server.api.get("/readyz").status != 200:
            assert time.monotonic() < deadline, "not ready again after PgBouncer came back"
            time.sleep(0.2)
        assert server.api.get("/api/v1/jobs/?again=1").status == 200
    finally:
        server.stop()
