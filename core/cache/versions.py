"""Version counters: read the current versions of scopes (creating missing
counters) and bump them, now or after the current transaction commits. A bump
that cannot be delivered is kept for the probe thread (``outage``)."""
from __future__ import annotations

import logging
from collections.abc import Iterable

from django.db import transaction

from ..middleware import current_request_id
from .backends import backend
from .keys import GENERATION_SCOPE, VERSION_PREFIX, take_created
from .outage import ensure_healthy, health
from .trace import record_bumps

logger = logging.getLogger("shiftboard.cache")


def log_bump(scopes: Iterable[str], why: str = "bump") -> None:
    """One DEBUG line per bump, with the id of the request that caused it ("-"
    outside a request): ``LOG_LEVEL=DEBUG`` shows who retired what."""
    if logger.isEnabledFor(logging.DEBUG):
        rid = current_request_id()
        # ``extra``: the record carries the id for any handler (the console
        # handler's RequestIDLogFilter would stamp the same value).
        logger.debug("%s %s", why, " ".join(sorted(scopes)), extra={"request_id": rid})


def get_versions(scopes: Iterable[str]) -> dict[str, int]:
    """Current version of every scope (plus the global generation), creating
    missing counters. Raises on cache failure (callers answer from the database)."""
    ensure_healthy()
    names = sorted(set(scopes) | {GENERATION_SCOPE})
    values = backend().versions([VERSION_PREFIX + s for s in names])
    return dict(zip(names, values))


def row_versions(scopes: Iterable[str]) -> dict[str, int]:
    """Current versions of row scopes, keyed by the backend's counter names (what
    an entry's header stores). Missing counters are created."""
    ensure_healthy()
    names = sorted(set(scopes))
    if not names:
        return {}
    b = backend()
    keys = [b.version_key(s) for s in names]
    values = b.versions([VERSION_PREFIX + s for s in names])
    return dict(zip(keys, values))


def bump_now(scopes: Iterable[str]) -> None:
    """Invalidate ``scopes`` now (one INCR each). Never raises: an undeliverable bump
    is kept and re-delivered (docs/cache.md, "Outages"). On Redis, failing or
    not, the bump has been sent before this returns (and so before the write's
    response): a paused Redis runs it before any read sent after that response."""
    scopes = {s for s in scopes if s}
    if not scopes:
        return
    record_bumps(scopes, sent=True)
    keys = [VERSION_PREFIX + s for s in sorted(scopes)]
    sent = False
    try:
        if health.healthy():
            log_bump(scopes)
            sent = True  # no reply in time: bump() leaves it in flight (mechanism 1)
            backend().bump(keys)
            return
        with health.lock:
            health.pending_bumps |= scopes
        log_bump(scopes, "bump (pending)")
        # Raises while failing; delivers what is owed, this bump with it, if the
        # cache answers again but this process has not caught up yet.
        ensure_healthy()
        return
    except Exception as exc:  # noqa: BLE001 - any cache failure
        health.failed("bump", exc, scopes)
    if not sent:
        # Failing: kept pending for the probe, and also sent now without
        # waiting for the reply (inflight.py).
        backend().bump_in_flight(keys)


def bump(*scopes: str) -> None:
    """Invalidate scopes once the current transaction commits (at once outside one).
    A rolled-back transaction bumps nothing."""
    scopes = {s for s in scopes if s}
    if scopes:
        record_bumps(scopes, sent=False)
        transaction.on_commit(lambda: bump_now(scopes))


def drop_created() -> None:
    """Delete the counters that this request's reads created (``keys.note_created``):
    called when its response is not stored (a 404 for a row that does not exist),
    so that the request leaves no key behind. As safe as an eviction (docs/cache.md,
    "Redis memory and eviction"): an entry another request stored under one of
    them meanwhile is never matched again (the next read recreates the counter
    from the clock, larger), so this costs a miss at most, never a stale read."""
    keys = take_created()
    if not keys:
        return
    try:
        backend().drop(keys)
    except Exception as exc:  # noqa: BLE001 - left in place: bounded by eviction, as before
        health.failed("write", exc)
