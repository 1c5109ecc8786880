"""PostgreSQL read replicas: the database router, read floors, replica lag.

``DATABASE_REPLICA_URLS`` (settings) adds one database alias per replica
(``replica_0``, ``replica_1``, ...). Unset: no replicas, this module routes
nothing and everything reads and writes ``default`` (the primary).

Where a read goes (``ReplicaRouter``):
- writes, and ``select_for_update()`` (Django marks such a queryset "for write":
  it asks ``db_for_write``), always go to the primary;
- reads inside an atomic block on the primary go to the primary (the
  transaction must see its own writes and hold its locks there);
- every other read goes to the primary UNLESS the code around it has declared a
  *read floor* (``reads_at(lsn)``): the WAL position every write this read must
  see had reached. Then the read goes to a replica that has replayed at least
  that far, else to the primary. After a write in the same context the context is
  pinned to the primary.

Who declares a floor: the response cache (``core.cache``), for the build of a
cached GET response after a miss. Every scope counter carries the primary's WAL
position of the last write that bumped it (recorded by the writer after its
commit, in the same Lua call as the INCR); the floor of a build is the largest
position among the counters the response depends on. A write that returned
before the GET began bumped one of those scopes (that is what makes the cache
correct at all), so a replica past the floor has replayed it. See
docs/scaling.md for the whole argument.

A replica that is down or hangs is *marked down* after its first failure (a
refused connection fails at once; a silent host after the connect timeout; a
statement or health check that gets no answer after ``REPLICA_READ_TIMEOUT``,
enforced on this side by the replicas' database backend, core/replica_db): no
request uses or asks it again until a background probe, every
``REPLICA_PROBE_SECONDS``, gets an answer from it. A response being built on a
replica that fails is built again on the primary (``read_at``). A replica
behind the floor is not waited for: the read goes to the primary, and the
replica's position is asked again at most every ``RECHECK_SECONDS`` per process
(replay positions only grow, so a position seen once is a lower bound forever).

Metrics: ``shiftboard_db_queries_total{database, kind}`` counts every statement by
database alias and kind (``read``, ``locking_read``, ``write``, ``replay_check``).
"""
from __future__ import annotations

import contextvars
import logging
import math
import random
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.db import connections
from django.db.backends.signals import connection_created
from django.db.utils import OperationalError
from django.dispatch import receiver
from prometheus_client import Counter

logger = logging.getLogger("shiftboard.replicas")

REPLICA_PREFIX = "replica_"
RECHECK_SECONDS = 0.02

DB_QUERIES = Counter(
    "shiftboard_db_queries_total",
    "SQL statements by database alias and kind (read, locking_read, write, replay_check).",
    ["database", "kind"],
)

# The replay position query: on a replica its replay position, on a primary (a
# test mirror, or a promoted replica) its current position. As a number of bytes.
_REPLAY_SQL = (
    "SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() "
    "ELSE pg_current_wal_lsn() END - '0/0'::pg_lsn)::bigint"
)
# A replica's replay position and the age of the last transaction it replayed; a
# server not in recovery (a test mirror, a promoted replica) is at its own
# position, 0 s behind, as in _REPLAY_SQL.
_LAG_SQL = (
    "SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() "
    "ELSE pg_current_wal_lsn() END - '0/0'::pg_lsn)::bigint, "
    "CASE WHEN pg_is_in_recovery() THEN extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 "
    "ELSE 0 END"
)
_PRIMARY_LSN_SQL = "SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint"


def replica_aliases() -> list[str]:
    return [alias for alias in settings.DATABASES if alias.startswith(REPLICA_PREFIX)]


def enabled() -> bool:
    return bool(replica_aliases())


# --- the read context -------------------------------------------------------------------

@dataclass
class _ReadContext:
    floor: int
    pinned: bool = False


_context: contextvars.ContextVar[_ReadContext | None] = contextvars.ContextVar("replica_read_floor", default=None)


@contextmanager
def reads_at(floor: int | None):
    """Reads inside may go to a replica that has replayed up to ``floor`` (a WAL
    position in bytes). ``None``: the floor is unknown, everything reads the primary."""
    token = _context.set(_ReadContext(floor) if floor is not None else None)
    try:
        yield
    finally:
        _context.reset(token)


class ReplicaUnavailable(OperationalError):
    """A replica could not answer (refused, timed out, connection lost); it is
    marked down. Raised by the replicas' backend (core/replica_db)."""


def read_at(floor: int | None, read):
    """``read()`` under ``reads_at(floor)``; if a replica fails under it, once more
    on the primary (the replica is marked down by then). For reads only: the
    response cache's ids query and build."""
    with reads_at(floor):
        try:
            return read()
        except ReplicaUnavailable as exc:
            logger.warning("read again on the primary: %s", exc)
    return read()


def primary_lsn() -> int:
    """The primary's current WAL position (bytes). Called after a commit, it is at
    or past that commit's record."""
    with connections["default"].cursor() as cursor:
        cursor.execute(_PRIMARY_LSN_SQL)
        return int(cursor.fetchone()[0])


# --- replica states (per process) ---------------------------------------------------------

@dataclass
class _ReplicaState:
    replayed: int = -1  # the largest replay position seen (a lower bound of the current one)
    checked_at: float = 0.0
    down_until: float = 0.0  # math.inf while marked down (until the probe gets an answer)
    down_since: float = 0.0
    reason: str = ""


_states: dict[str, _ReplicaState] = {}
_states_lock = threading.Lock()
_check_flag = threading.local()


def _state(alias: str) -> _ReplicaState:
    with _states_lock:
        return _states.setdefault(alias, _ReplicaState())


def probe_seconds() -> float:
    return float(getattr(settings, "REPLICA_PROBE_SECONDS", 5.0))


def is_down(alias: str) -> bool:
    return _state(alias).down_until > time.monotonic()


def probing() -> bool:
    """Whether this thread is the probe of a replica marked down."""
    return getattr(_check_flag, "probing", False)


def mark_down(alias: str, reason) -> None:
    """Skip ``alias`` until the probe (a daemon thread, started here once) finds it
    answering: no request waits on it again meanwhile."""
    state = _state(alias)
    with _states_lock:
        if state.down_until == math.inf:
            return
        state.down_until, state.down_since, state.reason = math.inf, time.time(), str(reason)
    logger.warning("replica %s unavailable, skipped until it answers again: %s", alias, reason)
    threading.Thread(target=_probe, args=(alias, state), name=f"replica-probe-{alias}", daemon=True).start()
    _export(alias, up=False)


def _probe(alias: str, state: _ReplicaState) -> None:
    _check_flag.probing = True
    while True:
        time.sleep(probe_seconds())
        if _states.get(alias) is not state or alias not in replica_aliases():
            return  # forgotten (tests) or no longer configured
        try:
            position = replayed_lsn(alias)
        except Exception:  # noqa: BLE001 - still down: try again later
            continue
        finally:
            try:
                connections[alias].close()  # this thread's own connection
            except Exception:  # noqa: BLE001
                pass
        with _states_lock:
            state.replayed = max(state.replayed, position)
            state.down_until, state.reason = 0.0, ""
        logger.warning("replica %s answers again", alias)
        _export(alias, up=True)  # its lag: unknown (NaN) until the next readiness probe
        return


def _export(alias: str, up: bool) -> None:
    """``shiftboard_db_replica_up`` follows the router's own view too, not only
    the readiness probes (core.health)."""
    from .health import export_replica

    try:
        export_replica(alias, up)
    except Exception:  # noqa: BLE001 - a metrics write must not fail the read it reroutes, nor stop the probe
        logger.exception("replica %s: could not export its state", alias)


def replayed_lsn(alias: str) -> int:
    """Ask the replica for its replay position (one query). Raises if it is down."""
    _check_flag.active = True
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute(_REPLAY_SQL)
            return int(cursor.fetchone()[0])
    finally:
        _check_flag.active = False


def pick_replica(floor: int) -> str | None:
    """A replica known to have replayed ``floor``, or None (read the primary)."""
    aliases = replica_aliases()
    if len(aliases) > 1:
        aliases = random.sample(aliases, len(aliases))  # spread the load
    now = time.monotonic()
    for alias in aliases:
        state = _state(alias)
        if state.down_until > now:
            continue
        if state.replayed >= floor:
            return alias
        if now - state.checked_at < RECHECK_SECONDS:
            continue  # asked a moment ago and it was behind: do not ask on every read
        state.checked_at = now
        try:
            state.replayed = max(state.replayed, replayed_lsn(alias))
        except Exception as exc:  # noqa: BLE001 - down, unreachable, hung: skip it until it answers
            mark_down(alias, repr(exc))
            try:
                connections[alias].close()
            except Exception:  # noqa: BLE001
                pass
            continue
        if state.replayed >= floor:
            return alias
    return None


class ReplicaRouter:
    """Reads to a replica only under a read floor it has replayed; writes, locking
    reads and reads in a transaction on the primary (module docstring)."""

    def db_for_read(self, model, **hints):
        ctx = _context.get()
        if ctx is None or ctx.pinned:
            return "default"
        if connections["default"].in_atomic_block:
            return "default"
        return pick_replica(ctx.floor) or "default"

    def db_for_write(self, model, **hints):
        ctx = _context.get()
        if ctx is not None:
            ctx.pinned = True  # read our own write from here on
        return "default"

    def allow_relation(self, obj1, obj2, **hints):
        return True  # replicas are copies of the primary: the same rows

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == "default"  # a physical replica replays the primary's migrations


# --- metrics: statements per database ---------------------------------------------------

def _statement_kind(sql: str) -> str:
    if getattr(_check_flag, "active", False):
        return "replay_check"
    head = sql.lstrip()[:10].upper()
    if head.startswith(("SELECT", "WITH")):
        upper = sql.upper()
        return "locking_read" if " FOR UPDATE" in upper or " FOR SHARE" in upper or " FOR NO KEY" in upper else "read"
    if head.startswith(("SHOW", "EXPLAIN")):
        return "read"
    return "write"


def _count_statements(execute, sql, params, many, context):
    DB_QUERIES.labels(context["connection"].alias, _statement_kind(str(sql))).inc()
    return execute(sql, params, many, context)


@receiver(connection_created)
def _install_counter(sender, connection, **kwargs):
    if not enabled():
        return
    if _count_statements not in connection.execute_wrappers:
        # First, not last: a connection opened inside someone's ``execute_wrapper()``
        # block would otherwise lose this wrapper when that block pops the last one.
        connection.execute_wrappers.insert(0, _count_statements)


# --- health -------------------------------------------------------------------------------

def lag_report() -> dict[str, dict]:
    """Per replica: ``status`` (ok|unavailable), ``lag_bytes`` (the primary's
    position minus the replica's replay position) and ``lag_seconds`` (time since
    the last transaction it replayed was committed; grows while the primary is idle)."""
    out: dict[str, dict] = {}
    if not enabled():
        return out
    try:
        primary = primary_lsn()
    except Exception:  # noqa: BLE001 - the health view reports the primary itself
        primary = None
    for alias in replica_aliases():
        state = _state(alias)
        if state.down_until > time.monotonic():
            # Marked down (refused, hung): not asked again here, a health check
            # must not wait on it either; the probe brings it back.
            out[alias] = {"status": "unavailable", "lag_bytes": None, "lag_seconds": None,
                          "since": round(state.down_since, 3), "reason": state.reason}
            continue
        try:
            with connections[alias].cursor() as cursor:
                cursor.execute(_LAG_SQL)
                replayed, seconds = cursor.fetchone()
        except Exception as exc:  # noqa: BLE001 - bounded by the replicas' backend (core/replica_db)
            logger.warning("health: replica %s unavailable: %s", alias, exc)
            out[alias] = {"status": "unavailable", "lag_bytes": None, "lag_seconds": None}
            continue
        lag = max(0, primary - int(replayed)) if primary is not None and replayed is not None else None
        out[alias] = {
            "status": "ok",
            "lag_bytes": lag,
            "lag_seconds": round(seconds, 3) if seconds is not None else None,
        }
    return out
