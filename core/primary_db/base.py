"""PostgreSQL for the primary: django-prometheus's PostgreSQL backend, whose
connection pool (``DATABASE_POOL=1``) checks a connection before handing it out
without a round trip where a cheaper look can tell.

psycopg_pool's own check (``ConnectionPool.check_connection``, what Django installs
with ``CONN_HEALTH_CHECKS``) sends an empty statement every time a request takes a
connection: a round trip to the database on every request that reads it, a cache
miss or a write, for a connection that almost always came back from the previous
request a few milliseconds earlier. ``check_pooled`` sends that statement only when
the connection may be broken:

- psycopg already knows it is closed or broken: refused at once;
- the server said something while it sat idle in the pool (its socket is readable
  or hung up): a restart (``pg_ctl restart``, a failover that stops the old
  primary), ``pg_terminate_backend``, ``idle_session_timeout`` all send a
  ``FATAL`` and close the connection, which one ``poll()`` sees without waiting;
- it has not been handed out for ``IDLE_CHECK_SECONDS`` (or ever): a firewall or
  NAT that forgets an idle connection says nothing, so the round trip stays for
  those.

A connection that fails the check is discarded and the pool hands out another one
(psycopg_pool), so a database restart still costs no failed request
(tests/ops/test_pool.py kills the pooled connections under a running server).
"""
from __future__ import annotations

import select
import time

import psycopg
from django_prometheus.db.backends.postgresql.base import DatabaseWrapper as PostgresWrapper
from psycopg_pool import ConnectionPool

# A connection not handed out for this long gets psycopg_pool's round-trip check.
IDLE_CHECK_SECONDS = 10.0
_WATCHED = select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP


def check_pooled(conn: psycopg.Connection) -> None:
    """The pool's check (raises when ``conn`` must not be handed out): see the module."""
    if conn.closed or conn.broken:
        raise psycopg.OperationalError("the pooled connection is closed")
    now = time.monotonic()
    last = getattr(conn, "_shiftboard_handed_out", None)
    conn._shiftboard_handed_out = now
    if last is None or now - last > IDLE_CHECK_SECONDS or _server_spoke(conn):
        ConnectionPool.check_connection(conn)


def _server_spoke(conn: psycopg.Connection) -> bool:
    """Whether anything is waiting on the idle connection's socket (data, EOF, an
    error): an idle connection in autocommit has nothing to read unless the server
    ended it (or sent an unprompted message; the round trip then settles it)."""
    poller = select.poll()
    poller.register(conn.fileno(), _WATCHED)
    return bool(poller.poll(0))


class DatabaseWrapper(PostgresWrapper):
    @property
    def pool(self):
        pool = super().pool
        # Django builds the pool with psycopg_pool's round-trip check when
        # CONN_HEALTH_CHECKS is on; it is replaced here, once per pool.
        if pool is not None and getattr(pool, "_check", None) is ConnectionPool.check_connection:
            pool._check = check_pooled
        return pool
