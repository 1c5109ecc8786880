"""Slow clients cannot freeze the server (issue 10, class 7): gunicorn as ``make
serve`` runs it (config/gunicorn.py), connections that never finish their
request held open, and a health check from another client must still be
answered. With gunicorn's ``sync`` workers (the old setting) every worker sat
in the unfinished read until the 30 s worker timeout, and the health check with
them; with ``gthread`` workers an idle connection holds no thread and a half-sent
request holds one.

The bound below is generous on purpose (a loaded CI machine): it tells "answered"
from "frozen until the worker timeout", it is not a speed target."""
import http.client
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from tests.cache.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
ANSWERED_WITHIN = 10.0  # seconds; the frozen case lasts until the 30 s worker timeout


@pytest.fixture
def served(tmp_path):
    """gunicorn with the project's config: 2 workers on Redis when REDIS_URL is set
    (as make serve), else 1 (a per-process cache with 2 is refused at start)."""
    port = free_port()
    workers = 2 if settings.REDIS_URL else 1
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.base",
        SECRET_KEY="slow-client-test-" + "k" * 50,
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="0",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        LOG_LEVEL="WARNING",
    )
    if settings.REDIS_URL:
        env.update(REDIS_URL=settings.REDIS_URL, CACHE_KEY_PREFIX=f"slowclients{os.getpid()}")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "config.wsgi", "-c", str(ROOT / "config" / "gunicorn.py"),
         "--workers", str(workers), "--bind", f"127.0.0.1:{port}", "--timeout", "30", "--no-control-socket"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            if _health(port, timeout=2) == 200:
                break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("gunicorn did not start: " + proc.stderr.read().decode(errors="replace")[-2000:])
        time.sleep(0.2)
    yield port, workers
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def _health(port: int, timeout: float) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/api/v1/health/", headers={"Host": "127.0.0.1"})
        return conn.getresponse().status
    finally:
        conn.close()


def test_idle_and_half_sent_requests_do_not_stop_a_health_check(served):
    port, workers = served
    held = []
    try:
        # Per worker: one connection that sends nothing and one that stops in the
        # middle of its headers (accepted by whichever worker; at least as many
        # as there are sync workers to block).
        for _ in range(2 * workers):
            idle = socket.create_connection(("127.0.0.1", port))
            half = socket.create_connection(("127.0.0.1", port))
            half.sendall(b"GET /api/v1/health/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            held += [idle, half]
        time.sleep(0.5)  # let the workers pick them up
        for _ in range(3):
            start = time.monotonic()
            assert _health(port, timeout=ANSWERED_WITHIN + 30) == 200
            assert time.monotonic() - start < ANSWERED_WITHIN
    finally:
        for s in held:
            s.close()
