"""The Redis backend (django-redis): each operation is one round trip, using the
Lua scripts in ``lua/``. Keys given to it are logical; it adds the cache prefix."""
from __future__ import annotations

from .keys import LOCK_PREFIX, RESPONSE_PREFIX, STAMPEDE_LOCK_SECONDS, STATS_KEY, VERSION_PREFIX, VERSION_TTL, digest
from .outage import start_drain
from .scripts import lua


class RedisBackend:
    def __init__(self, django_cache):
        self.cache = django_cache
        self._scripts = {}

    def _client(self):
        return self.cache.client.get_client(write=True)

    def _key(self, key: str) -> str:
        return str(self.cache.make_key(key))

    def _script(self, client, name: str):
        script = self._scripts.get(name)
        if script is None:
            script = self._scripts[name] = client.register_script(lua(name))
        return script

    def versions(self, keys: list[str]) -> list[int]:
        client = self._client()
        script = self._script(client, "versions")
        values = script(keys=[self._key(k) for k in keys], args=[VERSION_TTL], client=client)
        return [int(v) for v in values]

    def bump(self, keys: list[str]) -> None:
        """The INCRs, on a connection of their own that is kept open (and drained
        in the background) if the reply does not come in time: docs/cache.md,
        "Outages", mechanism 1."""
        import redis

        client = self._client()
        pool = client.connection_pool
        conn = pool.get_connection()
        try:
            conn.send_command("EVAL", lua("bump"), len(keys), *[self._key(k) for k in keys], VERSION_TTL)
        except BaseException:
            conn.disconnect()
            pool.release(conn)
            raise
        try:
            conn.read_response(disconnect_on_error=False)
        except redis.exceptions.TimeoutError:
            if not start_drain(pool, conn):
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
            from .backends import fast_lookup_in_steps

            return fast_lookup_in_steps(self, endpoint, material, names, stat)
        client = self._client()
        script = self._script(client, "fast_lookup")
        keys = [self._key(STATS_KEY)] + [self._key(VERSION_PREFIX + n) for n in names]
        args = [STAMPEDE_LOCK_SECONDS, stat + "|lookup", VERSION_TTL, entry_prefix, lock_prefix, material]
        fragment, locked, values = script(keys=keys, args=args, client=client)
        values = [v.decode() if isinstance(v, bytes) else str(v) for v in values]
        key = prefix + digest(material, values)
        return (fragment or None), bool(locked), dict(zip(names, map(int, values))), key

    def lookup(self, entry_key: str, lock_key: str | None, stat: str | None):
        """A valid entry's fragment (one round trip), else ``None`` and whether
        the rebuild lock was taken (only when ``lock_key`` is given)."""
        client = self._client()
        script = self._script(client, "lookup")
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
