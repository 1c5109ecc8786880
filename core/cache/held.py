"""The request path's own Redis connection, one per thread: the fast path's
lookups (``fast_lookup``, and ``lookup`` of a token entry) are one EVALSHA each,
and taking a connection out of redis-py's pool and putting it back, with the
client's command layer around it, cost more CPU than the round trip itself
(about 60 us against 23 us for a PING, measured in process). Each thread keeps a
connection made with the pool's settings (timeouts included) outside the pool,
and checks it as the pool's checkout does, when it has been idle.

On that connection each round trip is one ``send`` and one ``recv`` call: the
socket is blocking, its timeouts (the pool's ``socket_timeout``) set in the
kernel (SO_SNDTIMEO, SO_RCVTIMEO) instead of by Python's socket layer, which
polls before every call on a socket with a timeout; the command is packed by
hiredis in one call; and the checkout's readiness poll runs only after the
connection was idle for a second (IDLE_CHECK_SECONDS). Each of those is a
system call that releases the GIL, which under load hands the thread's CPU to
another thread and costs a context switch to take back (docs/cache.md, "Fast
path"). A connection in steady use has no unread data: every reply is read
whole, and any error drops the connection."""
from __future__ import annotations

import os
import socket
import ssl
import struct
import threading
import time

import redis

try:
    from hiredis import pack_command
except ImportError:  # redis-py packs it (hiredis is in requirements.txt)
    pack_command = None

IDLE_CHECK_SECONDS = 1.0


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
        local.conn, local.pid, local.used = conn, os.getpid(), 0.0
        return conn

    @staticmethod
    def _kernel_timeouts(conn) -> None:
        """The connection's timeout kept by the kernel, the socket blocking (a
        TLS socket keeps Python's timeout)."""
        sock, timeout = conn._sock, conn.socket_timeout
        if sock is None or timeout is None or timeout <= 0 or isinstance(sock, ssl.SSLSocket):
            return
        seconds = int(timeout)
        tv = struct.pack("ll", seconds, int(round((timeout - seconds) * 1_000_000)))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, tv)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, tv)
        sock.settimeout(None)

    @staticmethod
    def _send(conn, *args) -> None:
        if pack_command is None:
            conn.send_command(*args, check_health=False)
        else:
            conn.send_packed_command([pack_command(args)], check_health=False)

    def run(self, client, script, keys: list[str], args: list):
        """``script`` (a registered Script) by EVALSHA, loaded on NOSCRIPT, on this
        thread's connection (through the client without one). Any error drops
        the connection (a late reply must never answer the next command) and is
        raised, as the client raises it."""
        conn = self.connection(client)
        if conn is None:
            return script(keys=keys, args=args, client=client)
        local = self._local
        now = time.monotonic()
        try:
            if conn._sock is None:
                conn.connect()
                self._kernel_timeouts(conn)
            elif now - local.used > IDLE_CHECK_SECONDS:
                # As the pool's checkout: a connection the server closed (EOF
                # raises here) or with unread data starts over.
                try:
                    stale = conn.can_read()
                except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError):
                    stale = True
                if stale:
                    conn.disconnect()
                    conn.connect()
                    self._kernel_timeouts(conn)
            local.used = now
            self._send(conn, "EVALSHA", script.sha, len(keys), *keys, *args)
            try:
                return conn.read_response()
            except redis.exceptions.NoScriptError:
                self._send(conn, "SCRIPT", "LOAD", script.script)
                conn.read_response()
                self._send(conn, "EVALSHA", script.sha, len(keys), *keys, *args)
                return conn.read_response()
        except BaseException:
            conn.disconnect()
            raise
