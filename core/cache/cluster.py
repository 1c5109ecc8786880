"""The cache on a Redis Cluster (``REDIS_CLUSTER_NODES``; docs/scaling.md, "Redis Cluster").

A Lua script on a cluster may touch only keys it declares, and all of them must
hash to one slot. A response's lookup touches its scope counters, its entry, its
rebuild lock and the stats hash -- so they share a hash tag. One tag for every
counter would put the whole cache's hottest keys (``*``, ``jobs``) on one shard,
so instead:

- the keys are spread over ``CACHE_CLUSTER_GROUPS`` *groups* (hash tags
  ``{g0}`` ... ``{g<N-1>}``): a response belongs to the group picked by a hash of its
  key material (path, query, caller, scope names -- known before any version is
  read), and its entry, lock, stats field and the counters it reads all carry
  that group's tag;
- every group has its own copy of every counter: a bump increments the counter
  in every group (one script per group), a read uses its own group's copy only.
  Reads (the bulk) spread over the shards with the responses; writes cost one
  round trip per group.

Each group's copies obey the single-Redis rules on their own (fresh values from
the server clock, bump after commit, the outage fence bumps ``*`` in every group),
so an entry is valid exactly when it would be on one Redis. The scripts declare
every key: the versions and bump scripts take the counters (and their ``lsn:``
companions) as KEYS; the lookup runs ``lookup_declared.lua`` (entry, lock, stats)
and checks the entry's row header with an MGET of the counters it names (same
tag); the fast path's one-script lookup, which derives the entry key inside Lua,
becomes two calls (versions, then lookup).

``ClusterClient`` is django-redis's ``DefaultClient`` on one
``redis.cluster.RedisCluster`` (django-redis has no cluster client).
"""
from __future__ import annotations

import contextlib
import contextvars
import zlib

from django.conf import settings
from django_redis.client.default import DefaultClient

from .keys import (
    NOT_MODIFIED,
    STAMPEDE_LOCK_SECONDS,
    STATS_KEY,
    VERSION_PREFIX,
    decode_entry,
    entry_stored_tag,
    names_tag,
)
from .redis_backend import RedisBackend
from .trace import record_lookup, wants_header

_group: contextvars.ContextVar[int] = contextvars.ContextVar("cache_cluster_group", default=0)


def groups() -> int:
    return getattr(settings, "CACHE_CLUSTER_GROUPS", 12)


def tag(group: int) -> str:
    return f"{{g{group}}}"


class ClusterBackend(RedisBackend):
    """RedisBackend with every key under the current group's hash tag."""

    grouped = True
    checks_caller = False  # the token's entry lives in the token's own group (callers.py)

    def select_group(self, material: str) -> None:
        _group.set(zlib.crc32(material.encode()) % groups())

    @contextlib.contextmanager
    def in_group(self, material: str):
        """The keys of a ``with`` block in the group of ``material``, then the
        response's group again: a token's entry (callers.py) lives in the group of
        the token, whatever response it authenticates."""
        token = _group.set(zlib.crc32(material.encode()) % groups())
        try:
            yield
        finally:
            _group.reset(token)

    def _key(self, key: str) -> str:
        return str(self._make_key(tag(_group.get()) + key))

    def _in_every_group(self, action) -> None:
        for group in range(groups()):
            token = _group.set(group)
            try:
                action()
            finally:
                _group.reset(token)

    def bump(self, keys: list[str]) -> None:
        """One script per group. No in-flight drain here (each group is its own
        connection to its own shard): a bump that fails is kept and re-delivered,
        and the outage fence follows (docs/cache.md, "Outages", mechanisms 2 and 3)."""
        from . import floors

        position = None
        if floors.tracking():
            from core import replicas

            position = replicas.primary_lsn()
        client = self._client()
        script = self._script(client, "bump")

        def one():
            all_keys, args = self._bump_args(keys, position)
            script(keys=all_keys, args=args, client=client)

        self._in_every_group(one)

    def bump_in_flight(self, keys: list[str]) -> bool:
        """Not on a Cluster (see ``bump``): the bump stays pending, the fence follows."""
        return False

    def fast_lookup(self, endpoint: str, material: str, names: list[str], stat: str, inm: str = ""):
        from .backends import fast_lookup_in_steps

        self.select_group(material)
        return fast_lookup_in_steps(self, endpoint, material, names, stat, inm)

    def lookup(self, entry_key: str, lock_key: str | None, stat: str | None, inm: str = ""):
        """As RedisBackend.lookup, the row check (and so the ETag) in Python: the
        entry is read, but a 304 still sends no body."""
        client = self._client()
        script = self._script(client, "lookup_declared")
        value, locked = script(
            keys=[self._key(entry_key), self._key(lock_key or entry_key), self._key(STATS_KEY)],
            args=[STAMPEDE_LOCK_SECONDS, (stat + "|lookup") if stat else "", "1" if lock_key else "0"],
            client=client,
        )
        traced = stat is not None and wants_header()
        if not value:
            if traced:
                record_lookup(None, None, 0)
            return None, bool(locked), None
        rows, fragment = decode_entry(value)
        if rows:
            # The counters it names carry the entry's tag: one slot, one MGET. Read
            # after the entry: a bump in between only turns the hit into a miss.
            current = client.mget(list(rows))
            if traced:
                now = {k: (c.decode() if c is not None else None) for k, c in zip(rows, current)}
                record_lookup(rows, now, len(self._key(VERSION_PREFIX)))
            if any((c.decode() if c is not None else None) != want for c, want in zip(current, rows.values())):
                locked = bool(lock_key) and bool(
                    client.set(self._key(lock_key), "1", nx=True, ex=STAMPEDE_LOCK_SECONDS))
                return None, locked, None
        etag = entry_stored_tag(value)  # keys.entry_tag, stored by encode_entry
        return (NOT_MODIFIED if names_tag(inm, etag) else fragment), False, etag

    def stats(self) -> dict[str, int]:
        out: dict[str, int] = {}

        def one():
            for k, v in self._client().hgetall(self._key(STATS_KEY)).items():
                out[k.decode()] = out.get(k.decode(), 0) + int(v)

        self._in_every_group(one)
        return out

    def reset_stats(self) -> None:
        self._in_every_group(lambda: self._client().delete(self._key(STATS_KEY)))

    # Admin and tests only (a key evicted, a counter near its end of life): a
    # logical key in every group -- a counter has a copy in each, an entry lives
    # in one.
    def delete(self, key: str) -> None:
        self._in_every_group(lambda: self._client().delete(self._key(key)))

    def expire(self, key: str, seconds: int) -> None:
        self._in_every_group(lambda: self._client().expire(self._key(key), seconds))

    def ttl(self, key: str) -> int | None:
        """The longest time to live among the groups' copies (None: none has one)."""
        found: list[int] = []
        self._in_every_group(lambda: found.append(self._client().ttl(self._key(key))))
        return max((t for t in found if t >= 0), default=None)

    def peek(self, counter_keys: list[str]) -> list[str | None]:
        client = self._client()
        return [None if v is None else v.decode() for v in client.mget_nonatomic(counter_keys)] if counter_keys else []

    def scan_prefix(self, prefix: str):
        """Admin-only: the logical keys of group 0 (every group holds the same counters;
        responses are counted in every group)."""
        client = self._client()
        strip = len(str(self.cache.make_key("")))
        seen = set()
        for group in range(groups()):
            full = str(self.cache.make_key(tag(group) + prefix))
            for key in client.scan_iter(match=full.replace("{", "\\{").replace("}", "\\}") + "*", count=1000):
                logical = key.decode()[strip + len(tag(group)):]
                if prefix.startswith("v:") and logical in seen:
                    continue
                seen.add(logical)
                yield logical


class ClusterClient(DefaultClient):
    """``OPTIONS``: ``CLUSTER_NODES`` (``host:port`` of any nodes), the usual socket
    timeouts; ``LOCATION`` is only a label."""

    def connect(self, index: int = 0):
        from redis.cluster import ClusterNode, RedisCluster

        nodes = []
        for node in self._options["CLUSTER_NODES"]:
            host, _, port = node.rpartition(":")
            nodes.append(ClusterNode(host, int(port)))
        return RedisCluster(
            startup_nodes=nodes,
            socket_connect_timeout=self._options.get("SOCKET_CONNECT_TIMEOUT", 0.2),
            socket_timeout=self._options.get("SOCKET_TIMEOUT", 0.2),
            max_connections=self._options.get("CONNECTION_POOL_KWARGS", {}).get("max_connections", 50),
        )

    def disconnect(self, index: int = 0, client=None) -> None:
        client = client if client is not None else self._clients[index]
        if client is not None:
            client.close()
