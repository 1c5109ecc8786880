"""The cache layer: versioned scopes and the response cache.

A *scope* names a set of data (``jobs``, ``job:42``, ``user:7:payments``). Each
scope has a version counter in the cache; a cached response's key contains the
versions of every scope it depends on, so invalidating a scope is one ``INCR``:
entries made under the old version are never read again and die by TTL.

Ordering that makes reads never stale (ARCHITECTURE.md):
- readers read the versions *before* they query the database;
- writers bump the versions in ``transaction.on_commit`` (after the data is visible).
A reader that raced a writer can then only store old data under the old version.

A missing counter (evicted, or Redis restarted) starts from ``time.time_ns()``: a
value larger than any this counter ever had, so old entries cannot come back.

Cache failures never fail a request: the response is built from the database. A
bump that fails is remembered in this process and retried before this process
trusts the cache again.
"""
from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable
from functools import wraps

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from prometheus_client import Counter

logger = logging.getLogger("shiftboard.cache")

VERSION_PREFIX = "v:"
RESPONSE_PREFIX = "r:"
LOCK_PREFIX = "l:"
# How long a request waits for another one that is rebuilding the same entry.
STAMPEDE_WAIT_SECONDS = 0.5
STAMPEDE_POLL_SECONDS = 0.02
STAMPEDE_LOCK_SECONDS = 5

CACHE_REQUESTS = Counter(
    "shiftboard_response_cache_total",
    "Response cache lookups by endpoint and result (hit, miss, bypass).",
    ["view", "result"],
)


class _Health:
    """Remembers, per process, whether the cache is failing (log once per outage)
    and which scope bumps could not be delivered."""

    def __init__(self):
        self.lock = threading.Lock()
        self.failing = False
        self.pending_bumps: set[str] = set()

    def failed(self, what: str, exc: BaseException):
        with self.lock:
            if not self.failing:
                logger.warning("cache unavailable (%s): %s; serving from the database", what, exc)
            self.failing = True

    def recovered(self):
        if self.failing:
            with self.lock:
                if self.failing:
                    logger.warning("cache available again")
                self.failing = False


health = _Health()


# --- versions ---------------------------------------------------------------

def _version_key(scope: str) -> str:
    return VERSION_PREFIX + scope


def _fresh_version() -> int:
    return time.time_ns()


def get_versions(scopes: Iterable[str]) -> dict[str, int]:
    """Current version of every scope, creating missing counters. Raises on cache
    failure (callers fall back to the database)."""
    scopes = sorted(set(scopes))
    keys = [_version_key(s) for s in scopes]
    found = cache.get_many(keys)
    versions = {}
    for scope, key in zip(scopes, keys):
        value = found.get(key)
        if value is None:
            cache.add(key, _fresh_version(), timeout=None)
            value = cache.get(key)
            if value is None:
                raise RuntimeError(f"version counter {key} could not be created")
        versions[scope] = int(value)
    return versions


def _bump_now(scopes: Iterable[str]) -> None:
    for scope in scopes:
        key = _version_key(scope)
        try:
            cache.incr(key)
        except ValueError:
            # Missing counter: a fresh value, larger than any it ever had.
            if not cache.add(key, _fresh_version(), timeout=None):
                cache.incr(key)


def _flush_pending() -> bool:
    """Deliver bumps that failed earlier in this process. True when none is left."""
    if not health.pending_bumps:
        return True
    with health.lock:
        pending = set(health.pending_bumps)
    try:
        _bump_now(pending)
    except Exception as exc:  # noqa: BLE001 - any cache failure
        health.failed("bump retry", exc)
        return False
    with health.lock:
        health.pending_bumps -= pending
    return True


def bump_now(scopes: Iterable[str]) -> None:
    scopes = set(scopes)
    if not scopes:
        return
    try:
        _bump_now(scopes)
        health.recovered()
    except Exception as exc:  # noqa: BLE001
        with health.lock:
            health.pending_bumps |= scopes
        health.failed("bump", exc)


def bump(*scopes: str) -> None:
    """Invalidate scopes once the current transaction commits (at once outside one).
    A rolled-back transaction bumps nothing."""
    scopes = {s for s in scopes if s}
    if scopes:
        transaction.on_commit(lambda: bump_now(scopes))


# --- the response cache --------------------------------------------------------

def _response_key(view_name: str, request, versions: dict[str, int], caller: str) -> str:
    query = sorted(request.query_params.lists())
    raw = repr((request.path, query, caller, sorted(versions.items())))
    digest = hashlib.blake2b(raw.encode(), digest_size=16).hexdigest()
    return f"{RESPONSE_PREFIX}{view_name}:{digest}"


def _wait_for(key: str):
    deadline = time.monotonic() + STAMPEDE_WAIT_SECONDS
    while time.monotonic() < deadline:
        time.sleep(STAMPEDE_POLL_SECONDS)
        value = cache.get(key)
        if value is not None:
            return value
    return None


def _set_status(view, request, response, status: str):
    request._request.cache_status = status
    response["X-Cache"] = status.upper() if status != "bypass" else "MISS"
    CACHE_REQUESTS.labels(view.__class__.__name__, status).inc()


def _json_renderer_accepted(request) -> bool:
    renderer = getattr(request, "accepted_renderer", None)
    return renderer is not None and renderer.format == "json"


def serve_cached(view, request, build: Callable, scopes: Iterable[str], private: bool):
    """Serve ``build()``'s response from the cache when an entry exists for the
    current versions of ``scopes``; otherwise build it and store it. Permission
    checks have already run (this is called from the handler, after ``initial``)."""
    from rest_framework.response import Response

    view_name = view.__class__.__name__
    if not _json_renderer_accepted(request):
        return build()
    scopes = set(scopes)
    caller = "public"
    if private:
        user = request.user
        caller = f"user:{user.pk}" if user.is_authenticated else "anon"
        if user.is_authenticated:
            # Any change to the caller (role, staff flag) retires their private entries.
            scopes.add(f"user:{user.pk}")
    try:
        if not _flush_pending():
            raise RuntimeError("undelivered invalidations")
        versions = get_versions(scopes)
        key = _response_key(view_name, request, versions, caller)
        fragment = cache.get(key)
        lock_key = None
        if fragment is None:
            lock_key = LOCK_PREFIX + key
            if not cache.add(lock_key, 1, timeout=STAMPEDE_LOCK_SECONDS):
                # Someone else is rebuilding this entry: wait for it briefly.
                fragment = _wait_for(key)
                lock_key = None
        health.recovered()
    except Exception as exc:  # noqa: BLE001 - cache down: answer from the database
        health.failed("read", exc)
        response = build()
        _set_status(view, request, response, "bypass")
        return response

    if fragment is not None:
        response = Response()
        response.cached_fragment = fragment
        _set_status(view, request, response, "hit")
        return response

    response = build()
    _set_status(view, request, response, "miss")
    if response.status_code == 200:
        ttl = settings.RESPONSE_CACHE_TTL

        def store(rendered):
            fragment = getattr(rendered, "rendered_fragment", None)
            try:
                if fragment is not None:
                    cache.set(key, fragment, timeout=ttl)
                if lock_key:
                    cache.delete(lock_key)
            except Exception as exc:  # noqa: BLE001
                health.failed("write", exc)

        response.add_post_render_callback(store)
    elif lock_key:
        try:
            cache.delete(lock_key)
        except Exception as exc:  # noqa: BLE001
            health.failed("unlock", exc)
    return response


def cached_response(scopes: Callable[..., Iterable[str]], *, private: bool = False):
    """Decorates a view handler (``list``, ``retrieve``, an ``@action``):
    ``scopes(view, request, **kwargs)`` names what the response depends on;
    ``private=True`` keys the entry by caller."""

    def decorate(handler):
        @wraps(handler)
        def wrapper(view, request, *args, **kwargs):
            return serve_cached(
                view,
                request,
                lambda: handler(view, request, *args, **kwargs),
                scopes(view, request, **kwargs),
                private,
            )

        return wrapper

    return decorate
