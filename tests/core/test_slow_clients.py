"""Slow clients cannot freeze the server (issue 10, class 7): gunicorn as ``make
serve`` runs it (config/gunicorn.py), connections that never finish their
request held open, and a health check from another client must still be
answered. With gunicorn's ``sync`` workers (the old setting) every worker sat
in the unfinished read until the 30 s worker timeout, and the health check with
them; with ``gthread`` workers an idle connection holds no thread and a half-sent
request holds one.

The bound below is generous on purpose (a loaded CI machine): it tells "answered"
from "frozen until the worker timeout", it is not a speed target."""
import os
import socket
import time

import pytest
from django.conf import settings

from tests.cache.servers import health_status, sqlite_gunicorn

ANSWERED_WITHIN = 10.0  # seconds; the frozen case lasts until the 30 s worker timeout


@pytest.fixture
def served(tmp_path):
    """gunicorn with the project's config: 2 workers on Redis when REDIS_URL is set
    (as make serve), else 1 (a per-process cache with 2 is refused at start)."""
    workers = 2 if settings.REDIS_URL else 1
    redis = {}
    if settings.REDIS_URL:
        redis.update(REDIS_URL=settings.REDIS_URL, CACHE_KEY_PREFIX=f"slowclients{os.getpid()}")
    with sqlite_gunicorn(
        tmp_path / "db.sqlite3",
        workers=workers,
        args=("--timeout", "30"),
        SECRET_KEY="slow-client-test-" + "k" * 50,
        **redis,
    ) as (_, port):
        yield port, workers


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
            assert health_status(port, timeout=ANSWERED_WITHIN + 30) == 200
            assert time.monotonic() - start < ANSWERED_WITHIN
    finally:
        for s in held:
            s.close()
