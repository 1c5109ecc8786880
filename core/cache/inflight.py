"""Bumps in flight on one Redis (docs/cache.md, "Outages", mechanism 1): every
bump is sent before the write's response, and one whose reply does not come is
left queued in a paused Redis instead of being dropped.

A process that trusts the cache sends a bump on a pool connection and waits
for the reply (``send_and_wait``); if it does not come in time, the connection
is handed to a drain thread (``outage.start_drain``) and the process is marked
failing.

A process that met a failure answers from the database and leaves recovery to
its probe thread; its bumps are kept as pending and re-delivered once Redis
answers (mechanism 2). That alone leaves a window: a process that saw nothing
can read between Redis resuming and the probe's re-delivery. So every bump of a
failing process is also *sent* at once, before the write's response, and not
waited for: in a paused Redis it is queued ahead of any read sent after that
response, and runs first when Redis resumes.

It goes out on one connection per process kept for it, made while Redis
answers (``prepare``) and kept open: when the process first uses Redis, and
again while Redis answers whenever it is no longer good -- after a lookup
connection was made again (held.py), or after an answered bump (the fence that
ends an outage is one) if it was dropped, Redis closed it, or it leads to
another address than the pool (a Sentinel failover). That it was made before
the failure is what makes the order hold: Redis reads a connection only once
it has accepted it, and it accepts a new one and reads the others in the same
turn of its event loop, so a bump on a connection made during a pause can
still be read after a read that reached Redis later, from another process, in
that same turn (a Redis not run by the scheduler for a moment is enough). On a
connection it accepted long before, what arrived first is read first.

When there is none that is good (Redis never answered this process, or the
connection was dropped or closed since), one is made for the bump. Its connect handshake
(AUTH, SELECT) is then sent without waiting either: a paused Redis accepts the
connection but holds every command, so a handshake that waited for its reply
would hold the write for the socket timeout. A background thread reads the
replies, each for up to ``DRAIN_SECONDS``. A reply that never comes, a closed
connection or a Redis that is down cost nothing more: the bump is still pending
and the fence follows (mechanisms 2 and 3).
"""
from __future__ import annotations

import logging
import os
import select
import socket
import threading
import time

import redis
from redis.credentials import UsernamePasswordCredentialProvider

from .outage import DRAIN_SECONDS, start_drain

logger = logging.getLogger("shiftboard.cache")

# Bumps sent and not yet answered, at most: a Redis stopped (SIGSTOP) rather
# than paused reads nothing, and the socket's buffer is finite.
MAX_OWED = 1000
# After a connect that failed, no new connection is tried for this long.
UNREACHABLE_SECONDS = 1.0
# An answered bump checks the in-flight connection (closed by Redis?) at most this often.
CHECK_SECONDS = 1.0
# TCP keepalive on the in-flight connection, idle between outages: a firewall or
# NAT that forgets idle connections keeps this one, and a peer gone is noticed.
KEEPALIVE_OPTIONS = {
    name: value
    for name, value in (("TCP_KEEPIDLE", 60), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 3))
    if hasattr(socket, name)
}


def _handshake_commands(conn) -> list[tuple]:
    """What ``Connection.on_connect`` sends on a RESP2 connection that needs
    nothing else: AUTH, SELECT. (A client name is left out: nothing is asked of
    this connection but its bumps' replies.)"""
    commands = []
    provider = conn.credential_provider
    if provider is None and (conn.username or conn.password):
        provider = UsernamePasswordCredentialProvider(conn.username, conn.password)
    if provider is not None:
        commands.append(("AUTH", *provider.get_credentials()))
    if conn.db:
        commands.append(("SELECT", conn.db))
    # A reply even when there is nothing else to say: the first one tells that Redis accepted the connection.
    commands.append(("PING",))
    return commands


def send_and_wait(pool, command: tuple) -> None:
    """``command`` (a bump) on a connection of ``pool``, its reply waited for.
    Whatever goes wrong before a reply, the bump is left queued if Redis can take
    it: an unanswered connection is kept open for a drain thread, and otherwise
    (a new connection whose handshake a paused Redis holds, every drain busy)
    the bump is sent again on the in-flight connection. Then the error is raised."""
    try:
        conn = pool.get_connection()
    except BaseException:
        inflight.send(pool, command)
        raise
    try:
        conn.send_command(*command)
        conn.read_response(disconnect_on_error=False)
    except redis.exceptions.ResponseError:
        pool.release(conn)  # an error reply: the script ran (or never will)
        raise
    except BaseException as exc:
        if not (isinstance(exc, redis.exceptions.TimeoutError) and start_drain(pool, conn)):
            conn.disconnect()
            pool.release(conn)
            inflight.send(pool, command)
        raise
    pool.release(conn)
    # Redis answers: the in-flight connection made again if it was dropped, Redis
    # closed it, or it leads elsewhere (Sentinel: the master before a failover).
    inflight.prepare(pool, check_open=True, peer=_peer(conn), throttled=True)


def _peer(conn) -> tuple:
    """Where a connection leads (a Sentinel connection: the master it found at connect)."""
    return getattr(conn, "host", None), getattr(conn, "port", None), getattr(conn, "path", None)


class InFlightBumps:
    def __init__(self):
        self._reset()

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._conn = None
        self._pool = None
        self._owed = 0
        self._reading = False  # a reader thread is waiting for the replies owed
        self._answered = False  # Redis has replied on this connection: it was accepted
        self._drop_when_read = False  # an error reply (a Sentinel's old master): made again after
        self._unreachable_until = 0.0
        self._checked_until = 0.0
        self.last_error = ""  # why the last bump was not sent, or its connection dropped (tests, debugging)

    def prepare(self, pool, check_open: bool = False, peer: tuple | None = None, throttled: bool = False) -> None:
        """The connection made now for the bumps of a process that will fail
        later, while ``pool``'s Redis answers (its handshake is read in the
        background). Made again where it leads elsewhere than ``peer`` (a
        connection of ``pool`` just answered) and, with ``check_open``, where
        Redis closed it (a poll of its socket; ``throttled``: at most every
        ``CHECK_SECONDS``). Never raises; costs attribute checks once it is made."""
        if self._leads_to(pool, peer):
            if not check_open or (throttled and time.monotonic() < self._checked_until):
                return
        elif time.monotonic() < self._unreachable_until:
            return
        with self._lock:
            try:
                if self._leads_to(pool, peer):
                    if not (check_open and self._closed_by_server()):
                        self._checked_until = time.monotonic() + CHECK_SECONDS
                        return
                if time.monotonic() < self._unreachable_until:
                    return
                self._close()
                self._open(pool)
                self._checked_until = time.monotonic() + CHECK_SECONDS
            except Exception as exc:  # noqa: BLE001 - made later, by a bump
                self.last_error = f"prepare: {exc!r}"
                self._close()
                self._unreachable_until = time.monotonic() + UNREACHABLE_SECONDS

    def _leads_to(self, pool, peer: tuple | None) -> bool:
        """There is a connection, made from ``pool``, and to ``peer`` when given."""
        conn = self._conn
        return conn is not None and self._pool is pool and (peer is None or _peer(conn) == peer)

    def send(self, pool, command: tuple) -> bool:
        """Send ``command`` (a bump) to the server of ``pool`` without waiting
        for its reply. False if it could not be sent; never raises."""
        with self._lock:
            try:
                if self._conn is not None and (self._pool is not pool or self._closed_by_server()):
                    self._close()
                if self._conn is None:
                    if time.monotonic() < self._unreachable_until:
                        self.last_error = "unreachable: not tried again yet"
                        return False
                    try:
                        self._open(pool)
                    except Exception:
                        # Refused or no answer to the connect: nobody reads from it
                        # either. Not tried again for a while, so that each write of
                        # a long outage does not wait for a connect timeout.
                        self._unreachable_until = time.monotonic() + UNREACHABLE_SECONDS
                        raise
                if self._owed >= MAX_OWED:
                    self.last_error = f"{MAX_OWED} replies owed"
                    return False
                self._conn.send_packed_command(self._conn.pack_command(*command), check_health=False)
                self._owed += 1
                self._start_reading()
                return True
            except Exception as exc:  # noqa: BLE001 - down or closed: the bump stays pending
                self.last_error = f"send: {exc!r}"
                logger.debug("bump not sent in flight: %r", exc)
                self._close()
                return False

    def _open(self, pool) -> None:
        handshake = []

        def connect_blind(conn):
            # As on_connect, without reading: the replies are read with the bumps'.
            conn._parser.on_connect(conn)
            for command in handshake:
                conn.send_command(*command, check_health=False)

        # RESP2: RESP3 would need HELLO answered first; the replies are only counted.
        kwargs = {**pool.connection_kwargs, "protocol": 2, "redis_connect_func": connect_blind}
        if issubclass(pool.connection_class, redis.Connection):  # TCP (not a Unix socket)
            kwargs.update(socket_keepalive=True, socket_keepalive_options={
                getattr(socket, name): value for name, value in KEEPALIVE_OPTIONS.items()})
        conn = pool.connection_class(**kwargs)
        commands = _handshake_commands(conn)
        handshake.extend(commands)
        conn.connect()
        self._conn, self._pool, self._owed = conn, pool, len(commands)
        self._answered = self._drop_when_read = False
        self._start_reading()

    def _start_reading(self) -> None:
        if not self._reading and self._owed > 0:
            self._reading = True
            threading.Thread(target=self._read, args=(self._conn,), name="cache-bump-inflight", daemon=True).start()

    def _closed_by_server(self) -> bool:
        """An idle connection (no reply owed, nobody reading) that Redis closed
        (a restart, CLIENT KILL): it reads as ready, at its end."""
        if self._reading:
            return False
        sock = self._conn._sock
        if sock is None:
            return True
        poller = select.poll()  # not select(): any descriptor number
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))

    def _close(self) -> None:
        conn, self._conn, self._pool, self._owed = self._conn, None, None, 0
        self._reading = self._answered = False
        if conn is not None:
            conn.disconnect()

    def _read(self, conn) -> None:
        """Each reply in turn, until none is owed: the connection then stays open
        for the next. It is dropped at a reply that does not come in time."""
        while True:
            error = False
            try:
                conn.read_response(timeout=DRAIN_SECONDS, disconnect_on_error=False)
            except redis.exceptions.ResponseError:
                error = True  # an error reply is still a reply: the probe re-delivers the bump
            except Exception as exc:  # noqa: BLE001 - no reply in time, or closed
                with self._lock:
                    if self._conn is conn:
                        self.last_error = f"read: {exc!r} with {self._owed} owed"
                        logger.debug("in-flight bumps: %s", self.last_error)
                        self._close()
                    else:
                        conn.disconnect()
                return
            with self._lock:
                if self._conn is not conn:
                    return
                self._owed -= 1
                self._answered = True
                self._drop_when_read = self._drop_when_read or error
                if self._owed <= 0:
                    self._reading = False
                    if self._drop_when_read:
                        self._close()
                    return

    def owed(self) -> int:
        with self._lock:
            return self._owed

    def answered(self) -> bool:
        """Redis has replied on the current in-flight connection, so it had accepted it."""
        with self._lock:
            return self._conn is not None and self._answered


inflight = InFlightBumps()

if hasattr(os, "register_at_fork"):
    # A forked worker starts with no reader thread and must not share the
    # parent's socket or inherit a held lock.
    os.register_at_fork(after_in_child=inflight._reset)
