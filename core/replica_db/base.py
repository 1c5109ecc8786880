"""PostgreSQL for read replicas: django-prometheus's PostgreSQL backend with every
wait on the server bounded, so that a replica that hangs -- accepts connections
and never answers, or a server process stopped with SIGSTOP -- costs a request a
bounded wait, once (docs/scaling.md, "A replica that hangs").

- Connecting: libpq's ``connect_timeout`` (``REPLICA_CONNECT_TIMEOUT``, settings).
- Every statement, and Django's own ``SELECT 1`` health checks: a deadline of
  ``REPLICA_READ_TIMEOUT`` seconds kept on this side. A stopped server never
  answers and never cancels anything, and its kernel still acknowledges what is
  sent, so neither ``statement_timeout`` (also set, for a slow but live server)
  nor TCP timeouts end the wait; the watchdog thread shuts the socket down when
  the deadline passes, and the waiting call fails at once.

A failure to connect, or a statement that failed on the connection (timed out,
connection lost), marks the replica unavailable (``core.replicas.mark_down``:
skipped until a background probe finds it answering again) and raises
``ReplicaUnavailable``; the response cache then builds the response again on the
primary (``core.replicas.read_at``).
"""
from __future__ import annotations

import itertools
import os
import socket
import threading
import time
from contextlib import contextmanager

from django.conf import settings
from django.db.utils import InterfaceError, OperationalError
from django_prometheus.db.backends.postgresql.base import DatabaseWrapper as PostgresWrapper

from core import replicas

# Errors that mean "this server cannot answer now" (a ProgrammingError is a bug).
UNAVAILABLE = (OperationalError, InterfaceError)


def read_timeout() -> float:
    return float(getattr(settings, "REPLICA_READ_TIMEOUT", 2.0))


class _Watchdog:
    """Deadlines of waits on sockets; one daemon thread per process shuts down the
    socket of a wait that outlives its deadline (the blocked read then fails)."""

    def __init__(self):
        self._cond = threading.Condition()
        self._armed: dict[int, tuple[float, int]] = {}  # token -> (deadline, socket fd)
        self._fired: set[int] = set()
        self._tokens = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, fd: int, seconds: float) -> int:
        with self._cond:
            token = next(self._tokens)
            self._armed[token] = (time.monotonic() + seconds, fd)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="replica-watchdog", daemon=True)
                self._thread.start()
            self._cond.notify()
            return token

    def disarm(self, token: int) -> bool:
        """Whether the deadline had passed (the socket was shut down)."""
        with self._cond:
            self._armed.pop(token, None)
            fired = token in self._fired
            self._fired.discard(token)
            return fired

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                for token, (deadline, fd) in list(self._armed.items()):
                    if deadline <= now:
                        del self._armed[token]
                        self._fired.add(token)
                        _shut_down(fd)
                deadlines = [deadline for deadline, _ in self._armed.values()]
                self._cond.wait(min(deadlines) - now if deadlines else None)

    def after_fork(self) -> None:
        self.__init__()  # the parent's thread and lock do not exist in a child


def _shut_down(fd: int) -> None:
    """Both directions of the socket behind ``fd`` (a duplicate is closed; the
    connection's own descriptor stays for its owner to close)."""
    try:
        sock = socket.socket(fileno=os.dup(fd))
    except OSError:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        sock.close()


_watchdog = _Watchdog()
os.register_at_fork(after_in_child=_watchdog.after_fork)


@contextmanager
def bounded(db, seconds: float | None = None):
    """The waits on ``db``'s open connection inside end after ``seconds``
    (``REPLICA_READ_TIMEOUT``): the socket is shut down, the wait fails."""
    try:
        fd = db.connection.fileno() if db.connection is not None else None
    except Exception:  # noqa: BLE001 - a closed connection has no socket
        fd = None
    token = _watchdog.arm(fd, read_timeout() if seconds is None else seconds) if fd is not None else None
    try:
        yield
    finally:
        if token is not None and _watchdog.disarm(token):
            db.timed_out = True


def _guard(execute, sql, params, many, context):
    """Execute wrapper of a replica connection: the statement within the deadline,
    or the replica marked down and ``ReplicaUnavailable``."""
    db = context["connection"]
    try:
        with bounded(db):
            return execute(sql, params, many, context)
    except UNAVAILABLE as exc:
        raise _unavailable(db, exc) from exc


def _unavailable(db, exc) -> replicas.ReplicaUnavailable:
    timed_out = getattr(db, "timed_out", False)
    db.timed_out = False
    what = f"no answer within {read_timeout()} s" if timed_out else repr(exc)
    replicas.mark_down(db.alias, what)
    try:
        db.close()  # never reused: its socket may be shut down, its server gone
    except Exception:  # noqa: BLE001
        pass
    return replicas.ReplicaUnavailable(f"replica {db.alias}: {what}")


class DatabaseWrapper(PostgresWrapper):
    timed_out = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # First: a block of someone's ``execute_wrapper()`` pops only its own.
        self.execute_wrappers.insert(0, _guard)

    def ensure_connection(self):
        if self.connection is not None:
            return super().ensure_connection()
        if replicas.is_down(self.alias) and not replicas.probing():
            # E.g. its health check just timed out: no second wait on connecting.
            raise replicas.ReplicaUnavailable(f"replica {self.alias}: marked unavailable")
        try:
            return super().ensure_connection()
        except UNAVAILABLE as exc:
            raise _unavailable(self, exc) from exc

    def is_usable(self):
        # Django's health checks (CONN_HEALTH_CHECKS, and after an error) send a
        # SELECT 1 around its execute wrappers: bounded here. Not usable: Django
        # closes the connection.
        with bounded(self):
            usable = super().is_usable()
        if self.timed_out:
            self.timed_out = False
            replicas.mark_down(self.alias, f"health check: no answer within {read_timeout()} s")
            return False
        return usable
