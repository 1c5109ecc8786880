"""The request path's own Redis connection, one per thread: the fast path's
lookups (``fast_lookup``, and ``lookup`` of a token entry) are one EVALSHA each,
and so are a miss's reads of its versions; a miss's store (entry, lock, count)
is one send of three commands, and a list's kept total one GET. Taking a
connection out of redis-py's pool and putting it back, with the client's
command layer around it, cost more CPU than the round trip itself (about 60 us
against 23 us for a PING, measured in process). Each thread keeps a connection
made with the pool's settings (timeouts included) outside the pool, and checks
it before every use as the pool's checkout does. Bumps keep using the pool
(their connection may stay open through a pause: outage.py), which gets a
connection made ready for them when a thread's own is first made; so does
inflight.py, for the bumps of a process that knows Redis is failing (``_connect``).

On that connection a round trip is the checkout's readiness poll, one ``send``
and one ``recv``: the socket is blocking, its timeouts (the pool's
``socket_timeout``) kept by the kernel (SO_SNDTIMEO, SO_RCVTIMEO) instead of by
Python's socket layer, which polls before every call on a socket with a
timeout; and the command is packed by hiredis in one call. Each poll saved is a
system call that releases the GIL, which under load costs a context switch to
take back (docs/cache.md, "Fast path")."""
from __future__ import annotations

import os
import socket
import ssl
import struct
import threading

import redis

from .inflight import inflight

try:
    from hiredis import pack_command
except ImportError:  # redis-py packs it (hiredis is in requirements.txt)
    pack_command = None


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
        pool = getattr(client, "connection_pool", None)  # a RedisCluster has none
        if type(pool) is not redis.ConnectionPool:
            if pool is not None:
                inflight.prepare(pool)  # Sentinel's: made on its first use, as _connect does
            return None
        conn = pool.connection_class(**pool.connection_kwargs)
        local.conn, local.pid = conn, os.getpid()
        self._ready_in_pool(pool)
        return conn

    @staticmethod
    def _ready_in_pool(pool) -> None:
        """One connection made in the pool as well, for this thread's bumps: the
        request path's reads no longer make one there, and a bump sent while Redis
        is paused keeps its connection open until Redis resumes and runs it
        (docs/cache.md, "Outages", mechanism 1), which needs a connection that is
        already made (making one is itself a command the pause holds). Redis down
        now: the bump makes one later, as before."""
        try:
            conn = pool.get_connection()
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError):
            return
        pool.release(conn)

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
    def _send(conn, *commands: tuple) -> None:
        """``commands`` (each a command's name and arguments) in one send, packed
        by hiredis (by redis-py without it)."""
        if pack_command is None:
            conn.send_packed_command(conn.pack_commands(commands), check_health=False)
        else:
            conn.send_packed_command([pack_command(c) for c in commands], check_health=False)

    def _ready(self, conn, client) -> None:
        """Connected, and not closed by the server (as the pool's checkout)."""
        if conn._sock is None:
            self._connect(conn, client)
            return
        # A connection the server closed (EOF raises here) or with unread data
        # starts over. On every call, not only after an idle spell: a Redis
        # restarted under load leaves every thread's connection closed, and a
        # request that met one would report the cache failing a second time.
        try:
            stale = conn.can_read()
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError):
            stale = True
        if stale:
            conn.disconnect()
            self._connect(conn, client)

    def _connect(self, conn, client) -> None:
        """Made (again), with its kernel timeouts. The in-flight connection is made
        or checked with it (inflight.py): when the process first uses Redis, and
        after a restarted Redis closed every connection."""
        conn.connect()
        self._kernel_timeouts(conn)
        inflight.prepare(client.connection_pool, check_open=True)

    def run(self, client, script, keys: list[str], args: list):
        """``script`` (a registered Script) by EVALSHA, loaded on NOSCRIPT, on this
        thread's connection (through the client without one). Any error drops
        the connection (a late reply must never answer the next command) and is
        raised, as the client raises it."""
        conn = self.connection(client)
        if conn is None:
            return script(keys=keys, args=args, client=client)
        try:
            self._ready(conn, client)
            self._send(conn, ("EVALSHA", script.sha, len(keys), *keys, *args))
            try:
                return conn.read_response()
            except redis.exceptions.NoScriptError:
                self._send(conn, ("SCRIPT", "LOAD", script.script))
                conn.read_response()
                self._send(conn, ("EVALSHA", script.sha, len(keys), *keys, *args))
                return conn.read_response()
        except BaseException:
            conn.disconnect()
            raise

    def pipeline(self, client, commands: list[tuple]) -> list:
        """``commands`` (each a tuple of a command's name and arguments) in one
        send, their replies in order, on this thread's connection (through a
        client pipeline without one). A command's error is raised, as the
        client's pipeline raises it, after the connection is dropped."""
        conn = self.connection(client)
        if conn is None:
            pipe = client.pipeline(transaction=False)
            for command in commands:
                pipe.execute_command(*command)
            return pipe.execute()
        try:
            self._ready(conn, client)
            self._send(conn, *commands)
            return [conn.read_response() for _ in commands]
        except BaseException:  # an error reply raises too: the replies after it are not read
            conn.disconnect()
            raise
