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

A replica alias whose server does not follow the primary is *not replicating*:
a server not in recovery that is not the primary itself (a promoted replica,
after ``pg_ctl promote`` or a failover: a timeline of its own, writes of its own,
none of the primary's after it), or a standby of another cluster (another system
identifier). Its WAL positions are not the primary's, so no read floor says
anything about it: it is skipped like a replica that is down, reported as
``not_replicating`` (``lag_report``, /readyz, /api/v1/health/, the
``shiftboard_db_replica_replicating`` gauge), and the same background probe asks
it again every ``REPLICA_PROBE_SECONDS`` until it follows the primary again. What
is checked costs no extra round trip: the replay question itself also returns
``pg_is_in_recovery()``, the server's system identifier and its postmaster's start
time; a server not in recovery passes only if both equal the primary's (the
primary's are asked once per process, and again when they do not match: a
restart). That is the test suite's stand-in, a ``replica_*`` alias that points at
the primary server (a *mirror*): it is at the primary's own position, 0 s behind.
A pg_basebackup copy shares the system identifier but has a postmaster of its own.
A replica the router has not asked for ``REPLICA_PROBE_SECONDS`` is asked again
before its next read, even when its last known position is past the floor: a
server promoted since is noticed within that time.

Metrics: ``shiftboard_db_queries_total{database, kind}`` counts every statement by
database alias and kind (``read``, ``locking_read``, ``write``, ``replay_check``: the
router's replay question and the health checks' lag query).
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

# Who a replica alias's server is, in the same query as its position: whether it
# is in recovery, its system identifier, when its postmaster started (compared
# with the primary's: ``_not_following``).
_WHO_SQL = (
    "pg_is_in_recovery(), (SELECT system_identifier FROM pg_control_system())::text, "
    "extract(epoch FROM pg_postmaster_start_time())::text"
)
# The replay position query: on a replica its replay position, on a server not in
# recovery (a test mirror: the primary itself) its current position. As a number
# of bytes; then _WHO_SQL.
_REPLAY_SQL = (
    "SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() "
    f"ELSE pg_current_wal_lsn() END - '0/0'::pg_lsn)::bigint, {_WHO_SQL}"
)
# A replica's replay position and the age of the last transaction it replayed; a
# server not in recovery is at its own position, 0 s behind, as in _REPLAY_SQL
# (true of a mirror; a promoted server fails the _WHO_SQL check instead).
_LAG_SQL = (
    "SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() "
    "ELSE pg_current_wal_lsn() END - '0/0'::pg_lsn)::bigint, "
    "CASE WHEN pg_is_in_recovery() THEN extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 "
    f"ELSE 0 END, {_WHO_SQL}"
)
_PRIMARY_WHO_SQL = (
    "SELECT (SELECT system_identifier FROM pg_control_system())::text, "
    "extract(epoch FROM pg_postmaster_start_time())::text"
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


class NotReplicating(Exception):
    """A replica alias's server answers but does not follow the primary (module
    docstring): promoted, or a standby of another cluster. The message says which."""


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
    verified_at: float = -math.inf  # when it last answered as following the primary (monotonic)
    down_until: float = 0.0  # math.inf while marked down (until the probe gets an answer)
    down_since: float = 0.0
    reason: str = ""
    status: str = "unavailable"  # while marked: unavailable | not_replicating


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
    _mark(alias, "unavailable", str(reason))


def mark_not_replicating(alias: str, reason) -> None:
    """Skip ``alias``, which answers but does not follow the primary (promoted), until
    the probe finds it following the primary again."""
    _mark(alias, "not_replicating", str(reason))


def _mark(alias: str, status: str, reason: str) -> None:
    state = _state(alias)
    with _states_lock:
        if state.down_until == math.inf:
            return
        state.down_until, state.down_since, state.reason, state.status = math.inf, time.time(), reason, status
        if status == "not_replicating":
            # Its positions are on a timeline of its own from now on: none of them is
            # a bound of the primary's. Learnt afresh when it follows the primary again.
            state.replayed = -1
    if status == "not_replicating":
        logger.error("replica %s does not follow the primary, skipped until it does: %s", alias, reason)
    else:
        logger.warning("replica %s unavailable, skipped until it answers again: %s", alias, reason)
    threading.Thread(target=_probe, args=(alias, state), name=f"replica-probe-{alias}", daemon=True).start()
    _export(alias, up=status == "not_replicating", replicating=False if status == "not_replicating" else None)


def _probe(alias: str, state: _ReplicaState) -> None:
    _check_flag.probing = True
    while True:
        time.sleep(probe_seconds())
        if _states.get(alias) is not state or alias not in replica_aliases():
            return  # forgotten (tests) or no longer configured
        try:
            position = replayed_lsn(alias)
        except NotReplicating as exc:  # answers, still not ours
            _still(alias, state, "not_replicating", str(exc))
            continue
        except Exception as exc:  # noqa: BLE001 - still down: try again later
            if state.status == "not_replicating":
                _still(alias, state, "unavailable", repr(exc))
            continue
        finally:
            for name in (alias, "default"):  # this thread's own connections (default: _primary_who)
                try:
                    connections[name].close()
                except Exception:  # noqa: BLE001
                    pass
        with _states_lock:
            state.replayed = max(state.replayed, position)
            state.down_until, state.reason, state.status = 0.0, "", "unavailable"
            state.verified_at = time.monotonic()
        logger.warning("replica %s answers again, following the primary", alias)
        _export(alias, up=True, replicating=True)  # its lag: unknown (NaN) until the next readiness probe
        return


def _still(alias: str, state: _ReplicaState, status: str, reason: str) -> None:
    """A marked replica's probe got another answer: what it reports follows it."""
    if state.status == status:
        return
    with _states_lock:
        state.status, state.reason = status, reason
    logger.warning("replica %s: %s (%s)", alias, status, reason)
    _export(alias, up=status == "not_replicating", replicating=False if status == "not_replicating" else None)


def _export(alias: str, up: bool, replicating: bool | None = None) -> None:
    """``shiftboard_db_replica_up`` (and ``_replicating``) follow the router's own
    view too, not only the readiness probes (core.health)."""
    from .health import export_replica

    try:
        export_replica(alias, up, replicating=replicating)
    except Exception:  # noqa: BLE001 - a metrics write must not fail the read it reroutes, nor stop the probe
        logger.exception("replica %s: could not export its state", alias)


# --- who a replica's server is ------------------------------------------------------------

_primary: tuple[str, str] | None = None  # (system identifier, postmaster start), per process


def _primary_who(refresh: bool = False) -> tuple[str, str] | None:
    """The primary's system identifier and postmaster start time (asked once per
    process, again on ``refresh``); None if it cannot be asked now."""
    global _primary
    if _primary is None or refresh:
        try:
            with connections["default"].cursor() as cursor:
                cursor.execute(_PRIMARY_WHO_SQL)
                sysid, started = cursor.fetchone()
        except Exception as exc:  # noqa: BLE001 - the primary's own health is reported elsewhere
            logger.warning("replicas: cannot ask the primary who it is: %s", exc)
            return None
        _primary = (str(sysid), str(started))
    return _primary


def _not_following(in_recovery, sysid, started) -> str | None:
    """None if a server that answered this (_WHO_SQL) follows the primary: a standby
    of the primary's cluster, or the primary itself (a mirror). Else the reason."""
    who = (str(sysid), str(started))
    if in_recovery:
        primary = _primary_who()
        if primary is None or who[0] == primary[0]:
            return None  # (the primary down: nothing to compare with; its standby stays usable)
        return f"a standby of another cluster (system identifier {who[0]}, the primary's {primary[0]})"
    if _primary_who() == who or _primary_who(refresh=True) == who:  # the primary itself (it may have restarted)
        return None
    return ("not in recovery and not the primary: promoted (or an independent server); "
            f"system identifier {who[0]}, postmaster started at {who[1]}")


def replayed_lsn(alias: str) -> int:
    """Ask the replica for its replay position (one query). Raises if it is down,
    ``NotReplicating`` if its server does not follow the primary."""
    _check_flag.active = True
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute(_REPLAY_SQL)
            position, in_recovery, sysid, started = cursor.fetchone()
        why = _not_following(in_recovery, sysid, started)
    finally:
        _check_flag.active = False
    if why:
        raise NotReplicating(why)
    return int(position)


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
        # Not asked for a probe interval: asked before a read (a promotion since shows).
        verified = now - state.verified_at < probe_seconds()
        if verified and state.replayed >= floor:
            return alias
        if verified and now - state.checked_at < RECHECK_SECONDS:
            continue  # asked a moment ago and it was behind: do not ask on every read
        state.checked_at = now
        try:
            state.replayed = max(state.replayed, replayed_lsn(alias))
        except NotReplicating as exc:
            mark_not_replicating(alias, str(exc))
            continue
        except Exception as exc:  # noqa: BLE001 - down, unreachable, hung: skip it until it answers
            mark_down(alias, repr(exc))
            try:
                connections[alias].close()
            except Exception:  # noqa: BLE001
                pass
            continue
        state.verified_at = now
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
    """Per replica: ``status`` (ok|unavailable|not_replicating), ``lag_bytes`` (the
    primary's position minus the replica's replay position) and ``lag_seconds``
    (time since the last transaction it replayed was committed; grows while the
    primary is idle). A replica marked unavailable or not replicating also has
    ``since`` and ``reason``, and no lag."""
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
            # Marked down (refused, hung) or not replicating: not asked again here, a
            # health check must not wait on it either; the probe brings it back.
            out[alias] = {"status": state.status, "lag_bytes": None, "lag_seconds": None,
                          "since": round(state.down_since, 3), "reason": state.reason}
            continue
        _check_flag.active = True  # counted as a check (replay_check), not as a read
        try:
            with connections[alias].cursor() as cursor:
                cursor.execute(_LAG_SQL)
                replayed, seconds, in_recovery, sysid, started = cursor.fetchone()
            why = _not_following(in_recovery, sysid, started)
        except Exception as exc:  # noqa: BLE001 - bounded by the replicas' backend (core/replica_db)
            logger.warning("health: replica %s unavailable: %s", alias, exc)
            out[alias] = {"status": "unavailable", "lag_bytes": None, "lag_seconds": None}
            continue
        finally:
            _check_flag.active = False
        if why:
            mark_not_replicating(alias, why)  # the router skips it from now on too
            out[alias] = {"status": "not_replicating", "lag_bytes": None, "lag_seconds": None,
                          "since": round(state.down_since, 3), "reason": why}
            continue
        lag = max(0, primary - int(replayed)) if primary is not None and replayed is not None else None
        out[alias] = {
            "status": "ok",
            "lag_bytes": lag,
            "lag_seconds": round(seconds, 3) if seconds is not None else None,
        }
    return out
