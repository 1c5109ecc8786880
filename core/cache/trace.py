"""What the cache layer decided for one request, for the Debug Toolbar's
"Response cache" panel (``core.cache.panel``).

Recording is off unless the panel switched it on for the current request
(``tracing()``): every hook below starts with one ``ContextVar.get`` and returns
when it gives ``None``, so without the toolbar nothing is recorded, nothing is
asked of Redis and nothing is queried. With it on, the panel still asks Redis
for nothing of its own: the lookup scripts return the row header of the entry
they just read (an extra reply field, asked for only while tracing) and the
round trips are timed where they happen.

The verdict words and reasons are shared with ``manage.py cache_explain``
(``core.cache.explain``), so the panel and the command say the same thing."""
from __future__ import annotations

import time
from collections import OrderedDict
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field

HIT = "HIT"
MISS = "MISS"
BYPASS = "BYPASS"
NOT_CACHED = "NOT CACHED"

NO_ENTRY = "no entry under the current versions (never built, expired or evicted)"
ROW_CHECK_FAILED = "row check failed: {scopes} bumped since the entry was stored"
COARSE_BUMPED = "coarse scope bumped: {scopes} changed since this process last served this URL"
STAMPEDE = "another request held the rebuild lock; waited {ms:.0f} ms and {outcome}"
UNAVAILABLE = "cache unavailable: answered from the database"
NOT_JSON = "only JSON responses are cached (this response is rendered by {renderer})"
ROLLED_BACK = "rolled back: nothing bumped"

# The coarse versions this process last served each URL under, so a miss can say
# which coarse scope moved (no Redis traffic: what this process saw itself).
_LAST_SEEN_LIMIT = 512
_last_seen: OrderedDict[tuple[str, str], dict[str, int]] = OrderedDict()

_current: ContextVar[Trace | None] = ContextVar("cache_trace", default=None)


@dataclass
class Trace:
    endpoint: str | None = None
    decision: str | None = None
    reason: str = ""
    private: bool = False
    caller: str | None = None
    path: str = "fast"  # "fast" (before DRF) or "drf"
    key: str | None = None
    coarse: dict[str, int] = field(default_factory=dict)
    # Row scopes of the entry looked up: (scope, version stored, version current).
    rows: list[tuple[str, str, str | None]] = field(default_factory=list)
    # Row scopes a miss recorded in the entry it built: scope -> version.
    rows_recorded: dict[str, int] = field(default_factory=dict)
    stored: bool | None = None
    round_trips: list[tuple[str, float]] = field(default_factory=list)
    bumps_requested: list[str] = field(default_factory=list)
    bumps_sent: list[str] = field(default_factory=list)
    stampede: str = ""
    _timing: bool = field(default=False, repr=False)

    def as_stats(self) -> dict:
        """Plain data (the toolbar keeps it for its history panel)."""
        stats = asdict(self)
        stats.pop("_timing")
        stats["rolled_back"] = sorted(set(self.bumps_requested) - set(self.bumps_sent))
        stats["redis_ms"] = round(sum(ms for _, ms in self.round_trips), 3)
        return stats


def current() -> Trace | None:
    return _current.get()


@contextmanager
def tracing():
    """Record the cache layer's decisions for the code run inside (one request)."""
    trace = Trace()
    token = _current.set(trace)
    try:
        yield trace
    finally:
        _current.reset(token)


@contextmanager
def timed(operation: str):
    """Time one backend round trip if tracing (the backend wrapper uses it)."""
    trace = _current.get()
    if trace is None:
        yield
        return
    if trace._timing:  # an operation made of others (fast_lookup in steps): time the outer one
        yield
        return
    trace._timing = True
    start = time.perf_counter()
    try:
        yield
    finally:
        trace._timing = False
        trace.round_trips.append((operation, round((time.perf_counter() - start) * 1000, 3)))


def wants_header() -> bool:
    """Whether lookups should return the entry's row header (only while tracing)."""
    return _current.get() is not None


def record_lookup(header: dict[str, str] | None, current_versions: dict[str, str | None] | None, strip: int) -> None:
    """The row header of the entry a lookup read (``None``: no entry) and the
    counters' values at that moment, from the lookup itself."""
    trace = _current.get()
    if trace is None:
        return
    if header is None:
        trace.rows = []
        return
    current_versions = current_versions or {}
    trace.rows = [(key[strip:], stored, current_versions.get(key)) for key, stored in sorted(header.items())]


def record_entry_rows(reply, strip: int) -> None:
    """A Lua lookup's ``entry_rows`` reply (key, stored, current, ... flattened;
    valid_entry.lua), as ``record_lookup`` takes it."""
    flat = reply[0] if reply else None
    if flat is None:
        record_lookup(None, None, 0)
        return
    flat = [v.decode() if isinstance(v, bytes) else str(v) for v in flat]
    triples = list(zip(flat[0::3], flat[1::3], flat[2::3]))
    record_lookup({k: v for k, v, _ in triples}, {k: (v or None) for k, _, v in triples}, strip)


def record_key(endpoint: str, caller: str, private: bool, key: str, versions: dict[str, int], identity: str) -> None:
    trace = _current.get()
    if trace is None:
        return
    trace.endpoint, trace.caller, trace.private, trace.key = endpoint, caller, private, key
    trace.coarse = dict(sorted(versions.items()))
    trace._identity = (endpoint, identity)


def record_decision(decision: str, reason: str = "", **extra) -> None:
    trace = _current.get()
    if trace is None:
        return
    trace.decision = decision
    if decision == MISS and not reason:
        reason = _miss_reason(trace)
    trace.reason = reason
    for name, value in extra.items():
        setattr(trace, name, value)
    identity = getattr(trace, "_identity", None)
    if identity is not None and trace.coarse:
        _last_seen[identity] = dict(trace.coarse)
        _last_seen.move_to_end(identity)
        while len(_last_seen) > _LAST_SEEN_LIMIT:
            _last_seen.popitem(last=False)


def _miss_reason(trace: Trace) -> str:
    changed = [scope for scope, stored, now in trace.rows if stored != now]
    if trace.rows and changed:
        return ROW_CHECK_FAILED.format(scopes=", ".join(changed))
    before = _last_seen.get(getattr(trace, "_identity", None))
    if before:
        moved = [f"{s} {before[s]} -> {v}" for s, v in trace.coarse.items() if s in before and before[s] != v]
        if moved:
            return COARSE_BUMPED.format(scopes=", ".join(moved))
    return NO_ENTRY


def record(**values) -> None:
    trace = _current.get()
    if trace is not None:
        for name, value in values.items():
            setattr(trace, name, value)


def record_bumps(scopes, *, sent: bool) -> None:
    trace = _current.get()
    if trace is None:
        return
    target = trace.bumps_sent if sent else trace.bumps_requested
    target.extend(s for s in sorted(scopes) if s not in target)
