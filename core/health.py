"""Liveness and readiness, for load balancers and Kubernetes probes.

``GET /livez``: the process answers. 200 ``{"status": "alive"}`` without touching
the database or the cache, so a database outage never gets a healthy worker
restarted.

``GET /readyz``: may this process get traffic? 200 ``{"status": "ready",
"checks": {...}}`` or 503 ``{"status": "unready", ...}``. The checks:

- ``database``: ``SELECT 1`` on the default database (a connect is bounded by
  ``connect_timeout``, 3 s in the settings);
- ``migrations``: every migration this code ships is applied (the latest of each
  app is in ``django_migrations``; the graph is read from disk once per process);
- ``cache``: a read of the shared cache. Reported, never a reason to be unready:
  with the cache down every request is answered from the database (the response
  cache's fallback), so pulling every instance out would turn a slower service
  into no service;
- ``replica_lag``: each read replica's lag (``core.replicas``), also set on the
  ``shiftboard_db_replica_up``, ``shiftboard_db_replica_replicating`` and
  ``shiftboard_db_replica_lag_*`` gauges; a replica that was promoted (answers, but
  no longer follows the primary) is ``not_replicating``, with a reason. Reported,
  not a reason to be unready (reads fall back to the primary); no replicas:
  ``{"ok": true, "replicas": {}}``.

Both are answered by ``ProbeMiddleware``, placed right after the request id
middleware: before the SSL redirect (a probe over plain HTTP to the pod's address
would otherwise get a 301, which Kubernetes counts as success), before the host
check (probes send the pod IP as Host), before sessions, auth and the Prometheus
request metrics (probes are not traffic). The older ``/api/v1/health/`` stays as
it was (``core.views.HealthView``); docs/operations.md maps one to the other.

Other modules add checks with ``register_check(name, func, critical=True)``:
``func()`` returns a dict with at least ``ok`` (bool); a critical check that is
not ok, or raises, makes the process unready.
"""
import json
import logging
import math
import time
from collections.abc import Callable

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.http import HttpResponse
from prometheus_client import Gauge

logger = logging.getLogger("shiftboard.health")

LIVENESS_PATH = "/livez"
READINESS_PATH = "/readyz"

# Set by whichever worker serves a /readyz. With several workers (Prometheus
# multiprocess mode) /metrics reports the most recent value any live worker set:
# "max" kept a lag one worker saw long after the replica caught up (until that
# worker served a probe again), and for ever once that worker had exited.
REPLICA_LAG = Gauge(
    "shiftboard_db_replica_lag_seconds",
    "Seconds since the last transaction each read replica replayed was committed (readiness probe).",
    ["alias"],
    multiprocess_mode="livemostrecent",
)
REPLICA_LAG_BYTES = Gauge(
    "shiftboard_db_replica_lag_bytes",
    "WAL bytes each read replica has still to replay (readiness probe).",
    ["alias"],
    multiprocess_mode="livemostrecent",
)

# 1 while a replica answers, 0 while it is unreachable (or marked down by the
# router, core.replicas); a promoted replica answers: up 1, replicating 0 (below).
# A down replica's lag gauges are set to NaN, not left at their last value: in
# multiprocess mode a label cannot be removed (the sample stays in the worker's
# file, and livemostrecent would go on exporting it), so NaN is what replaces it
# everywhere. PromQL comparisons are false on NaN (no lag alert fires on it) and
# Grafana draws it as a gap.
REPLICA_UP = Gauge(
    "shiftboard_db_replica_up",
    "1 if each read replica answered its last check, 0 if it is unreachable (readiness probe, router).",
    ["alias"],
    multiprocess_mode="livemostrecent",
)

# 1 while a replica follows the primary (a standby of it, or the primary itself: the
# test suite's mirror), 0 while it answers but does not (promoted, or a standby of
# another cluster: core.replicas skips it), NaN while not known (unreachable).
REPLICA_REPLICATING = Gauge(
    "shiftboard_db_replica_replicating",
    "1 if each read replica follows the primary, 0 if it answers but does not (promoted), NaN if unknown.",
    ["alias"],
    multiprocess_mode="livemostrecent",
)

_checks: dict[str, tuple[Callable[[], dict], bool]] = {}


def register_check(name: str, func: Callable[[], dict], critical: bool = True) -> None:
    """Add (or replace) a readiness check."""
    _checks[name] = (func, critical)


def check_database() -> dict:
    conn = connections[DEFAULT_DB_ALIAS]
    start = time.perf_counter()
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        _discard(conn)
        logger.warning("readiness: database unreachable: %s", exc)
        return {"ok": False, "error": exc.__class__.__name__}
    return {"ok": True, "ms": round((time.perf_counter() - start) * 1000, 2)}


_leaf_migrations: set | None = None


def _leaves() -> set:
    global _leaf_migrations
    if _leaf_migrations is None:
        from django.db.migrations.loader import MigrationLoader

        # No connection: the graph from disk only (the code's migrations).
        _leaf_migrations = set(MigrationLoader(None, ignore_no_migrations=True).graph.leaf_nodes())
    return _leaf_migrations


def check_migrations() -> dict:
    leaves = _leaves()
    conn = connections[DEFAULT_DB_ALIAS]
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT app, name FROM django_migrations")
            applied = {(app, name) for app, name in cursor.fetchall()}
    except Exception as exc:  # noqa: BLE001 - no table (never migrated) or no database
        _discard(conn)
        return {"ok": False, "error": exc.__class__.__name__}
    missing = sorted(f"{app}.{name}" for app, name in leaves - applied)
    if missing:
        return {"ok": False, "unapplied": missing}
    return {"ok": True}


def check_cache() -> dict:
    from django.core.cache import cache

    try:
        cache.get("health:readyz")
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "state": "unavailable", "error": exc.__class__.__name__}
    state = "ok"
    try:
        from core.cache import health as cache_health

        if not cache_health.healthy():
            # Reachable now, but this process still answers from the database
            # until its pending invalidations are delivered (core.cache).
            state = "recovering"
    except (ImportError, AttributeError):
        pass
    return {"ok": state == "ok", "state": state}


# --- replica lag -----------------------------------------------------------------------


def check_replica_lag() -> dict:
    """Each read replica's lag (core.replicas.lag_report), also exported as the
    ``shiftboard_db_replica_lag_seconds`` / ``_bytes`` gauges. Not ok when one is
    unreachable, does not follow the primary (``not_replicating``: promoted), or is
    more than REPLICA_MAX_LAG_SECONDS behind with WAL still to replay (an idle
    primary makes the seconds grow with nothing to replay). Not critical: reads
    fall back to the primary when a replica is behind, down or not replicating
    (core.replicas), so that is no reason to stop sending traffic."""
    from . import replicas

    limit = float(getattr(settings, "REPLICA_MAX_LAG_SECONDS", 30))
    report, ok = replicas.lag_report(), True
    for alias, entry in report.items():
        seconds, behind, status = entry.get("lag_seconds"), entry.get("lag_bytes"), entry.get("status")
        replicating = {"ok": True, "not_replicating": False}.get(status)
        export_replica(alias, status in ("ok", "not_replicating"), seconds, behind, replicating=replicating)
        entry["ok"] = status == "ok" and not (
            seconds is not None and seconds > limit and (behind or 0) > 0
        )
        ok = ok and entry["ok"]
    return {"ok": ok, "replicas": report}


def export_replica(alias: str, up: bool, seconds: float | None = None, behind: int | None = None,
                   replicating: bool | None = None) -> None:
    """Set a replica's gauges: up 1/0, replicating 1/0 (NaN: not known), and its lag,
    NaN where not known (down, not replicating, or not measured), so no value
    outlives the measurement it came from."""
    REPLICA_UP.labels(alias).set(1 if up else 0)
    REPLICA_REPLICATING.labels(alias).set(math.nan if replicating is None else int(replicating))
    measured = up and replicating is not False
    REPLICA_LAG.labels(alias).set(seconds if measured and seconds is not None else math.nan)
    REPLICA_LAG_BYTES.labels(alias).set(behind if measured and behind is not None else math.nan)


register_check("database", check_database)
register_check("migrations", check_migrations)
register_check("cache", check_cache, critical=False)
register_check("replica_lag", check_replica_lag, critical=False)


def _discard(conn) -> None:
    """Drop a broken connection so the next probe connects afresh."""
    try:
        conn.close()
    except Exception:  # noqa: BLE001
        pass


def readiness() -> tuple[bool, dict]:
    results, ready = {}, True
    for name, (func, critical) in _checks.items():
        if name == "migrations" and not results.get("database", {}).get("ok", True):
            results[name] = {"ok": False, "error": "database unreachable"}
        else:
            try:
                results[name] = func()
            except Exception as exc:  # noqa: BLE001
                results[name] = {"ok": False, "error": exc.__class__.__name__}
        results[name]["critical"] = critical
        if critical and not results[name].get("ok"):
            ready = False
    return ready, results


def _json(status: int, payload: dict) -> HttpResponse:
    response = HttpResponse(json.dumps(payload), status=status, content_type="application/json")
    response["Cache-Control"] = "no-store"
    return response


class ProbeMiddleware:
    """Answers ``/livez`` and ``/readyz`` (GET or HEAD) before the rest of the stack."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        path = request.path_info
        if path != LIVENESS_PATH and path != READINESS_PATH:
            return self.get_response(request)
        request.is_probe = True
        if request.method not in ("GET", "HEAD"):
            return _json(405, {"status": "method not allowed"})
        if path == LIVENESS_PATH:
            return _json(200, {"status": "alive"})
        ready, checks = readiness()
        return _json(200 if ready else 503, {"status": "ready" if ready else "unready", "checks": checks})
