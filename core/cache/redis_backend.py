"""The Redis backend (django-redis): each operation is one round trip, using the
Lua scripts in ``lua/``. Keys given to it are logical; it adds the cache prefix."""
from __future__ import annotations

import contextlib

from . import floors
from .held import HeldConnections
from .inflight import inflight, send_and_wait
from .kept import KEPT
from .keys import (
    LOCK_PREFIX,
    LSN_MAX_KEY,
    LSN_PREFIX,
    NOT_MODIFIED,
    RESPONSE_PREFIX,
    STAMPEDE_LOCK_SECONDS,
    STATS_KEY,
    VERSION_PREFIX,
    VERSION_TTL,
    digest,
    note_created,
)
from .scripts import lua
from .trace import record_entry_rows, wants_header


class RedisBackend:
    grouped = False  # keys spread over hash-tag groups (cluster.py)
    checks_caller = True  # fast_lookup checks a remembered caller (callers.py) in its round trip

    def __init__(self, django_cache):
        self.cache = django_cache
        self._scripts = {}
        # The request path's lookups: per thread, a connection of its own (held.py)
        # and the prefixed keys they name (_keys), both made once.
        self._held = HeldConnections()
        self._prefixed: dict[str, str] = {}
        self._make_key = django_cache.make_key  # not per call through the per-thread proxy

    def _client(self):
        return self.cache.client.get_client(write=True)

    def _key(self, key: str) -> str:
        """Prefixed by make_key, kept: a per-thread proxy read per call cost 0.5 ms a list miss."""
        return str(self._make_key(key))

    def _keys(self, keys) -> list[str]:
        """``_key`` of each, remembered: the same few keys (counters, stats,
        prefixes) are named on every lookup. Bounded: per-user scopes are many."""
        prefixed = self._prefixed
        out = []
        for key in keys:
            full = prefixed.get(key)
            if full is None:
                if len(prefixed) > 20000:
                    prefixed.clear()
                full = prefixed[key] = self._key(key)
            out.append(full)
        return out

    def _run(self, client, name: str, keys: list[str], args: list):
        """Script ``name`` in one round trip on this thread's own connection
        (held.py), or through the client where there is none."""
        return self._held.run(client, self._script(client, name), keys, args)

    def _script(self, client, name: str):
        script = self._scripts.get(name)
        if script is None:
            script = self._scripts[name] = client.register_script(lua(name))
        return script

    def _floor_keys(self, keys: list[str]) -> list[str]:
        """The lsn: companions of counters ``keys`` (logical ``v:<scope>``) and lsn-max."""
        return [self._key(LSN_PREFIX + k[len(VERSION_PREFIX) :]) for k in keys] + [self._key(LSN_MAX_KEY)]

    def _note_floor(self, raw) -> None:
        """A floor from a script: the position, or '' when lsn-max is missing (a new
        or restarted Redis): then the primary's current position, stored as lsn-max."""
        raw = raw.decode() if isinstance(raw, bytes) else str(raw)
        if raw:
            floors.note(int(raw))
            return
        from core import replicas

        try:
            position = replicas.primary_lsn()
        except Exception:  # noqa: BLE001 - the primary cannot tell: the build reads the primary
            floors.note(None)
            return
        self._record_position([], position)
        floors.note(position)

    def versions(self, keys: list[str]) -> list[int]:
        tracked = floors.tracking()
        all_keys = [self._key(k) for k in keys] + (self._floor_keys(keys) if tracked else [])
        result = self._run(self._client(), "versions", all_keys, [VERSION_TTL, len(keys), "1" if tracked else "0"])
        if tracked:
            result, floor = result
            self._note_floor(floor)
        # versions.lua replies a counter it created as a number, the others as strings.
        note_created([k for k, v in zip(keys, result) if isinstance(v, int)])
        return [int(v) for v in result]

    def _bump_args(self, keys: list[str], position: int | None) -> tuple[list[str], list]:
        """bump.lua's KEYS and ARGV for counters ``keys`` (logical), recording
        ``position`` in their companions when given."""
        all_keys = [self._key(k) for k in keys]
        if position is not None:
            all_keys += self._floor_keys(keys)
        return all_keys, [VERSION_TTL, "" if position is None else str(position), len(keys)]

    def _record_position(self, keys: list[str], position: int) -> None:
        client = self._client()
        all_keys, args = self._bump_args(keys, position)
        self._script(client, "bump")(keys=all_keys, args=args, client=client)

    def bump(self, keys: list[str]) -> None:
        """The INCRs, sent on a connection of their own and waited for; kept in
        flight if the reply does not come in time (inflight.py)."""
        send_and_wait(self._client().connection_pool, self._bump_command(keys))

    def _bump_command(self, keys: list[str]) -> tuple:
        """The EVAL of bump.lua for counters ``keys`` (logical). With read replicas
        the primary's WAL position (asked now, after the write's commit) is
        recorded with them (floors.py)."""
        position = None
        if floors.tracking():
            from core import replicas

            position = replicas.primary_lsn()
        all_keys, args = self._bump_args(keys, position)
        return ("EVAL", lua("bump"), len(all_keys), *all_keys, *args)

    def bump_in_flight(self, keys: list[str]) -> bool:
        """While this process knows the cache is failing: the bump sent and not
        waited for, so that a paused Redis runs it before any read sent after
        this write's response (inflight.py). Never raises; False if not sent."""
        try:
            command = self._bump_command(keys)
            pool = self._client().connection_pool
        except Exception:  # noqa: BLE001 - the bump stays pending
            return False
        return inflight.send(pool, command)

    def select_group(self, material: str) -> None:
        """One Redis, no groups (cluster.py has several)."""

    def in_group(self, material: str):
        """One Redis, no groups: a ``with`` block that changes nothing."""
        return contextlib.nullcontext()

    def ping(self) -> None:
        self._client().ping()

    def version_key(self, scope: str) -> str:
        """The name of a scope's counter as an entry's header stores it (the Lua
        lookup reads it directly, so it is the full Redis key)."""
        return self._key(VERSION_PREFIX + scope)

    def peek(self, counter_keys: list[str]) -> list[str | None]:
        """The values of counters named as ``version_key`` names them, ``None`` for
        a missing one; creates nothing (``cache_explain``)."""
        return [None if v is None else v.decode() for v in self._client().mget(counter_keys)] if counter_keys else []

    def fast_lookup(self, endpoint: str, material: str, names: list[str], stat: str, inm: str = "",
                    caller: tuple[str, bytes] | None = None):
        """Versions, key and validated lookup (with the rebuild lock) in one round
        trip: (fragment, None or NOT_MODIFIED; locked; versions; key; tag or None).
        The key is None on a hit while no trace is recorded (nothing reads it).
        ``inm``: keys.if_none_match. ``caller``: (token entry key, snapshot) of
        callers.remembered_caller, checked in the same trip: None if it changed."""
        prefix = RESPONSE_PREFIX + endpoint + ":"
        entry_prefix, lock_prefix, probe = self._keys((prefix, LOCK_PREFIX + prefix, prefix + "x"))
        if probe != entry_prefix + "x":  # a custom KEY_FUNCTION
            from .backends import fast_lookup_in_steps

            if caller is not None and self.lookup(caller[0], None, None)[0] != caller[1]:
                return None
            return fast_lookup_in_steps(self, endpoint, material, names, stat, inm)
        client = self._client()
        counters = [VERSION_PREFIX + n for n in names]
        tracked = floors.tracking()
        traced = wants_header()
        keys = self._keys([STATS_KEY, *counters])
        if tracked:
            keys += self._floor_keys(counters)
        slot = (endpoint, material)
        kept = None if traced else KEPT.get(slot)  # kept.py: the fragment need not come over again
        args = [STAMPEDE_LOCK_SECONDS, stat + "|lookup", VERSION_TTL, entry_prefix, lock_prefix, material,
                len(counters), "1" if tracked else "0", inm, "1" if traced else "0",
                *((self._key(caller[0]), caller[1]) if caller is not None else ("", "")), kept[0] if kept else ""]
        reply = self._run(client, "fast_lookup", keys, args)
        if len(reply) == 1:  # {false}: the caller's token entry changed (or is gone)
            return None
        fragment, locked, values, floor, rows = reply[0], reply[1], reply[2], reply[3], reply[4:5]
        if tracked:
            self._note_floor(floor)
        if traced:
            record_entry_rows(rows, len(self._key(VERSION_PREFIX)))
        note_created([c for c, v in zip(counters, values) if isinstance(v, int)])  # as versions()
        values = [v.decode() if isinstance(v, bytes) else str(v) for v in values]
        tag = reply[5].decode() if len(reply) > 5 else None
        if len(reply) > 6 and reply[6] == 1:
            fragment = NOT_MODIFIED
        elif len(reply) > 6 and reply[6] == 2:
            fragment = kept[1]  # the fragment this process holds under that tag
        elif len(reply) > 7:
            fragment = fragment[reply[7]:]  # the entry and where its fragment starts (valid_entry.lua)
            if not traced:
                KEPT.keep(slot, tag, fragment)
        # The key only where it is used: the miss it is handed to, the panel's trace.
        key = prefix + digest(material, values) if traced or not fragment else None
        return (fragment or None), bool(locked), dict(zip(names, map(int, values))), key, tag

    def lookup(self, entry_key: str, lock_key: str | None, stat: str | None, inm: str = ""):
        """A valid entry's fragment and tag (one round trip; NOT_MODIFIED instead
        of the fragment when ``inm`` names the tag), else ``None``, whether the
        rebuild lock was taken (only when ``lock_key`` is given) and no tag."""
        traced = wants_header() and stat is not None
        reply = self._run(
            self._client(),
            "lookup",
            [self._key(entry_key), self._key(lock_key or entry_key), self._keys([STATS_KEY])[0]],
            [STAMPEDE_LOCK_SECONDS, (stat + "|lookup") if stat else "", "1" if lock_key else "0", inm,
             "1" if traced else "0"],
        )
        value, locked = reply[0], reply[1]
        if traced:
            record_entry_rows(reply[2:3], len(self._key(VERSION_PREFIX)))
        tag = reply[3].decode() if len(reply) > 3 else None
        if len(reply) > 4 and reply[4] == 1:
            value = NOT_MODIFIED
        elif len(reply) > 5:
            value = value[reply[5]:]  # the entry and where its fragment starts (valid_entry.lua)
        return (value or None), bool(locked), tag

    def bare_round_trip(self) -> None:
        """noop.lua on the held connection: a lookup's round trip without its work (make bench)."""
        self._run(self._client(), "noop", [], [])

    def get(self, key: str):
        return self._held.pipeline(self._client(), [("GET", self._key(key))])[0]

    def put(self, key: str, value: bytes, ttl: int) -> None:
        self._client().set(self._key(key), value, ex=ttl)

    def store(self, entry_key: str, value: bytes, ttl: int, lock_key: str | None, stat: str) -> None:
        """The entry, the lock released and the miss counted: one send (held.py)."""
        commands = [("SET", self._key(entry_key), value, "EX", ttl)] if value is not None else []
        if lock_key:
            commands.append(("DEL", self._key(lock_key)))
        commands.append(("HINCRBY", self._keys([STATS_KEY])[0], stat + "|miss", 1))
        self._held.pipeline(self._client(), commands)

    def delete(self, key: str) -> None:
        """Drop one key (tests: an evicted counter)."""
        self._client().delete(self._key(key))

    def drop(self, keys: list[str]) -> None:
        """Delete counters this request created (versions.drop_created) and their
        lsn: companions, which a read with replicas records beside them (floor.lua):
        one DEL, in the current group on a Cluster (where the request read them). A
        dropped companion is as an evicted one: the next read sets it to lsn-max."""
        companions = [LSN_PREFIX + k[len(VERSION_PREFIX) :] for k in keys if k.startswith(VERSION_PREFIX)]
        self._client().delete(*[self._key(k) for k in keys + companions])

    def release(self, lock_key: str) -> None:
        self._client().delete(self._key(lock_key))

    def expire(self, key: str, seconds: int) -> None:
        """Shorten one key's life (tests: a counter near its end)."""
        self._client().expire(self._key(key), seconds)

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
