"""The request path's own Redis connection, one per thread: the fast path's
lookups (``fast_lookup``, and ``lookup`` of a token entry) are one EVALSHA each,
and taking a connection out of redis-py's pool and putting it back, with the
client's command layer around it, cost more CPU than the round trip itself
(about 60 us against 23 us for a PING, measured in process). Each thread keeps a
connection made with the pool's settings (timeouts included) outside the pool,
and checks it as the pool's checkout does. docs/cache.md, "Fast path"."""
from __future__ import annotations

import os
import threading

import redis


class HeldConnections:
    def __init__(self):
        self._local = threading.local()

    def connection(self, client):
        """This thread's connection to a plain Redis, or ``None`` for any other
        pool (Sentinel's connections fence a failover: they stay in its pool)."""
        local = self._local
        conn = getattr(local, "conn", None)
        if conn is not None and local.pid == os.getpid():
            return conn
        pool = client.connection_pool
        if type(pool) is not redis.ConnectionPool:
            return None
        conn = pool.connection_class(**pool.connection_kwargs)
        local.conn, local.pid = conn, os.getpid()
        return conn

    def run(self, client, script, keys: list[str], args: list):
        """``script`` (a registered Script) by EVALSHA, loaded on NOSCRIPT, on this
        thread's connection (through the client without one). Any error drops
        the connection (a late reply must never answer the next command) and is
        raised, as the client raises it."""
        conn = self.connection(client)
        if conn is None:
            return script(keys=keys, args=args, client=client)
        try:
            if conn._sock is None:
                conn.connect()
            else:
                # As the pool's checkout: a connection the server closed (EOF
                # raises here) or with unread data starts over.
                try:
                    stale = conn.can_read()
                except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError):
                    stale = True
                if stale:
                    conn.disconnect()
                    conn.connect()
            conn.send_command("EVALSHA", script.sha, len(keys), *keys, *args, check_health=False)
            try:
                return conn.read_response()
            except redis.exceptions.NoScriptError:
                conn.send_command("SCRIPT", "LOAD", script.script, check_health=False)
                conn.read_response()
                conn.send_command("EVALSHA", script.sha, len(keys), *keys, *args, check_health=False)
                return conn.read_response()
        except BaseException:
            conn.disconnect()
            raise
