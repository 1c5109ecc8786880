"""The cache layer: versioned scopes and the response cache.

A *scope* names a set of data (``jobs``, ``job:42``, ``user:7:payments``). Each
scope has a version counter in the cache; a cached response's key contains the
versions of every scope it depends on, so invalidating a scope is one ``INCR``:
entries made under the old version are never read again and die by TTL
(``RESPONSE_CACHE_TTL``, the backstop on every entry). No ``KEYS``/``SCAN``/
``delete_pattern`` anywhere on the request or write path.

Ordering that makes reads never stale (ARCHITECTURE.md):
- readers read the versions *before* they query the database;
- writers bump the versions in ``transaction.on_commit`` (after the data is
  visible); a rolled-back transaction bumps nothing.
A reader that raced a writer can then only store old data under the old version.

Row scopes (why a write elsewhere does not retire a list). A response names two
kinds of scopes. *Coarse* scopes (``scopes``) decide WHICH rows it shows and in
what order (``jobs``: membership/order of job lists; ``reviews:received:7``);
their versions are part of the key. *Row* scopes (``rows``) name the rows it
shows (``job:42`` for a job on the page, ``user:7`` for a client shown in it);
their versions are stored inside the entry (a header) and checked on every hit,
in the same round trip as the GET (Lua: GET the entry, MGET its row counters,
compare; the local-memory backend does the same in Python). A write that changes
a shown row bumps its row scope after commit, so the entry fails the check; a
write that changes membership or order (a new job, a status change that takes a
job out of a filtered list, an edit of a field lists filter or order by, a
delete) bumps the coarse scope. A write to a row NOT shown touches neither.

The order on a miss, and why it is not stale: (1) read the coarse versions (the
key), (2) run the cheap ids query (``page_rows``: the same filters, order and
slice as the real page, only the id columns), (3) read the row versions of those
rows, (4) run the real query and render, (5) store the fragment with the row
versions read in (3). A writer bumps after its commit. If it bumps a row scope
before (3), the real query (4) starts after its commit and sees it; if after
(3), the entry carries the old version and fails its first check. A row that the
real query shows but the ids query did not (a membership change committing
between (2) and (4)) is covered by the coarse scope: that writer bumps it after
its commit, which is after (1), so the key the entry was stored under is dead.
A row scope that is also a coarse scope of the response stays coarse only.
Names and ratings of users, counters of jobs, a job's title and status in a job
ref are row data; category and skill names stay coarse (``categories``,
``skills``: rare admin writes that would otherwise be a row per name).

Missing counters. A counter that is missing (evicted, expired after
``VERSION_TTL`` of silence, Redis restarted empty) is created with a fresh value:
the Redis server's clock in microseconds (``TIME``, inside the same Lua script, so
every process uses one clock), which is larger than any value the counter had
before as long as it was bumped less than once per microsecond. Old entries can
therefore never come back. (Run this Redis without persistence: a snapshot
restored after a crash would bring back old counters *and* old entries.) The
local-memory backend (embedded runs, one process) uses ``time.time_ns() // 1000``.

Redis down or hanging. Every cache call has a short socket timeout (settings:
0.2 s) and every failure is caught: the request is answered from the database
(``X-Cache: MISS``, metrics result ``bypass``), the throttles fail open, health
says ``cache: unavailable``. The outage is logged once (and its end once). While
this process knows the cache is failing it does not touch it on the request path
at all (no timeout per request); a background thread probes it every
``PROBE_INTERVAL_SECONDS``.

No stale read after the outage, across processes. A write whose bump could not be
delivered is the danger: other processes still hold entries under the old
versions and will read them as soon as Redis answers again. Three mechanisms:

1. *Bumps stay in flight.* A bump is sent on its own connection; when the reply
   does not come within the socket timeout (Redis paused or hanging) the
   connection is not closed but handed to a drain thread, so the command stays
   queued in Redis and runs when Redis resumes — before any command a reader
   sends later (Redis resumes paused clients in order). This is what makes a
   reader in a process that never noticed the pause see the write.
2. *Pending bumps.* A bump that failed is also kept in this process and
   re-delivered by the probe thread as soon as Redis answers (and before this
   process uses the cache again). This covers a bump whose connection died.
3. *The outage fence.* Every process that saw the cache fail — writer or reader —
   increments a global generation counter (``v:*``, part of every response key)
   before it trusts the cache again. Every entry written before the outage is
   thereby retired for everyone, which also covers bumps that a crashed process
   never re-delivered. The price of an outage is one cold cache.
What remains unguarded: a real network partition (not a pause) during which a
process that saw nothing reads in the moment between the partition healing and
the first fence/retry (at most ``PROBE_INTERVAL_SECONDS``), and a writer that
crashes during an outage that nobody else saw; the TTL bounds both.

Fast path. ``AnonymousHitMiddleware`` (settings MIDDLEWARE, before sessions and
auth) answers a HIT of a public AllowAny endpoint to an anonymous JSON GET
without DRF: same key, same validated lookup, same bytes and headers, and on
Redis ONE round trip (``_FAST_LOOKUP_LUA``: coarse versions, the key's SHA-1,
the validated GET and the rebuild lock); a miss is handed to the DRF path with
its lookup (and rebuild lock) so nothing is looked up or counted twice.

Stampedes. On a miss, the first request takes a short lock (``SET NX``) and
builds; the others wait up to ``STAMPEDE_WAIT_SECONDS`` for its entry, then build
themselves rather than fail.

Redis Cluster: the Lua scripts touch several keys at once (a response's scope
counters; entry, lock and stats), so a cluster would need hash tags putting them
in one slot; Sentinel (one primary) works as is.

Observability. Hit/miss/bypass per endpoint in the Prometheus counter
``shiftboard_response_cache_total`` and in ``request.cache_status`` (read by the
Server-Timing middleware). Across processes the same counts are kept in one Redis
hash (``stats:responses``), updated inside the same round trips as the lookup and
the store (no extra round trip); ``manage.py cache_stats`` prints them.
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from functools import wraps

from django.conf import settings
from django.core.cache import cache
from django.core.signals import setting_changed
from django.db import transaction
from django.dispatch import receiver
from prometheus_client import Counter

logger = logging.getLogger("shiftboard.cache")

VERSION_PREFIX = "v:"
RESPONSE_PREFIX = "r:"
LOCK_PREFIX = "l:"
STATS_KEY = "stats:responses"
# The global generation (the outage fence): part of every response key.
GENERATION_SCOPE = "*"
# A version counter nobody bumped or read for this long may expire (it then
# restarts from a fresh value, so expiry only costs misses, never staleness).
VERSION_TTL = 24 * 3600
# How long a request waits for another one that is rebuilding the same entry.
STAMPEDE_WAIT_SECONDS = 0.5
STAMPEDE_POLL_SECONDS = 0.02
STAMPEDE_LOCK_SECONDS = 5
# While the cache is failing, a background thread checks it this often.
PROBE_INTERVAL_SECONDS = 0.05
# A bump left in flight is waited for this long, at most this many at once.
DRAIN_SECONDS = 30
MAX_IN_FLIGHT = 8

CACHE_REQUESTS = Counter(
    "shiftboard_response_cache_total",
    "Response cache lookups by endpoint and result (hit, miss, bypass).",
    ["view", "result"],
)


class CacheUnavailable(Exception):
    """The cache is known to be failing; the caller answers from the database."""


# --- backends -------------------------------------------------------------------
# Two implementations of the same few operations: Redis (django-redis), using Lua
# so that each operation is one round trip, and any other Django cache (local
# memory in embedded runs). Keys given to them are logical; they add the prefix.

_VERSIONS_LUA = """
local out = {}
for i, key in ipairs(KEYS) do
  local v = redis.call('GET', key)
  if not v then
    local t = redis.call('TIME')
    v = t[1] .. string.format('%06d', tonumber(t[2]))
    redis.call('SET', key, v, 'EX', ARGV[1])
  end
  out[i] = v
end
return out
"""

# One INCR per scope; INCR creating the key (value 1) means it was missing: then
# it starts from the server clock in microseconds instead.
_BUMP_LUA = """
for i, key in ipairs(KEYS) do
  if redis.call('INCR', key) == 1 then
    local t = redis.call('TIME')
    redis.call('SET', key, t[1] .. string.format('%06d', tonumber(t[2])), 'EX', ARGV[1])
  else
    redis.call('EXPIRE', key, ARGV[1])
  end
end
return #KEYS
"""

# Shared by both lookups. An entry is "<header length>\n<header><fragment>", the
# header one line "<version key>\t<version>" per row scope: valid_entry returns the
# fragment only while every row counter still has the version it had when the rows
# were read (a missing counter never matches), else nil.
_VALID_ENTRY_LUA = """
local function valid_entry(v)
  if not v then return nil end
  local nl = string.find(v, '\\n', 1, true)
  local hlen = tonumber(string.sub(v, 1, nl - 1))
  if hlen > 0 then
    local header = string.sub(v, nl + 1, nl + hlen)
    local keys, want = {}, {}
    for k, ver in string.gmatch(header, '([^\\t\\n]+)\\t([^\\n]+)\\n') do
      keys[#keys + 1] = k
      want[#want + 1] = ver
    end
    local got = redis.call('MGET', unpack(keys))
    for i = 1, #keys do
      if got[i] ~= want[i] then return nil end
    end
  end
  return string.sub(v, nl + hlen + 1)
end
"""


# The entry if it is still valid, or ('' and whether we took the rebuild lock).
# ARGV[2]: the stats field ('' = do not count); ARGV[3]: '1' to take the rebuild
# lock on a miss.
_LOOKUP_LUA = _VALID_ENTRY_LUA + """
if ARGV[2] ~= '' then redis.call('HINCRBY', KEYS[3], ARGV[2], 1) end
local payload = valid_entry(redis.call('GET', KEYS[1]))
if payload then return {payload, 0} end
if ARGV[3] == '1' and redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[1]) then return {'', 1} end
return {'', 0}
"""


# The fast path's whole lookup in one round trip: the coarse versions (created
# when missing, as _VERSIONS_LUA), the entry key from them (the same SHA-1 the
# Python side computes in ``_response_key``), then _LOOKUP_LUA's validated GET
# and rebuild lock. KEYS: stats, then the version counters (sorted by scope).
# ARGV: lock seconds, stats field, version TTL, entry key prefix, lock key
# prefix, key material. Returns {fragment or '', locked, versions}.
_FAST_LOOKUP_LUA = _VALID_ENTRY_LUA + """
local values = {}
for i = 2, #KEYS do
  local v = redis.call('GET', KEYS[i])
  if not v then
    local t = redis.call('TIME')
    v = t[1] .. string.format('%06d', tonumber(t[2]))
    redis.call('SET', KEYS[i], v, 'EX', ARGV[3])
  end
  values[i - 1] = v
end
local digest = redis.sha1hex(ARGV[6] .. '|' .. table.concat(values, ','))
redis.call('HINCRBY', KEYS[1], ARGV[2], 1)
local payload = valid_entry(redis.call('GET', ARGV[4] .. digest))
if payload then return {payload, 0, values} end
if redis.call('SET', ARGV[5] .. digest, '1', 'NX', 'EX', ARGV[1]) then return {'', 1, values} end
return {'', 0, values}
"""


def _key_material(request, caller: str, names: list[str]) -> str:
    # A DRF request (query_params) or Django's (GET, the fast path): the same QueryDict.
    params = request.query_params if hasattr(request, "query_params") else request.GET
    return repr((request.path, sorted(params.lists()), caller, names))


def _digest(material: str, values: list[str]) -> str:
    return hashlib.sha1((material + "|" + ",".join(values)).encode()).hexdigest()


def encode_entry(row_versions: dict[str, int], fragment: bytes) -> bytes:
    """``row_versions``: version key (as the backend names it) -> version."""
    header = "".join(f"{key}\t{version}\n" for key, version in sorted(row_versions.items())).encode()
    return str(len(header)).encode() + b"\n" + header + fragment


def decode_entry(value: bytes) -> tuple[dict[str, str], bytes]:
    value = bytes(value)
    nl = value.index(b"\n")
    hlen = int(value[:nl])
    header = value[nl + 1 : nl + 1 + hlen].decode()
    rows = dict(line.split("\t") for line in header.splitlines())
    return rows, value[nl + 1 + hlen :]


class _RedisBackend:
    def __init__(self, django_cache):
        self.cache = django_cache
        self._scripts = {}

    def _client(self):
        return self.cache.client.get_client(write=True)

    def _key(self, key: str) -> str:
        return str(self.cache.make_key(key))

    def _script(self, client, source):
        script = self._scripts.get(source)
        if script is None:
            script = self._scripts[source] = client.register_script(source)
        return script

    def versions(self, keys: list[str]) -> list[int]:
        client = self._client()
        script = self._script(client, _VERSIONS_LUA)
        values = script(keys=[self._key(k) for k in keys], args=[VERSION_TTL], client=client)
        return [int(v) for v in values]

    def bump(self, keys: list[str]) -> None:
        """The INCRs, on a connection of their own that is kept open (and drained
        in the background) if the reply does not come in time: see the module
        docstring, mechanism 1."""
        import redis

        client = self._client()
        pool = client.connection_pool
        conn = pool.get_connection()
        try:
            conn.send_command("EVAL", _BUMP_LUA, len(keys), *[self._key(k) for k in keys], VERSION_TTL)
        except BaseException:
            conn.disconnect()
            pool.release(conn)
            raise
        try:
            conn.read_response(disconnect_on_error=False)
        except redis.exceptions.TimeoutError:
            if not _start_drain(pool, conn):
                conn.disconnect()
                pool.release(conn)
            raise
        except BaseException:
            conn.disconnect()
            pool.release(conn)
            raise
        pool.release(conn)

    def ping(self) -> None:
        self._client().ping()

    def version_key(self, scope: str) -> str:
        """The name of a scope's counter as an entry's header stores it (the Lua
        lookup reads it directly, so it is the full Redis key)."""
        return self._key(VERSION_PREFIX + scope)

    def fast_lookup(self, endpoint: str, material: str, names: list[str], stat: str):
        """Versions, key and validated lookup (with the rebuild lock) in one round
        trip. Returns (fragment or None, locked, versions, key)."""
        prefix = RESPONSE_PREFIX + endpoint + ":"
        entry_prefix, lock_prefix = self._key(prefix), self._key(LOCK_PREFIX + prefix)
        if self._key(prefix + "x") != entry_prefix + "x":  # a custom KEY_FUNCTION
            return _fast_lookup_in_steps(self, endpoint, material, names, stat)
        client = self._client()
        script = self._script(client, _FAST_LOOKUP_LUA)
        keys = [self._key(STATS_KEY)] + [self._key(VERSION_PREFIX + n) for n in names]
        args = [STAMPEDE_LOCK_SECONDS, stat + "|lookup", VERSION_TTL, entry_prefix, lock_prefix, material]
        fragment, locked, values = script(keys=keys, args=args, client=client)
        values = [v.decode() if isinstance(v, bytes) else str(v) for v in values]
        key = prefix + _digest(material, values)
        return (fragment or None), bool(locked), dict(zip(names, map(int, values))), key

    def lookup(self, entry_key: str, lock_key: str | None, stat: str | None):
        """A valid entry's fragment (one round trip), else ``None`` and whether
        the rebuild lock was taken (only when ``lock_key`` is given)."""
        client = self._client()
        script = self._script(client, _LOOKUP_LUA)
        value, locked = script(
            keys=[self._key(entry_key), self._key(lock_key or entry_key), self._key(STATS_KEY)],
            args=[STAMPEDE_LOCK_SECONDS, (stat + "|lookup") if stat else "", "1" if lock_key else "0"],
            client=client,
        )
        return (value or None), bool(locked)

    def get(self, key: str):
        return self._client().get(self._key(key))

    def store(self, entry_key: str, value: bytes, ttl: int, lock_key: str | None, stat: str) -> None:
        pipe = self._client().pipeline(transaction=False)
        if value is not None:
            pipe.set(self._key(entry_key), value, ex=ttl)
        if lock_key:
            pipe.delete(self._key(lock_key))
        pipe.hincrby(self._key(STATS_KEY), stat + "|miss", 1)
        pipe.execute()

    def release(self, lock_key: str) -> None:
        self._client().delete(self._key(lock_key))

    def ttl(self, key: str) -> int | None:
        value = self._client().ttl(self._key(key))
        return None if value < 0 else value

    def stats(self) -> dict[str, int]:
        raw = self._client().hgetall(self._key(STATS_KEY))
        return {k.decode(): int(v) for k, v in raw.items()}

    def reset_stats(self) -> None:
        self._client().delete(self._key(STATS_KEY))

    def scan_prefix(self, prefix: str):
        """Admin-only (``cache_stats``): never called on the request path."""
        client = self._client()
        full = self._key(prefix)
        strip = len(self._key(""))
        for key in client.scan_iter(match=full + "*", count=1000):
            yield key.decode()[strip:]


class _GenericBackend:
    """Any Django cache; used with the local-memory cache (one process)."""

    def __init__(self, django_cache):
        self.cache = django_cache
        self._lock = threading.Lock()

    def versions(self, keys: list[str]) -> list[int]:
        found = self.cache.get_many(keys)
        out = []
        for key in keys:
            value = found.get(key)
            if value is None:
                self.cache.add(key, time.time_ns() // 1000, timeout=VERSION_TTL)
                value = self.cache.get(key)
                if value is None:
                    raise CacheUnavailable(f"version counter {key} could not be created")
            out.append(int(value))
        return out

    def bump(self, keys: list[str]) -> None:
        for key in keys:
            with self._lock:
                try:
                    self.cache.incr(key)
                except ValueError:
                    self.cache.set(key, time.time_ns() // 1000, timeout=VERSION_TTL)

    def ping(self) -> None:
        self.cache.get("ping")

    def _count(self, field: str) -> None:
        with self._lock:
            stats = self.cache.get(STATS_KEY) or {}
            stats[field] = stats.get(field, 0) + 1
            self.cache.set(STATS_KEY, stats, timeout=None)

    def version_key(self, scope: str) -> str:
        return VERSION_PREFIX + scope

    def fast_lookup(self, endpoint: str, material: str, names: list[str], stat: str):
        return _fast_lookup_in_steps(self, endpoint, material, names, stat)

    def lookup(self, entry_key: str, lock_key: str | None, stat: str | None):
        if stat:
            self._count(stat + "|lookup")
        value = self.cache.get(entry_key)
        if value is not None:
            rows, fragment = decode_entry(value)
            current = self.cache.get_many(list(rows)) if rows else {}
            if all(str(current.get(key)) == version for key, version in rows.items()):
                return fragment, False
        if not lock_key:
            return None, False
        return None, self.cache.add(lock_key, 1, timeout=STAMPEDE_LOCK_SECONDS)

    def get(self, key: str):
        return self.cache.get(key)

    def store(self, entry_key: str, value: bytes, ttl: int, lock_key: str | None, stat: str) -> None:
        if value is not None:
            self.cache.set(entry_key, value, timeout=ttl)
        if lock_key:
            self.cache.delete(lock_key)
        self._count(stat + "|miss")

    def release(self, lock_key: str) -> None:
        self.cache.delete(lock_key)

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


def _fast_lookup_in_steps(b, endpoint: str, material: str, names: list[str], stat: str):
    """``fast_lookup`` as two calls (versions, then the validated lookup)."""
    versions = get_versions(names)
    key = RESPONSE_PREFIX + endpoint + ":" + _digest(material, [str(versions[n]) for n in names])
    fragment, locked = b.lookup(key, LOCK_PREFIX + key, stat)
    return fragment, locked, versions, key


_backend_instance = None


def backend():
    """The backend for the configured default cache (chosen once per process, again
    when a test overrides CACHES). ``cache`` is Django's per-thread proxy."""
    global _backend_instance
    if _backend_instance is None:
        client = getattr(cache, "client", None)
        if client is not None and hasattr(client, "get_client"):
            _backend_instance = _RedisBackend(cache)
        else:
            _backend_instance = _GenericBackend(cache)
    return _backend_instance


@receiver(setting_changed)
def _cache_settings_changed(setting, **kwargs):
    global _backend_instance
    if setting == "CACHES":
        _backend_instance = None


# --- health: failures, the probe thread, pending bumps, the fence -------------------

_drains = threading.BoundedSemaphore(MAX_IN_FLIGHT)


def _start_drain(pool, conn) -> bool:
    """Wait for a bump's reply in the background, keeping its connection open."""
    if not _drains.acquire(blocking=False):
        return False

    def drain():
        try:
            conn.read_response(timeout=DRAIN_SECONDS)
        except Exception:  # noqa: BLE001 - the probe thread re-delivers in any case
            pass
        finally:
            conn.disconnect()
            pool.release(conn)
            _drains.release()

    threading.Thread(target=drain, name="cache-bump-drain", daemon=True).start()
    return True


class _Health:
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
        while not self.healthy():
            time.sleep(PROBE_INTERVAL_SECONDS)
            try:
                recover()
            except Exception:  # noqa: BLE001 - still down: keep probing
                pass


health = _Health()


def _reset_after_fork():
    # A forked worker starts with no threads and must not inherit a held lock.
    global health, _drains
    old = health
    health = _Health()
    health.pending_bumps = set(old.pending_bumps)
    health.failing = old.failing
    health.fence_needed = old.fence_needed
    _drains = threading.BoundedSemaphore(MAX_IN_FLIGHT)
    if not health.healthy():
        health.failing = False
        health.failed("fork", RuntimeError("inherited an outage"))


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def recover() -> None:
    """Deliver pending bumps and the fence; mark the cache available. Raises while
    the cache still fails."""
    with health.recover_lock:
        if health.healthy():
            return
        b = backend()
        b.ping()
        with health.lock:
            pending = set(health.pending_bumps)
        b.bump([VERSION_PREFIX + s for s in sorted(pending | {GENERATION_SCOPE})])
        with health.lock:
            health.pending_bumps -= pending
            if not health.pending_bumps:
                health.fence_needed = False
                if health.failing:
                    logger.warning("cache available again; entries from before the outage retired")
                health.failing = False


def _ensure_healthy() -> None:
    if health.failing:
        # The probe thread owns recovery while failing: no timeout per request.
        raise CacheUnavailable("cache failing")
    if not health.healthy():
        recover()


# --- versions -----------------------------------------------------------------------

def get_versions(scopes: Iterable[str]) -> dict[str, int]:
    """Current version of every scope (plus the global generation), creating
    missing counters. Raises on cache failure (callers answer from the database)."""
    _ensure_healthy()
    names = sorted(set(scopes) | {GENERATION_SCOPE})
    values = backend().versions([VERSION_PREFIX + s for s in names])
    return dict(zip(names, values))


def bump_now(scopes: Iterable[str]) -> None:
    """Invalidate ``scopes`` now (one INCR each). Never raises: an undeliverable bump
    is kept and re-delivered (module docstring)."""
    scopes = {s for s in scopes if s}
    if not scopes:
        return
    try:
        if not health.healthy():
            with health.lock:
                health.pending_bumps |= scopes
            _ensure_healthy()
            return
        backend().bump([VERSION_PREFIX + s for s in sorted(scopes)])
    except Exception as exc:  # noqa: BLE001 - any cache failure
        health.failed("bump", exc, scopes)


def bump(*scopes: str) -> None:
    """Invalidate scopes once the current transaction commits (at once outside one).
    A rolled-back transaction bumps nothing."""
    scopes = {s for s in scopes if s}
    if scopes:
        transaction.on_commit(lambda: bump_now(scopes))


# --- the response cache ---------------------------------------------------------------

def _response_key(endpoint: str, request, versions: dict[str, int], caller: str) -> str:
    """The entry key: path, sorted query, caller, scope names and their versions
    (the fast path's Lua computes the same SHA-1 from the same material)."""
    names = sorted(versions)
    material = _key_material(request, caller, names)
    return f"{RESPONSE_PREFIX}{endpoint}:{_digest(material, [str(versions[n]) for n in names])}"


def _wait_for(key: str):
    deadline = time.monotonic() + STAMPEDE_WAIT_SECONDS
    b = backend()
    while time.monotonic() < deadline:
        time.sleep(STAMPEDE_POLL_SECONDS)
        value, _ = b.lookup(key, None, None)  # validated, like any read
        if value is not None:
            return value
    return None


def row_versions(scopes: Iterable[str]) -> dict[str, int]:
    """Current versions of row scopes, keyed by the backend's counter names (what
    an entry's header stores). Missing counters are created."""
    _ensure_healthy()
    names = sorted(set(scopes))
    if not names:
        return {}
    b = backend()
    keys = [b.version_key(s) for s in names]
    values = b.versions([VERSION_PREFIX + s for s in names])
    return dict(zip(keys, values))


def _rows_read_hook(request) -> None:
    """Called on a miss after the row versions are read and before the response
    is built (step 3 -> 4). Nothing in production; tests patch it to commit a
    write exactly there."""


def _before_store_hook(request) -> None:
    """Called on a miss after the response is built and before it is stored.
    Nothing in production; tests patch it to commit a write exactly there."""


def page_rows(view, queryset, *columns: tuple[str, str], paged: bool = True) -> list[str]:
    """The row scopes of the page ``view`` will show from ``queryset``: the cheap
    ids query (1 query: the same filters, order and slice as the page, only the
    named columns, no joins). ``columns`` pairs a scope prefix with a column, e.g.
    ``("job", "id"), ("user", "client_id")`` -> ``job:<id>``, ``user:<client_id>``
    for every row of the page. A page number or size the paginator refuses gives
    no rows (the build then answers the same 400 and nothing is stored).
    ``paged=False``: every row of ``queryset`` (a detail: one row)."""
    paginator = view.paginator if paged else None
    request = view.request
    if paginator is None:
        offset, size = 0, None
    else:
        try:
            size = paginator.get_page_size(request)
            number = int(request.query_params.get(paginator.page_query_param, "1"))
        except Exception:  # noqa: BLE001 - the build reports it
            return []
        if number < 1:
            return []
        offset = (number - 1) * size
    names = list(dict.fromkeys(column for _, column in columns))
    rows = queryset.prefetch_related(None).values_list(*names)
    rows = rows[offset : offset + size] if size else rows[offset:]
    out = set()
    for row in rows:
        values = dict(zip(names, row))
        for prefix, column in columns:
            if values[column] is not None:
                out.add(f"{prefix}:{values[column]}")
    return sorted(out)


def _set_status(endpoint: str, request, response, status: str):
    # Server-Timing and X-Cache speak hit|miss (API.md); metrics tell bypass apart.
    request._request.cache_status = "hit" if status == "hit" else "miss"
    response["X-Cache"] = "HIT" if status == "hit" else "MISS"
    CACHE_REQUESTS.labels(endpoint, status).inc()


def _json_renderer_accepted(request) -> bool:
    renderer = getattr(request, "accepted_renderer", None)
    return renderer is not None and renderer.format == "json"


def serve_cached(
    view,
    request,
    build: Callable,
    scopes: Iterable[str],
    private: bool,
    endpoint: str = "",
    rows: Callable[[], Iterable[str]] | None = None,
):
    """Serve ``build()``'s response from the cache when an entry exists for the
    current versions of ``scopes``; otherwise build it and store it. Permission
    checks have already run (this is called from the handler, after ``initial``);
    a private entry is keyed by the caller and also depends on ``user:<id>``, so a
    change to the caller (role, staff flag) retires it.

    ``rows()`` (optional) runs the cheap ids query and names the row scopes of
    what the response will show; on a miss it runs, then the row versions are
    read, then the response is built and stored with them (module docstring,
    "Row scopes")."""
    from rest_framework.response import Response

    endpoint = endpoint or view.__class__.__name__
    # The fast path (AnonymousHitMiddleware) already looked this entry up and missed.
    pre = getattr(request._request, "cache_prelookup", None)
    if pre is not None:
        request._request.cache_prelookup = None
        if pre["endpoint"] != endpoint or private:
            _unlock(pre["lock_key"])
            pre = None
    if not _json_renderer_accepted(request):
        if pre is not None:
            _unlock(pre["lock_key"])
        return build()
    scopes = set(scopes)
    caller = "public"
    if private:
        user = request.user
        caller = f"user:{user.pk}" if user.is_authenticated else "anon"
        if user.is_authenticated:
            scopes.add(f"user:{user.pk}")
    lock_key = None
    try:
        if pre is not None:
            versions, key = pre["versions"], pre["key"]
            fragment, locked = None, pre["lock_key"] is not None
        else:
            versions = get_versions(scopes)
            key = _response_key(endpoint, request, versions, caller)
            fragment, locked = backend().lookup(key, LOCK_PREFIX + key, endpoint)
        if fragment is None:
            if locked:
                lock_key = LOCK_PREFIX + key
            else:
                # Someone else is rebuilding this entry: wait for it briefly.
                fragment = _wait_for(key)
    except Exception as exc:  # noqa: BLE001 - cache down: answer from the database
        if not isinstance(exc, CacheUnavailable):
            health.failed("read", exc)
        response = build()
        _set_status(endpoint, request, response, "bypass")
        return response

    row_map: dict[str, int] = {}
    if fragment is None and rows is not None:
        try:
            row_scopes = set(rows()) - set(versions)
        except BaseException:
            _unlock(lock_key)
            raise
        try:
            row_map = row_versions(row_scopes)
        except Exception as exc:  # noqa: BLE001 - cache down: answer from the database
            if not isinstance(exc, CacheUnavailable):
                health.failed("read", exc)
            lock_key = None
            response = build()
            _set_status(endpoint, request, response, "bypass")
            return response
        _rows_read_hook(request)

    if fragment is not None:
        response = Response()
        response.cached_fragment = bytes(fragment)
        _set_status(endpoint, request, response, "hit")
        return response

    try:
        response = build()
    except BaseException:
        _unlock(lock_key)
        raise
    _set_status(endpoint, request, response, "miss")
    ttl = settings.RESPONSE_CACHE_TTL
    cacheable = response.status_code == 200 and getattr(response, "envelope_message", None) is None

    def store(rendered):
        value = getattr(rendered, "rendered_fragment", None) if cacheable else None
        if value is not None:
            _before_store_hook(request)
            value = encode_entry(row_map, bytes(value))
        try:
            backend().store(key, value, ttl, lock_key, endpoint)
        except Exception as exc:  # noqa: BLE001
            health.failed("write", exc)

    response.add_post_render_callback(store)
    return response


def _unlock(lock_key):
    if lock_key:
        try:
            backend().release(lock_key)
        except Exception as exc:  # noqa: BLE001
            health.failed("unlock", exc)


def cached_response(
    scopes: Callable[..., Iterable[str]],
    *,
    private: bool = False,
    rows: Callable[..., Iterable[str]] | None = None,
):
    """Decorates a view handler (``list``, ``retrieve``, an ``@action``):
    ``scopes(view, request, **kwargs)`` names what decides which rows the response
    shows and in what order (coarse scopes: part of the key); ``rows(view,
    request, **kwargs)`` (optional) names the row scopes of the rows it shows
    (validated on every hit); ``private=True`` keys the entry by caller. Metrics
    and keys name the endpoint ``<ViewClass>.<handler>``. The wrapper carries
    ``cache_meta`` (scopes, rows, private) for the anonymous fast path."""

    def decorate(handler):
        @wraps(handler)
        def wrapper(view, request, *args, **kwargs):
            return serve_cached(
                view,
                request,
                lambda: handler(view, request, *args, **kwargs),
                scopes(view, request, **kwargs),
                private,
                endpoint=f"{view.__class__.__name__}.{handler.__name__}",
                rows=(lambda: rows(view, request, **kwargs)) if rows is not None else None,
            )

        wrapper.cache_meta = {"scopes": scopes, "rows": rows, "private": private, "name": handler.__name__}
        return wrapper

    return decorate


# --- the fast path for anonymous public hits ------------------------------------------

_DENY = object()


def _accepts_json(request) -> bool:
    """What DRF's negotiation would answer with the JSON renderer: no ``?format=``,
    and an Accept header that is absent or names JSON (or a wildcard) and no HTML
    (the browsable API in DEBUG). Anything else goes the normal way."""
    if "format" in request.GET:
        return False
    accept = request.headers.get("Accept", "")
    if not accept.strip():
        return True
    ranges = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    if "q=0" in accept.replace(" ", "") or any(r in ("text/html", "application/xhtml+xml") for r in ranges):
        return False
    return any(r in ("*/*", "application/*", "application/json") for r in ranges)


class AnonymousHitMiddleware:
    """Serves a cache HIT of a public ``@cached_response`` endpoint to an anonymous
    GET before sessions, auth, CSRF and DRF run: resolve the URL, compute the same
    key as the view's ``serve_cached`` (same scopes, same versions), one validated
    lookup, and the same bytes and headers as the DRF path would send (envelope,
    Content-Type, X-Cache, Allow, Vary, X-Frame-Options; the outer middlewares add
    X-Request-ID, Server-Timing and the security headers). A miss falls through to
    DRF with the lookup handed over (``request.cache_prelookup``: the rebuild lock
    if it was taken), so nothing is looked up twice.

    Eligible: GET, no ``Authorization`` header, no session cookie, JSON accepted
    (``_accepts_json``), and a handler decorated with ``@cached_response`` that is
    public (``private=False``) whose view allows anonymous reads (AllowAny or
    IsAuthenticatedOrReadOnly, checked once per view and action) and has no
    throttle on GET. Placed after SecurityMiddleware/WhiteNoise, before sessions."""

    def __init__(self, get_response):
        self.get_response = get_response
        self._eligible: dict = {}
        # The per-view request metrics are recorded by django-prometheus's
        # innermost middleware, which a fast hit never reaches: run its hooks here.
        self._after = None
        after_path = "django_prometheus.middleware.PrometheusAfterMiddleware"
        if after_path in settings.MIDDLEWARE:
            from django.utils.module_loading import import_string

            self._after = import_string(after_path)(get_response)

    def _record(self, request, match, response):
        after = self._after
        if after is None:
            return response
        request.resolver_match = match
        after.process_request(request)
        after.process_view(request, match.func, match.args, match.kwargs)
        return after.process_response(request, response)

    def __call__(self, request):
        if (
            request.method != "GET"
            or "HTTP_AUTHORIZATION" in request.META
            or settings.SESSION_COOKIE_NAME in request.COOKIES
            or not _accepts_json(request)
        ):
            return self.get_response(request)
        try:
            response = self._hit(request)
        except Exception as exc:  # noqa: BLE001 - never fail here: DRF answers
            if not isinstance(exc, CacheUnavailable):
                logger.debug("fast path skipped: %r", exc)
            request.cache_prelookup = None
            response = None
        return response if response is not None else self.get_response(request)

    def _target(self, request):
        from django.urls import Resolver404, resolve

        try:
            match = resolve(request.path_info)
        except Resolver404:
            return None
        cls = getattr(match.func, "cls", None)
        if cls is None or "format" in match.kwargs:
            return None
        actions = getattr(match.func, "actions", None)
        handler_name = actions.get("get") if actions is not None else self._get_handler(cls)
        if handler_name is None:
            return None
        key = (cls, handler_name)
        target = self._eligible.get(key)
        if target is None:
            target = self._eligible[key] = self._inspect(match, cls, handler_name, request) or _DENY
        if target is _DENY:
            return None
        return target, match

    @staticmethod
    def _get_handler(cls) -> str:
        """The method a GET runs on a non-viewset view: ``get`` itself, or the
        ``list``/``retrieve`` that the generic ``get`` of DRF calls."""
        from rest_framework import generics

        for base, name in ((generics.ListAPIView, "list"), (generics.RetrieveAPIView, "retrieve")):
            if issubclass(cls, base) and cls.get is base.get:
                return name
        return "get"

    @staticmethod
    def _inspect(match, cls, handler_name, request):
        from rest_framework.permissions import AllowAny, IsAuthenticatedOrReadOnly

        handler = getattr(cls, handler_name, None)
        meta = getattr(handler, "cache_meta", None)
        if meta is None or meta["private"]:
            return None
        view = AnonymousHitMiddleware._view(match, cls, request)
        view.action = handler_name
        permissions = view.get_permissions()
        if not all(type(p) in (AllowAny, IsAuthenticatedOrReadOnly) for p in permissions):
            return None
        if view.get_throttles():
            return None
        renderers = view.get_renderers()
        if not renderers or getattr(renderers[0], "format", None) != "json":
            return None
        return {
            "meta": meta,
            "endpoint": f"{cls.__name__}.{meta['name']}",
            "allow": ", ".join(view.allowed_methods),
        }

    @staticmethod
    def _view(match, cls, request):
        initkwargs = getattr(match.func, "initkwargs", {}) or {}
        view = cls(**initkwargs)
        actions = getattr(match.func, "actions", None)
        if actions is not None:
            actions = dict(actions)
            if "get" in actions and "head" not in actions:
                actions["head"] = actions["get"]
            view.action_map = actions
            for method, action in actions.items():
                setattr(view, method, getattr(view, action))
        elif hasattr(view, "get") and not hasattr(view, "head"):
            view.head = view.get  # as Django's View.setup does
        view.request = request
        view.args = match.args
        view.kwargs = match.kwargs
        view.format_kwarg = None
        return view

    def _hit(self, request):
        found = self._target(request)
        if found is None:
            return None
        target, match = found
        _ensure_healthy()
        meta, endpoint = target["meta"], target["endpoint"]
        view = self._view(match, match.func.cls, request)
        scopes = set(meta["scopes"](view, request, **match.kwargs))
        names = sorted(scopes | {GENERATION_SCOPE})
        try:
            fragment, locked, versions, key = backend().fast_lookup(
                endpoint, _key_material(request, "public", names), names, endpoint
            )
        except Exception as exc:  # noqa: BLE001 - the DRF path answers (and knows the cache is down)
            if not isinstance(exc, CacheUnavailable):
                health.failed("read", exc)
            return None
        if fragment is None:
            request.cache_prelookup = {
                "endpoint": endpoint,
                "key": key,
                "versions": versions,
                "lock_key": LOCK_PREFIX + key if locked else None,
            }
            return None
        return self._record(request, match, self._response(request, endpoint, bytes(fragment), target["allow"]))

    @staticmethod
    def _response(request, endpoint: str, fragment: bytes, allow: str):
        import json

        from django.http import HttpResponse

        from .envelope import envelope_tail

        tail = json.dumps({"message": None, **envelope_tail()}, separators=(",", ":"), ensure_ascii=False)
        body = b'{"success":true,' + fragment + b"," + tail[1:].encode()
        response = HttpResponse(body, content_type="application/json; charset=utf-8")
        response["X-Cache"] = "HIT"
        response["Allow"] = allow
        response["X-Frame-Options"] = getattr(settings, "X_FRAME_OPTIONS", "DENY")
        response["Content-Length"] = str(len(body))
        # The DRF path reads the session (SessionAuthentication): Vary: Cookie.
        response["Vary"] = "Cookie"
        request.cache_status = "hit"
        CACHE_REQUESTS.labels(endpoint, "hit").inc()
        return response
