"""Outage handling: what this process knows about a failing cache (log once per
outage), the bumps still to deliver, the drain threads that keep an unanswered
bump in flight, the probe thread, and the fence (a global generation bump) that
retires every entry from before an outage. docs/cache.md, "Outages"."""
from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable

from .keys import GENERATION_SCOPE, VERSION_PREFIX

logger = logging.getLogger("shiftboard.cache")

# While the cache is failing, a background thread checks it this often (the
# setting CACHE_PROBE_INTERVAL_SECONDS overrides it).
PROBE_INTERVAL_SECONDS = 0.05
# A bump left in flight is waited for this long, at most this many at once.
DRAIN_SECONDS = 30
MAX_IN_FLIGHT = 8


class CacheUnavailable(Exception):
    """The cache is known to be failing; the caller answers from the database."""


_drains = threading.BoundedSemaphore(MAX_IN_FLIGHT)


def start_drain(pool, conn) -> bool:
    """Wait for a bump's reply in the background, keeping its connection open
    (the command stays queued in a paused Redis and runs when it resumes)."""
    if not _drains.acquire(blocking=False):
        return False
    drains = _drains

    def drain():
        try:
            conn.read_response(timeout=DRAIN_SECONDS)
        except Exception:  # noqa: BLE001 - the probe thread re-delivers in any case
            pass
        finally:
            conn.disconnect()
            pool.release(conn)
            drains.release()

    threading.Thread(target=drain, name="cache-bump-drain", daemon=True).start()
    return True


class Health:
    """Per process: is the cache failing (log once per outage), which bumps are
    still to deliver, and must the generation be bumped before trusting the cache."""

    def __init__(self):
        self.lock = threading.Lock()
        self.recover_lock = threading.Lock()
        self.failing = False
        self.fence_needed = False
        self.pending_bumps: set[str] = set()
        self.probe: threading.Thread | None = None

    def failed(self, what: str, exc: BaseException, scopes: Iterable[str] = ()):
        with self.lock:
            self.pending_bumps.update(scopes)
            self.fence_needed = True
            if not self.failing:
                logger.warning("cache unavailable (%s): %r; serving from the database", what, exc)
            self.failing = True
            if self.probe is None or not self.probe.is_alive():
                self.probe = threading.Thread(target=self._probe_loop, name="cache-probe", daemon=True)
                self.probe.start()

    def healthy(self) -> bool:
        return not (self.failing or self.fence_needed or self.pending_bumps)

    def _probe_loop(self):
        from django.conf import settings

        interval = getattr(settings, "CACHE_PROBE_INTERVAL_SECONDS", PROBE_INTERVAL_SECONDS)
        while not self.healthy():
            time.sleep(interval)
            try:
                recover()
            except Exception:  # noqa: BLE001 - still down: keep probing
                pass


health = Health()


def _reset_after_fork():
    # A forked worker starts with no threads and must not inherit a held lock.
    # Reset in place: other modules hold a reference to ``health``.
    global _drains
    health.lock = threading.Lock()
    health.recover_lock = threading.Lock()
    health.pending_bumps = set(health.pending_bumps)
    health.probe = None
    _drains = threading.BoundedSemaphore(MAX_IN_FLIGHT)
    if not health.healthy():
        health.failing = False
        health.failed("fork", RuntimeError("inherited an outage"))


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def recover() -> None:
    """Deliver pending bumps and the fence; mark the cache available. Raises while
    the cache still fails."""
    # Imported here: the backends use this module (CacheUnavailable, start_drain).
    from .backends import backend

    with health.recover_lock:
        if health.healthy():
            return
        b = backend()
        b.ping()
        with health.lock:
            pending = set(health.pending_bumps)
        logger.debug("fence: bump %s", " ".join(sorted(pending | {GENERATION_SCOPE})))
        b.bump([VERSION_PREFIX + s for s in sorted(pending | {GENERATION_SCOPE})])
        with health.lock:
            health.pending_bumps -= pending
            if not health.pending_bumps:
                health.fence_needed = False
                if health.failing:
                    logger.warning("cache available again; entries from before the outage retired")
                health.failing = False


def ensure_healthy() -> None:
    """Raise ``CacheUnavailable`` while failing; deliver what is owed first if the
    cache answers again but this process has not caught up yet."""
    if health.failing:
        # The probe thread owns recovery while failing: no timeout per request.
        raise CacheUnavailable("cache failing")
    if not health.healthy():
        recover()
