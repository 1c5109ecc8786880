"""DATABASE_POOL: Django's psycopg pool behind a setting, sized from the environment."""
import json
import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.db import connection

PRINT_DB = (
    "import json; from django.conf import settings; d = settings.DATABASES['default'];"
    "print(json.dumps({'pool': d['OPTIONS'].get('pool'), 'max_age': d['CONN_MAX_AGE']}))"
)


def settings_with(**env) -> dict:
    full = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", **env}
    out = subprocess.run([sys.executable, "manage.py", "shell", "-v", "0", "-c", PRINT_DB], cwd=settings.BASE_DIR,
                         env=full, capture_output=True, text=True, timeout=60, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_pool_sized_from_the_environment():
    url = "postgres://u@127.0.0.1:5432/x"
    assert settings_with(DATABASE_URL=url, DATABASE_POOL="0") == {"pool": None, "max_age": 60}
    assert settings_with(DATABASE_URL=url, DATABASE_POOL="1", GUNICORN_THREADS="4") == {
        "pool": {"min_size": 1, "max_size": 4, "timeout": 10.0}, "max_age": 0,
    }
    assert settings_with(DATABASE_URL=url, DATABASE_POOL="1", DATABASE_POOL_MIN_SIZE="2",
                         DATABASE_POOL_MAX_SIZE="8", DATABASE_POOL_TIMEOUT="2.5")["pool"] == {
        "min_size": 2, "max_size": 8, "timeout": 2.5,
    }


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_pooled_process_reuses_its_connection_across_requests():
    """A fresh process with DATABASE_POOL=1 and DATABASE_POOL_MAX_SIZE=2 serves six
    requests: each takes a connection from the pool and gives it back at its end,
    and all six run on at most two server connections (backend pids)."""
    d = connection.settings_dict
    url = f"postgres://{d['USER']}@{d['HOST'] or '127.0.0.1'}:{d['PORT'] or 5432}/{d['NAME']}"
    script = (
        "import json; from django.db import connection; from django.test import Client;"
        "from django.core.signals import request_finished, request_started;"
        "pids = [];"
        "exec('for _ in range(6):\\n"
        " request_started.send(sender=None)\\n"
        " c = connection.cursor(); c.execute(\"SELECT pg_backend_pid()\"); pids.append(c.fetchone()[0])\\n"
        " request_finished.send(sender=None)\\n"
        " assert connection.connection is None');"
        "s = connection.pool.get_stats();"
        "print(json.dumps({'pids': pids, 'max': connection.pool.max_size, 'size': s['pool_size']}))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "DATABASE_URL": url,
           "DATABASE_POOL": "1", "DATABASE_POOL_MAX_SIZE": "2"}
    out = subprocess.run([sys.executable, "manage.py", "shell", "-v", "0", "-c", script], cwd=settings.BASE_DIR,
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["max"] == 2 and 1 <= result["size"] <= 2
    assert len(result["pids"]) == 6 and len(set(result["pids"])) <= 2, result


POOL_CHECKS = r'''
import json, time
import psycopg
from django.core.signals import request_finished, request_started
from django.db import connection
from psycopg_pool import ConnectionPool
from core.primary_db import base as primary

round_trips = []
plain = ConnectionPool.check_connection
ConnectionPool.check_connection = staticmethod(lambda conn: (round_trips.append(1), plain(conn)))

def request():
    request_started.send(sender=None)
    try:
        c = connection.cursor(); c.execute("SELECT pg_backend_pid()"); return c.fetchone()[0]
    finally:
        request_finished.send(sender=None)

out = {"installed": None, "phases": []}
def phase(name, n):
    before = len(round_trips)
    pids = [request() for _ in range(n)]
    out["phases"].append({"name": name, "pids": pids, "round_trips": len(round_trips) - before})

phase("warm", 10)
out["installed"] = connection.pool._check is primary.check_pooled
# What a restart does to every idle backend: FATAL, then the connection closes.
with psycopg.connect(**{k: v for k, v in connection.get_connection_params().items() if k != "cursor_factory"},
                     autocommit=True) as killer:
    for pid in set(out["phases"][0]["pids"]):
        killer.execute("SELECT pg_terminate_backend(%s)", (pid,))
time.sleep(0.2)
phase("after terminate", 10)
primary.IDLE_CHECK_SECONDS = 0.0
time.sleep(0.01)
phase("idle", 3)
print(json.dumps(out))
'''


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_pool_checks_a_connection_by_round_trip_only_when_it_may_be_broken(tmp_path):
    """A fresh process with DATABASE_POOL=1 serves ten requests: psycopg_pool's
    round-trip check runs for a new connection only, not on every check-out
    (core/primary_db). Then every pooled backend is terminated (what a restart or
    failover does to them): the next ten requests all succeed, on new backends, the
    dead connection found by the check without a failed request. A connection idle
    past IDLE_CHECK_SECONDS gets the round trip on each check-out."""
    d = connection.settings_dict
    url = f"postgres://{d['USER']}@{d['HOST'] or '127.0.0.1'}:{d['PORT'] or 5432}/{d['NAME']}"
    script = tmp_path / "pool_checks.py"
    script.write_text(POOL_CHECKS)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "DATABASE_URL": url,
           "DATABASE_POOL": "1", "DATABASE_POOL_MAX_SIZE": "2"}
    out = subprocess.run([sys.executable, "manage.py", "shell", "-v", "0", "-c", f"exec(open({str(script)!r}).read())"],
                         cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["installed"] is True
    warm, after, idle = result["phases"]
    assert len(warm["pids"]) == 10 and warm["round_trips"] <= len(set(warm["pids"])) <= 2, warm
    assert len(after["pids"]) == 10 and not set(after["pids"]) & set(warm["pids"]), after
    assert 1 <= after["round_trips"] <= 4, after  # the dead one(s) found, the new one(s) checked once
    assert idle["round_trips"] == 3, idle
