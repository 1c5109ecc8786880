"""Fragments kept in the process (docs/cache.md, "Fragments kept in the process").

A fast-path hit brings its entry's fragment over from Redis: a job-list page is
about 12 KB that Redis copies into Lua, into its reply and onto the socket, and
this process reads back and slices, on every hit. Each process keeps the last
fragment it was sent for a key material (endpoint, path, query, caller, scope
names), with the entry's tag, and names that tag in its next lookup of the same
material (fast_lookup.lua, ARGV[13]). The script validates the entry exactly as
before; if the entry's tag is the one named, it answers "yours" instead of
sending the fragment, and the process serves the bytes it kept.

Why that is the same answer: the tag is what a client's If-None-Match is checked
against (keys.entry_tag): SHA-1 of the key's digest (material and coarse
versions) and the row header (row versions), validated against the counters in
the same script. A fragment is kept under the tag Redis sent it with, so a tag
the script confirms names exactly the bytes this process holds: the argument
that lets a client keep its copy on a 304 lets the process keep its own. A write
that retires the entry changes the tag, and the next lookup sends the new
fragment. Nothing is served without the lookup: the round trip and its
validation stay, only the bytes of an unchanged fragment stay home.

Bounded: ``RESPONSE_CACHE_KEPT_BYTES`` per process (default 32 MiB, 0 turns it
off). Past the bound the whole memory is dropped and fills again from the next
hits (each costs one transfer, as without it).
"""
from __future__ import annotations

import threading

from django.conf import settings


class KeptFragments:
    def __init__(self):
        self._slots: dict[tuple[str, str], tuple[str, bytes]] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, slot: tuple[str, str]) -> tuple[str, bytes] | None:
        """(tag, fragment) kept for ``slot`` (endpoint, key material), or None."""
        return self._slots.get(slot)

    def keep(self, slot: tuple[str, str], tag: str, fragment: bytes) -> None:
        limit = settings.RESPONSE_CACHE_KEPT_BYTES
        if limit <= 0 or len(fragment) > limit:
            return
        with self._lock:
            old = self._slots.pop(slot, None)
            if old is not None:
                self._bytes -= len(old[1])
            if self._bytes + len(fragment) > limit:
                self._slots.clear()
                self._bytes = 0
            self._slots[slot] = (tag, fragment)
            self._bytes += len(fragment)

    def clear(self) -> None:
        with self._lock:
            self._slots.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._slots)

    @property
    def nbytes(self) -> int:
        return self._bytes


KEPT = KeptFragments()

