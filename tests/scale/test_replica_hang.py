"""A read replica that hangs does not hold requests (core/replica_db, core/replicas).

Two replicas that never answer, each started by the test on a free port:

- one that accepts connections and never answers (a listening socket nobody
  reads): the connection attempt ends after ``REPLICA_CONNECT_TIMEOUT``;
- a proxy to this run's PostgreSQL that, once frozen, neither reads, forwards nor
  accepts -- what a server stopped with SIGSTOP looks like to its clients (the
  kernel still completes connections and acknowledges what is sent, so only a
  deadline kept on the client's side ends the wait): the replica's statement or
  health check ends after ``REPLICA_READ_TIMEOUT``.

Each time: the GET that meets the hung replica answers 200 with the right data,
from the primary, far below the client's patience (this client gives up after
15 s, gunicorn after 30 s); the replica is then skipped -- no later request, and
no health check, connects to it or sends it a statement -- and the health
endpoint reports it unavailable without waiting on it. Needs PostgreSQL and Redis
(no topology).
"""
from __future__ import annotations

import random
import select
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.conf import settings
from django.db import connection

from jobs.models import Job
from tests.cache.servers import Gunicorn, delete_prefix
from tests.cache.world import World

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

API = "/api/v1"
# Far below the client's patience (Api: 15 s): a request that waited on the hung
# replica would time out instead.
BOUND = 10.0


class Silent:
    """A listening socket nobody accepts from: the kernel completes connections,
    nobody ever answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.held = []

    def new_connections(self) -> int:
        """Connections made since the last call (accepted now and held open)."""
        n = 0
        while select.select([self.sock], [], [], 0)[0]:
            self.held.append(self.sock.accept()[0])
            n += 1
        return n

    def close(self):
        for s in [*self.held, self.sock]:
            s.close()


class FreezingProxy:
    """A TCP proxy to PostgreSQL; ``freeze()`` stops it reading, forwarding and
    accepting (as SIGSTOP stops a server), while its sockets stay open."""

    def __init__(self, host: str, port: int):
        self.target = (host, port)
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.running = threading.Event()
        self.running.set()
        self.sockets = [self.listener]
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:  # accepts (and counts) even when frozen; its pumps do not run then
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src, dst):
        try:
            while True:
                self.running.wait()
                data = src.recv(65536)
                if not data:
                    break
                self.running.wait()  # frozen: what was read is never delivered
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def freeze(self):
        self.running.clear()

    def close(self):
        for s in self.sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)  # wakes a pump blocked on it; the server sees the end
            except OSError:
                pass
            s.close()
        self.running.set()


def _skip_unless_real():
    if connection.vendor != "postgresql" or not settings.CACHE_IS_REDIS:
        pytest.skip("needs PostgreSQL and Redis")


def _url(port: int) -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@127.0.0.1:{port}/{db['NAME']}"


@contextmanager
def _serving(replica, **env) -> Iterator[Gunicorn]:
    """gunicorn (1 worker) with ``replica`` as its replica, on a key prefix of its own;
    at the end the server is stopped, the replica closed and the prefix's keys deleted."""
    prefix = f"rh{uuid.uuid4().hex[:8]}"
    server = Gunicorn(workers=1, redis_url=settings.REDIS_URL, key_prefix=prefix, extra_env={
        "DATABASE_REPLICA_URLS": _url(replica.port),
        "REPLICA_PROBE_SECONDS": "600",  # no probe during the test: nothing else contacts the replica
        **env,
    })
    try:
        server.wait_ready(path="/livez")  # ready without asking the replica (the health endpoint would)
        yield server
    finally:
        server.stop()
        replica.close()
        delete_prefix(settings.REDIS_URL, prefix)


def _replica_statements(server) -> dict:
    return {kind: n for (alias, kind), n in server.db_queries().items() if alias == "replica_0"}


def _detail(server, job):
    response = server.api.get(f"{API}/jobs/{job.pk}/")
    assert response.status == 200, response.body
    assert response.data["title"] == job.title
    return response


def test_a_replica_that_accepts_and_never_answers_costs_one_connect_timeout():
    _skip_unless_real()
    silent = Silent()
    with _serving(silent) as server:
        World(random.Random(7))
        jobs = list(Job.objects.order_by("pk"))
        first = _detail(server, jobs[0])  # a miss: its build may read a replica
        assert silent.new_connections() >= 1  # it did try the replica
        others = [_detail(server, job) for job in jobs[1:]]
        for job in jobs:
            assert server.api.get(f"{API}/jobs/?client={job.client_id}").status == 200
        health = server.api.get(f"{API}/health/")
        assert health.status == 200 and health.data["database"] == "ok"
        replica = health.data["replicas"]["replica_0"]
        assert replica["status"] == "unavailable" and "timeout" in replica["reason"], replica
        assert silent.new_connections() == 0  # skipped since: no request, no health check tried again
        assert _replica_statements(server).get("read", 0) == 0
        print(f"replica that accepts and never answers: the first GET {first.elapsed:.2f}s, "
              f"the slowest of the {len(others)} after it {max(r.elapsed for r in others):.3f}s, "
              f"health {health.elapsed:.3f}s")
        assert first.elapsed < BOUND


@pytest.mark.parametrize("pool", ["0", "1"], ids=["persistent connections", "DATABASE_POOL"])
def test_a_replica_that_stops_answering_mid_way_costs_one_read_timeout(pool):
    _skip_unless_real()
    db = connection.settings_dict
    proxy = FreezingProxy(db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432))
    # One thread: the request after the freeze meets the connection the earlier ones opened.
    with _serving(proxy, REPLICA_READ_TIMEOUT="1", DATABASE_POOL=pool, GUNICORN_THREADS="1") as server:
        World(random.Random(8))
        jobs = list(Job.objects.order_by("pk"))
        for job in jobs[:3]:
            _detail(server, job)
        assert _replica_statements(server).get("read", 0) > 0  # the replica served those builds
        proxy.freeze()  # as kill -STOP: its connections stay open, nothing answers
        # A miss: its build meets the frozen replica on the open connection (a statement,
        # or Django's health check), gets no answer, then reads the primary.
        hung = _detail(server, jobs[3])
        after, connections_after = _replica_statements(server), proxy.connections
        others = [_detail(server, job) for job in jobs[4:]]
        for job in jobs:
            assert server.api.get(f"{API}/jobs/?client={job.client_id}").status == 200
        health = server.api.get(f"{API}/health/")
        assert health.status == 200
        replica = health.data["replicas"]["replica_0"]
        assert replica["status"] == "unavailable", replica
        assert "no answer within 1.0 s" in replica["reason"], replica  # REPLICA_READ_TIMEOUT
        assert _replica_statements(server) == after  # skipped since: not one statement more
        if pool == "0":  # (a pool refills itself in the background, where nobody waits on it)
            assert proxy.connections == connections_after  # and no new connection
        print(f"replica stopped mid-way (DATABASE_POOL={pool}): the GET that met it {hung.elapsed:.2f}s, the slowest of the "
              f"{len(others)} after it {max(r.elapsed for r in others):.3f}s, health {health.elapsed:.3f}s")
        assert hung.elapsed < BOUND
