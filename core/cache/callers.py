"""Signed-in callers without the database: a cached token -> user entry,
validated on every read by that user's version counters (docs/cache.md,
"Signed-in callers").

An entry ``t2:<sha256 of the token>`` holds the few user fields that permission
checks and cache scopes read (id, role, staff flags, names, e-mail) as JSON,
behind the same header as a response entry: the versions of ``user:<id>``
(bumped by any change to the user row: role, deactivation, staff flag),
``auth:<id>`` (bumped when the user's tokens change: logout, a new token) and
the outage generation. The lookup (lookup.lua, one round trip) returns the
snapshot only while all three still have those versions, so a logout, a
deactivation or a role change is seen by the very next request. On a Redis
Cluster the entry and the counters its header names carry the group (hash tag)
of the token (``in_group``), whatever response the token authenticates.

Why an entry is only trusted from the second sight of a token: the versions must
be read *before* the database is (docs/cache.md, "The order on a miss"), and the
user's id is not known before the token has been looked up once. So the first
database authentication of a token stores a *hint* (the snapshot with versions
that never match); the next one reads the hinted user's versions, then queries
the database, and stores the snapshot under the versions it read first. A write
committing in between bumps after its commit and so retires that entry.

Only GETs are authenticated through here (the fast path serves only GETs);
writes keep DRF's ``TokenAuthentication`` as is. With the cache down, everything
is DRF's database authentication.
"""
from __future__ import annotations

import datetime
import hashlib
import json

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models.base import ModelState
from rest_framework.authentication import TokenAuthentication

from .backends import backend
from .keys import GENERATION_SCOPE, NOT_MODIFIED, decode_entry, encode_entry
from .outage import CacheUnavailable, ensure_healthy, health
from .versions import get_versions

# "t2:": the entry format of keys.encode_entry since its header was packed for
# Redis (a process of an earlier release, during a rolling deploy, reads only its
# own "t:" entries; response keys carry the release already).
TOKEN_PREFIX = "t2:"
SNAPSHOT_FIELDS = ("id", "email", "first_name", "last_name", "role", "is_staff", "is_superuser", "is_active")


def auth_scope(user_id) -> str:
    """Bumped when the user's tokens change (the accounts app tracks Token)."""
    return f"auth:{user_id}"


def caller_scopes(user_id) -> list[str]:
    return [f"user:{user_id}", auth_scope(user_id), GENERATION_SCOPE]


def token_entry_key(token_key: str) -> str:
    # Hashed: a key listing never shows a usable token.
    return TOKEN_PREFIX + hashlib.sha256(token_key.encode()).hexdigest()


def token_from_header(request) -> str | None:
    """The key of ``Authorization: Token <key>`` as DRF's TokenAuthentication
    reads it, or None for anything it would not accept as is."""
    parts = request.META.get("HTTP_AUTHORIZATION", "").split()
    if len(parts) != 2 or parts[0].lower() != TokenAuthentication.keyword.lower():
        return None
    key = parts[1]
    return key if key.isascii() and key.isprintable() else None


def _snapshot(user) -> bytes:
    return json.dumps({name: getattr(user, name) for name in SNAPSHOT_FIELDS}).encode()


# Snapshot -> the attributes of a User built from it, per process (bounded): a
# model's __init__ costs more than the rest of resolving a caller.
_BUILT: dict[bytes, dict] = {}
_BUILT_MAX = 4096
# Values two instances may share (immutable); a model with any other is built anew.
_SHAREABLE = (str, int, float, bool, type(None), datetime.date, datetime.time)


def _user(snapshot: bytes):
    """An unsaved-looking but loaded-looking User with the snapshot's fields: what
    permission checks, scope functions and querysets (by pk) read. A new instance
    every time (its own attributes and state) with what ``User(**fields)`` sets,
    copied from the first one built from that snapshot (the fields outside the
    snapshot hold their defaults, as before; ``date_joined``'s is that first one's)."""
    model = get_user_model()
    built = _BUILT.get(snapshot)
    if built is None or built["__class__"] is not model:
        user = model(**json.loads(snapshot))
        user._state.adding = False
        user._state.db = "default"
        attrs = {k: v for k, v in user.__dict__.items() if k != "_state"}
        if not all(isinstance(v, _SHAREABLE) for v in attrs.values()):
            return user
        if len(_BUILT) >= _BUILT_MAX:
            _BUILT.clear()
        _BUILT[snapshot] = {"__class__": model, "attrs": attrs}
        return user
    user = model.__new__(model)
    user.__dict__.update(built["attrs"])
    user._state = ModelState()
    user._state.adding = False
    user._state.db = "default"
    return user


def cached_caller(token_key: str):
    """The token's user from its entry if the entry is still valid (one round
    trip), else None. Raises CacheUnavailable while the cache is failing."""
    ensure_healthy()
    key = token_entry_key(token_key)
    b = backend()
    with b.in_group(key):
        fragment, _, _ = b.lookup(key, None, None)
    if fragment is None or fragment is NOT_MODIFIED:
        return None
    snapshot = bytes(fragment)
    user = _user(snapshot)
    if not user.is_active:
        return None
    if b.checks_caller:
        if len(_SEEN) >= _SEEN_MAX:
            _SEEN.clear()
        _SEEN[key] = snapshot
    return user


# Token entry key -> the snapshot its entry held when this process last read it
# valid (bounded; keyed by the hashed key, so no token is kept). Where the backend
# can (one Redis: ``checks_caller``), the fast path's next lookup for that token
# checks, in the same round trip as the response lookup (fast_lookup.lua), that
# the entry is still valid and still holds this snapshot, and otherwise looks
# nothing up: nothing is trusted that a lookup of the entry would not return now,
# and a signed-in hit costs one round trip, not two.
_SEEN: dict[str, bytes] = {}
_SEEN_MAX = 4096


def remembered_caller(token_key: str):
    """``(user, (token entry key, snapshot))`` for a token whose entry this
    process has read valid, to be confirmed by the lookup (``fast_lookup``'s
    ``caller``), else None."""
    key = token_entry_key(token_key)
    snapshot = _SEEN.get(key)
    if snapshot is None:
        return None
    return _user(snapshot), (key, snapshot)


def forget_caller(entry_key: str) -> None:
    """The lookup found the token's entry changed or gone: read it again next time."""
    _SEEN.pop(entry_key, None)


class CachedTokenAuthentication(TokenAuthentication):
    """DRF's TokenAuthentication (same header, same errors, same database check),
    which on a GET also keeps the token's entry for the fast path, and which
    takes the caller the fast path already resolved from a valid entry instead
    of querying again."""

    def authenticate(self, request):
        resolved = getattr(request._request, "cache_caller", None)
        if resolved is not None and request.method == "GET":
            token_key, user = resolved
            if token_from_header(request._request) == token_key:
                return user, token_key
        if request.method != "GET":
            return super().authenticate(request)
        token_key = token_from_header(request._request)
        prepared = self._prepare(token_key) if token_key else None
        result = super().authenticate(request)
        if result is not None and prepared is not None:
            self._keep(token_key, result[0], prepared)
        return result

    @staticmethod
    def _prepare(token_key):
        """Before the database: the hinted user's versions (or {} without a hint)
        and the current entry, or None when the cache cannot be used."""
        try:
            ensure_healthy()
            key = token_entry_key(token_key)
            with backend().in_group(key):
                raw = backend().get(key)
                if raw is None:
                    return {"versions": {}, "raw": None}
                _, payload = decode_entry(raw)
                user_id = json.loads(payload)["id"]
                return {"versions": get_versions(caller_scopes(user_id)), "raw": bytes(raw), "id": user_id}
        except Exception as exc:  # noqa: BLE001 - the database answers alone
            if not isinstance(exc, CacheUnavailable):
                health.failed("read", exc)
            return None

    @staticmethod
    def _keep(token_key, user, prepared):
        key = token_entry_key(token_key)
        b = backend()
        with b.in_group(key):
            if prepared["versions"] and prepared.get("id") == user.pk:
                # Read before the query above: a later change to the user or the token
                # bumps one of them after its commit, which retires this entry.
                header = {b.version_key(scope): version for scope, version in prepared["versions"].items()}
            else:
                # A hint: never valid, but names the user whose versions to read next time.
                header = {b.version_key(scope): 0 for scope in caller_scopes(user.pk)}
            value = encode_entry(header, _snapshot(user))
            if value == prepared["raw"]:
                return
            try:
                b.put(key, value, settings.RESPONSE_CACHE_TTL)
            except Exception as exc:  # noqa: BLE001
                health.failed("write", exc)
