"""Throttles that never fail a request when the cache is down (they fail open)."""
import logging

from rest_framework.throttling import ScopedRateThrottle, SimpleRateThrottle

logger = logging.getLogger("shiftboard.throttle")


class _FailOpen:
    def allow_request(self, request, view):
        try:
            return super().allow_request(request, view)
        except Exception as exc:  # noqa: BLE001 - cache unavailable
            logger.warning("throttle skipped, cache unavailable: %s", exc)
            return True


class UserScopedThrottle(_FailOpen, ScopedRateThrottle):
    """Per user (per IP when anonymous), rate from ``throttle_scope`` on the view."""


class IPThrottle(_FailOpen, SimpleRateThrottle):
    """Per client IP, for endpoints used before login (``scope`` set by subclass)."""

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class LoginThrottle(IPThrottle):
    scope = "login"


class RegisterThrottle(IPThrottle):
    scope = "register"
