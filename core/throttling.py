"""Throttles that hold when the cache is down, and a per-account failure budget.

Cache down. DRF keeps each throttle's request history in the cache (Redis in
production). When the cache fails, these throttles do not fail open (a login or
code guessing limit that an attacker could lift by overloading Redis is no
limit): they fall back to a per-process local-memory history and keep counting
there. With several processes the effective limit while Redis is down is the
rate times the number of processes: bounded, never unlimited. The outage is
logged once per process (and its end once).

Failure budgets. A per-IP throttle does not stop guessing one account's
password from many addresses; ``FailureBudget`` counts *failed* attempts per
account in fixed windows (one atomic ``INCR`` per failure, same fallback), and
refuses further attempts on that account once the window's budget is spent,
right or wrong. Counting failures only (not every login) means a user who logs
in often from many devices is never refused.
"""
from __future__ import annotations

import hashlib
import logging
import threading
import time

from django.core.cache import cache as default_cache
from django.core.cache.backends.locmem import LocMemCache
from rest_framework.throttling import ScopedRateThrottle, SimpleRateThrottle

logger = logging.getLogger("shiftboard.throttle")

# The per-process stand-in for the shared cache while it is failing.
local_cache = LocMemCache("shiftboard-throttle-fallback", {"TIMEOUT": None, "OPTIONS": {"MAX_ENTRIES": 50_000}})

_outage = threading.Event()


def _cache_failed(exc: Exception) -> None:
    if not _outage.is_set():
        _outage.set()
        logger.warning("throttles: cache unavailable, counting in this process until it returns: %s", exc)


def _cache_ok() -> None:
    if _outage.is_set():
        _outage.clear()
        logger.warning("throttles: cache available again")


class _FallBackToProcess:
    """``allow_request`` on the shared cache, or on ``local_cache`` when it fails."""

    cache = default_cache

    def allow_request(self, request, view):
        try:
            allowed = super().allow_request(request, view)
        except Exception as exc:  # noqa: BLE001 - any cache failure
            _cache_failed(exc)
            self.cache = local_cache
            return super().allow_request(request, view)
        _cache_ok()
        return allowed


class UserScopedThrottle(_FallBackToProcess, ScopedRateThrottle):
    """Per user (per IP when anonymous), rate from ``throttle_scope`` on the view."""


class IPThrottle(_FallBackToProcess, SimpleRateThrottle):
    """Per client IP, for endpoints used before login (``scope`` set by subclass)."""

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class LoginThrottle(IPThrottle):
    scope = "login"


class RegisterThrottle(IPThrottle):
    scope = "register"


class FailureBudget:
    """At most ``rate`` failures per key and window (``"10/hour"``): ``exhausted``
    says whether the current window's budget is spent (then ``wait()`` seconds
    remain in it), ``record_failure`` spends one. Keys are hashed (bounded size)."""

    def __init__(self, scope: str):
        self.scope = scope

    def _limits(self) -> tuple[int, int]:
        rate = SimpleRateThrottle.THROTTLE_RATES[self.scope]
        num, period = SimpleRateThrottle.parse_rate(None, rate)
        return num, period

    def _key(self, ident: str) -> tuple[str, int]:
        _, period = self._limits()
        window = int(time.time() // period)
        digest = hashlib.sha256(ident.encode("utf-8", "replace")).hexdigest()[:32]
        return f"fail:{self.scope}:{digest}:{window}", period

    def _call(self, operation):
        try:
            result = operation(default_cache)
        except Exception as exc:  # noqa: BLE001 - any cache failure: count in this process
            _cache_failed(exc)
            return operation(local_cache)
        _cache_ok()
        return result

    def exhausted(self, ident: str) -> bool:
        num, _ = self._limits()
        key, _ = self._key(ident)
        return (self._call(lambda c: c.get(key)) or 0) >= num

    def record_failure(self, ident: str) -> None:
        key, period = self._key(ident)

        def incr(c):
            c.add(key, 0, timeout=period + 5)  # creates the window's counter once
            try:
                return c.incr(key)
            except ValueError:  # expired between add and incr
                c.add(key, 1, timeout=period + 5)
                return 1

        self._call(incr)

    def wait(self) -> int:
        _, period = self._limits()
        return int(period - time.time() % period) + 1


login_failures = FailureBudget("login_account")
