"""The version counters' storage: which backend serves this process (Redis, or
any other Django cache such as local memory in embedded runs), and the generic
backend. Both offer the same few operations; keys given to them are logical."""
from __future__ import annotations

import contextlib
import threading
import time

from django.core.cache import cache
from django.core.signals import setting_changed
from django.dispatch import receiver

from .keys import (
    LOCK_PREFIX,
    NOT_MODIFIED,
    RESPONSE_PREFIX,
    STAMPEDE_LOCK_SECONDS,
    STATS_KEY,
    VERSION_PREFIX,
    VERSION_TTL,
    decode_entry,
    digest,
    entry_stored_tag,
    names_tag,
    note_created,
)
from .outage import CacheUnavailable
from .redis_backend import RedisBackend
from .trace import current as current_trace
from .trace import record_lookup, timed


class GenericBackend:
    """Any Django cache; used with the local-memory cache (one process). A missing
    counter starts from ``time.time_ns() // 1000`` (microseconds, as on Redis)."""

    grouped = False  # keys spread over hash-tag groups (cluster.py)
    checks_caller = False  # no one-round-trip check of a remembered caller (redis_backend.py)

    def __init__(self, django_cache):
        self.cache = django_cache
        self._lock = threading.Lock()

    def versions(self, keys: list[str]) -> list[int]:
        found = self.cache.get_many(keys)
        out = []
        for key in keys:
            value = found.get(key)
            if value is None:
                if self.cache.add(key, time.time_ns() // 1000, timeout=VERSION_TTL):
                    note_created([key])
                value = self.cache.get(key)
                if value is None:
                    raise CacheUnavailable(f"version counter {key} could not be created")
            else:
                # As versions.lua: refreshed once less than half of its life is left.
                left = self.ttl(key)
                if left is not None and left < VERSION_TTL / 2:
                    self.cache.touch(key, VERSION_TTL)
            out.append(int(value))
        return out

    def bump(self, keys: list[str]) -> None:
        for key in keys:
            with self._lock:
                try:
                    self.cache.incr(key)
                except ValueError:
                    self.cache.set(key, time.time_ns() // 1000, timeout=VERSION_TTL)

    def bump_in_flight(self, keys: list[str]) -> bool:
        """Nothing to keep in flight: this cache is in the process (RedisBackend's)."""
        return False

    def ping(self) -> None:
        self.cache.get("ping")

    def select_group(self, material: str) -> None:
        """One store, no groups (cluster.py has several)."""

    def in_group(self, material: str):
        """One store, no groups: a ``with`` block that changes nothing."""
        return contextlib.nullcontext()

    def _count(self, field: str) -> None:
        with self._lock:
            stats = self.cache.get(STATS_KEY) or {}
            stats[field] = stats.get(field, 0) + 1
            self.cache.set(STATS_KEY, stats, timeout=None)

    def version_key(self, scope: str) -> str:
        return VERSION_PREFIX + scope

    def peek(self, counter_keys: list[str]) -> list[str | None]:
        """The values of counters named as ``version_key`` names them, ``None`` for
        a missing one; creates nothing (``cache_explain``)."""
        found = self.cache.get_many(counter_keys)
        return [None if found.get(k) is None else str(found[k]) for k in counter_keys]

    def fast_lookup(self, endpoint: str, material: str, names: list[str], stat: str, inm: str = ""):
        return fast_lookup_in_steps(self, endpoint, material, names, stat, inm)

    def lookup(self, entry_key: str, lock_key: str | None, stat: str | None, inm: str = ""):
        if stat:
            self._count(stat + "|lookup")
        value = self.cache.get(entry_key)
        if value is None and stat is not None:
            record_lookup(None, None, 0)
        if value is not None:
            rows, fragment = decode_entry(value)
            current = self.cache.get_many(list(rows)) if rows else {}
            if stat is not None:
                record_lookup(rows, {k: None if v is None else str(v) for k, v in current.items()}, len(VERSION_PREFIX))
            if all(str(current.get(key)) == version for key, version in rows.items()):
                tag = entry_stored_tag(value)  # keys.entry_tag, stored by encode_entry
                return (NOT_MODIFIED if names_tag(inm, tag) else fragment), False, tag
        if not lock_key:
            return None, False, None
        return None, self.cache.add(lock_key, 1, timeout=STAMPEDE_LOCK_SECONDS), None

    def get(self, key: str):
        return self.cache.get(key)

    def put(self, key: str, value: bytes, ttl: int) -> None:
        self.cache.set(key, value, timeout=ttl)

    def store(self, entry_key: str, value: bytes, ttl: int, lock_key: str | None, stat: str) -> None:
        if value is not None:
            self.cache.set(entry_key, value, timeout=ttl)
        if lock_key:
            self.cache.delete(lock_key)
        self._count(stat + "|miss")

    def delete(self, key: str) -> None:
        """Drop one key (tests: an evicted counter)."""
        self.cache.delete(key)

    def drop(self, keys: list[str]) -> None:
        self.cache.delete_many(keys)

    def release(self, lock_key: str) -> None:
        self.cache.delete(lock_key)

    def expire(self, key: str, seconds: int) -> None:
        """Shorten one key's life (tests: a counter near its end)."""
        self.cache.touch(key, seconds)

    def ttl(self, key: str) -> int | None:
        expiry = getattr(self.cache, "_expire_info", {}).get(self.cache.make_and_validate_key(key))
        return None if expiry is None else max(0, int(expiry - time.time()))

    def stats(self) -> dict[str, int]:
        return dict(self.cache.get(STATS_KEY) or {})

    def reset_stats(self) -> None:
        self.cache.delete(STATS_KEY)

    def scan_prefix(self, prefix: str):
        store = getattr(self.cache, "_cache", {})
        full = self.cache.make_key(prefix)
        strip = len(self.cache.make_key(""))
        for key in list(store):
            if key.startswith(full):
                yield key[strip:]


def fast_lookup_in_steps(b, endpoint: str, material: str, names: list[str], stat: str, inm: str = ""):
    """``fast_lookup`` as two calls (versions, then the validated lookup).
    ``names`` is already sorted and holds the generation scope."""
    # Imported here: versions uses this module's ``backend()``.
    from .versions import get_versions

    versions = get_versions(names)
    key = RESPONSE_PREFIX + endpoint + ":" + digest(material, [str(versions[n]) for n in names])
    fragment, locked, tag = b.lookup(key, LOCK_PREFIX + key, stat, inm)
    return fragment, locked, versions, key, tag


_backend_instance = None


def backend():
    """The backend for the configured default cache (chosen once per process, again
    when a test overrides CACHES). ``cache`` is Django's per-thread proxy."""
    global _backend_instance
    if _backend_instance is None:
        client = getattr(cache, "client", None)
        if client is not None and hasattr(client, "get_client"):
            from .cluster import ClusterBackend, ClusterClient

            _backend_instance = (ClusterBackend if isinstance(client, ClusterClient) else RedisBackend)(cache)
        else:
            _backend_instance = GenericBackend(cache)
    if current_trace() is not None:  # the toolbar panel is tracing this request
        return TimedBackend(_backend_instance)
    return _backend_instance


class TimedBackend:
    """The backend with every operation timed into the request's trace (only
    while the toolbar panel traces a request)."""

    def __init__(self, inner):
        self._inner = inner

    def __getattr__(self, name):
        attr = getattr(self._inner, name)
        if name in ("version_key", "in_group") or not callable(attr):
            return attr

        def call(*args, **kwargs):
            with timed(name):
                return attr(*args, **kwargs)

        return call


@receiver(setting_changed)
def _cache_settings_changed(setting, **kwargs):
    global _backend_instance
    if setting == "CACHES":
        _backend_instance = None
