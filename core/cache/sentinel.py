"""Redis Sentinel: the failover fence (``REDIS_SENTINELS``).

Replication from a Redis master to its replica is asynchronous. When sentinels
promote the replica after the master died, the replica may have missed the last
commands the master acknowledged - among them version bumps of writes that have
already returned. Its counters are then behind, and entries made under those old
versions (which it did receive: replication is ordered, so it holds a prefix of
the master's history) would be valid again: a stale read.

The fence: every connection this pool opens to a master first asks the server for
its replication id (``INFO replication``: ``master_replid``, which a promotion
changes) and, unless this process already verified that id, runs one Lua script
(``lua/fence.lua``) that compares it with the id stored in the ``master`` key; if
they differ - the first connection to a new master, from any
process - it bumps the global generation (``*``, part of every response key) and
stores the new id, atomically. Every entry written before the failover is thereby
retired before any process reads through the new master; what the promoted
replica missed no longer matters. The price is one cold cache per failover.
Each process remembers the id it last verified, so the check costs one INFO per
new connection and the script runs once per process per master.

(With read replicas, the fence also raises the generation's WAL floor to the
primary's current position: the counters the replica missed may also have been
the floors of those writes - ``core.cache`` module docstring.)
"""
from __future__ import annotations

import logging
import threading

from redis.sentinel import SentinelConnectionPool, SentinelManagedConnection

from .keys import GENERATION_SCOPE, LSN_MAX_KEY, LSN_PREFIX, VERSION_PREFIX, VERSION_TTL
from .scripts import lua

logger = logging.getLogger("shiftboard.cache")

MASTER_KEY = "master"  # the replication id of the master the cache was last fenced on

_verified = {"replid": None}
_verified_lock = threading.Lock()


def replication_id(conn) -> str:
    """``master_replid`` of the server at the other end of ``conn``."""
    conn.send_command("INFO", "replication")
    info = conn.read_response()
    info = info.decode() if isinstance(info, bytes) else str(info)
    for line in info.splitlines():
        if line.startswith("master_replid:"):
            return line.split(":", 1)[1].strip()
    raise RuntimeError("INFO replication without master_replid")


def fence_new_master(conn) -> bool:
    """Run on every new connection to the master, before its first command: if
    the master is not the one the cache was last fenced on, bump the generation
    (atomically with recording the new id, so one process does it per failover).
    Returns whether this call fenced."""
    from django.core.cache import cache

    from . import floors

    replid = replication_id(conn)
    if _verified["replid"] == replid:
        return False
    keys = [cache.make_key(MASTER_KEY), cache.make_key(VERSION_PREFIX + GENERATION_SCOPE)]
    position = ""
    if floors.tracking():
        # What the promoted replica missed may include WAL floors too: the
        # generation's floor becomes the primary's current position (floors.py).
        from core import replicas

        position = str(replicas.primary_lsn())
        keys += [cache.make_key(LSN_PREFIX + GENERATION_SCOPE), cache.make_key(LSN_MAX_KEY)]
    conn.send_command("EVAL", lua("fence"), len(keys), *keys, replid, VERSION_TTL, position)
    fenced = conn.read_response()
    with _verified_lock:
        _verified["replid"] = replid
    if fenced:
        logger.warning("cache: new Redis master (replication id %s): generation bumped, older entries retired", replid)
    return bool(fenced)


class FencedSentinelConnection(SentinelManagedConnection):
    """A master connection that fences a new master before it is used."""

    def on_connect_check_health(self, check_health: bool = True):
        super().on_connect_check_health(check_health)
        if self.connection_pool.is_master:
            fence_new_master(self)


class FencedSentinelConnectionPool(SentinelConnectionPool):
    """django-redis ``CONNECTION_POOL_CLASS``: its connections fence a new master."""

    def __init__(self, service_name, sentinel_manager, **kwargs):
        kwargs["connection_class"] = FencedSentinelConnection
        super().__init__(service_name, sentinel_manager, **kwargs)
