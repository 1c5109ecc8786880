"""The cache layer: versioned scopes and the response cache (design: docs/cache.md).

A *scope* names a set of data (``jobs``, ``job:42``, ``payments:user:7``) and has a
version counter; a cached response depends on the versions of its scopes, so a
write retires entries with one ``INCR`` per scope, after its commit.

Modules: ``keys`` (key material, entry format), ``scripts`` + ``lua/`` (the Redis
Lua scripts), ``redis_backend`` / ``backends`` (counter and entry storage),
``outage`` (failures, pending bumps, the fence), ``versions`` (read and bump
counters), ``response`` (``@cached_response``, ``serve_cached``), ``identity``
(endpoint name, caller, group), ``measure`` (counter, status, timings), ``rows``
(``Rows``, ``page_rows``: an endpoint's row scopes, from the view's own queryset),
``query`` (what a handler reads from the query string: the key's canonical
query), ``middleware`` (the fast path), ``held`` + ``kept`` (its connection per
thread, and the fragments each process keeps), ``callers`` (cached token -> user), ``explain``
(``cache_explain``), ``trace`` + ``panel`` (the Debug Toolbar panel). What
other code may use is below.
"""
from .backends import backend
from .callers import CachedTokenAuthentication, auth_scope
from .keys import (
    GENERATION_SCOPE,
    LOCK_PREFIX,
    RESPONSE_PREFIX,
    STAMPEDE_LOCK_SECONDS,
    STATS_KEY,
    VERSION_PREFIX,
    VERSION_TTL,
    decode_entry,
    encode_entry,
)
from .measure import CACHE_REQUESTS
from .middleware import AnonymousHitMiddleware
from .outage import CacheUnavailable, health, recover
from .query import Query, query_filters
from .response import STAMPEDE_WAIT_SECONDS, cached_response, serve_cached
from .rows import Rows, page_rows
from .versions import bump, bump_now, get_versions, row_versions

__all__ = [
    "AnonymousHitMiddleware",
    "CachedTokenAuthentication",
    "CACHE_REQUESTS",
    "CacheUnavailable",
    "GENERATION_SCOPE",
    "LOCK_PREFIX",
    "Query",
    "RESPONSE_PREFIX",
    "Rows",
    "STAMPEDE_LOCK_SECONDS",
    "STAMPEDE_WAIT_SECONDS",
    "STATS_KEY",
    "VERSION_PREFIX",
    "VERSION_TTL",
    "auth_scope",
    "backend",
    "bump",
    "bump_now",
    "cached_response",
    "decode_entry",
    "encode_entry",
    "get_versions",
    "health",
    "page_rows",
    "query_filters",
    "recover",
    "row_versions",
    "serve_cached",
]
