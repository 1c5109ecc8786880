"""Read floors: how far a read replica must have replayed before a cache miss may
be filled from it (docs/scaling.md, "No stale read from a lagging replica").

With read replicas configured, every version counter ``v:<scope>`` has a companion
``lsn:<scope>``: the primary's WAL position after the last write that bumped the
scope (the writer asks the primary after its commit and sets it in the same Lua
call as the INCR, as a maximum). ``lsn-max`` is the largest position any bump
recorded. A counter without a companion (never bumped since it was created, or
the companion evicted) gets ``lsn-max`` when it is read -- safe, it covers every
recorded write -- and from then on only its own bumps raise it; a Redis without
``lsn-max`` (new, restarted, evicted) is given the primary's current position
once, lazily.

Reading versions (the versions, fast-lookup scripts) returns the largest position
among the counters read, and ``note`` keeps the largest for the response being
served: its *floor*. The response's build then runs under
``core.replicas.reads_at(floor)``: a replica serves it only if it has replayed
that far. Without replicas nothing is recorded and nothing is noted.
"""
from __future__ import annotations

import contextvars
from dataclasses import dataclass


@dataclass
class _Floor:
    value: int = 0
    noted: bool = False  # nothing noted (e.g. the local-memory backend): unknown
    unknown: bool = False


_current: contextvars.ContextVar[_Floor | None] = contextvars.ContextVar("cache_read_floor", default=None)


def begin() -> None:
    """A new response is being served: no floor noted yet."""
    _current.set(_Floor())


def note(position: int | None) -> None:
    """A counter read says the response needs the replica at ``position`` or
    further (None: nobody knows how far -- the primary then serves the build)."""
    floor = _current.get()
    if floor is None:
        return
    floor.noted = True
    if position is None:
        floor.unknown = True
    else:
        floor.value = max(floor.value, position)


def current() -> int | None:
    """The floor of the response being served; None (read the primary) when it is
    unknown, when no counter read noted one, or when no replica is configured."""
    from core import replicas

    floor = _current.get()
    if floor is None or not floor.noted or floor.unknown or not replicas.enabled():
        return None
    return floor.value


def tracking() -> bool:
    """Whether bumps record WAL positions and reads return floors: with read replicas."""
    from core import replicas

    return replicas.enabled()
