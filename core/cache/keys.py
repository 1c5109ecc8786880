"""Key material and the entry format: how a response's key is derived from the
request and the versions of its scopes, and how an entry stores the row versions
it was built under (a header in front of the JSON fragment)."""
from __future__ import annotations

import contextvars
import functools
import hashlib
import json
from pathlib import Path

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from .query import canonical_query

VERSION_PREFIX = "v:"
RESPONSE_PREFIX = "r:"
LOCK_PREFIX = "l:"
STATS_KEY = "stats:responses"
# With read replicas: a counter's companion holding the primary's WAL position of
# its last bump, and the largest position any bump recorded (core/cache/floors.py).
LSN_PREFIX = "lsn:"
LSN_MAX_KEY = "lsn-max"
# The global generation (the outage fence): part of every response key.
GENERATION_SCOPE = "*"
# A version counter nobody bumped or read for this long may expire (it then
# restarts from a fresh value, so expiry only costs misses, never staleness).
VERSION_TTL = 24 * 3600
# How long a rebuild lock (SET NX on a miss) lives at most.
STAMPEDE_LOCK_SECONDS = 5


# Counters that a read created during this request (logical keys, ``v:<scope>``):
# a read creates a missing counter, and a response that is not stored (a 404 for a
# row that does not exist, any non-200) drops the ones its own reads created, so
# that a stranger's request leaves no key behind (versions.drop_created).
_created: contextvars.ContextVar[list | None] = contextvars.ContextVar("cache_created_counters", default=None)


def note_created(keys: list[str]) -> None:
    if keys:
        found = _created.get()
        if found is None:
            _created.set(list(keys))
        else:
            found.extend(keys)


def take_created() -> list[str]:
    """The counters created since the last call (or ``forget_created``), forgotten."""
    found = _created.get()
    if found is not None:
        _created.set(None)
    return found or []


def forget_created() -> None:
    if _created.get() is not None:
        _created.set(None)


def key_material(request, caller: str, names: list[str]) -> str:
    """Release, resource, canonical query, caller and scope names (not their
    versions): docs/cache.md, "One resource, one cache identity" and "Releases".
    ``request``: Django's (the fast path) or DRF's (its attributes are Django's)."""
    return repr((release(), path_identity(request), canonical_query(request), caller, names))


def path_identity(request) -> str:
    """The resource a URL names, not how it was spelled: the route's name and its
    converted arguments (``/jobs/007/`` and ``/jobs/7/`` are ``job-detail`` with
    ``pk=7``, one entry). The fast path sets ``request.resolver_match`` before it
    asks. A URL without a name: its path."""
    match = getattr(request, "resolver_match", None)
    if match is None or not match.view_name:
        return request.path
    return repr((match.view_name, sorted(match.kwargs.items()), match.args))


@functools.cache
def release() -> str:
    """The release component of every response key: ``RESPONSE_CACHE_RELEASE``
    when set (the deployed commit, say), else a digest of the project's Python
    sources and Lua scripts, i.e. of the code that shapes responses. A new release
    never serves an entry rendered by the previous one, even while both run side
    by side during a rolling deploy."""
    configured = getattr(settings, "RESPONSE_CACHE_RELEASE", "")
    if configured:
        return configured
    root = Path(settings.BASE_DIR)
    digest_ = hashlib.sha1()
    for package in RELEASE_PACKAGES:
        for path in sorted((root / package).rglob("*")):
            if path.suffix in (".py", ".lua", ".html") and "migrations" not in path.parts and path.is_file():
                digest_.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest_.hexdigest()[:16]


# The code that shapes a response body: settings, the envelope, the apps.
RELEASE_PACKAGES = ("config", "core", "accounts", "jobs", "payments", "ratings")


@receiver(setting_changed)
def _release_setting_changed(setting, **kwargs):
    if setting in ("RESPONSE_CACHE_RELEASE", "BASE_DIR"):
        release.cache_clear()


def digest(material: str, values: list[str]) -> str:
    """SHA-1 of the material and the versions (fast_lookup.lua computes the same)."""
    return hashlib.sha1((material + "|" + ",".join(values)).encode()).hexdigest()


def response_key(endpoint: str, request, versions: dict[str, int], caller: str) -> str:
    """The entry key: path, sorted query, caller, scope names and their versions
    (the fast path's Lua computes the same SHA-1 from the same material)."""
    names = sorted(versions)
    material = key_material(request, caller, names)
    return f"{RESPONSE_PREFIX}{endpoint}:{digest(material, [str(versions[n]) for n in names])}"


def row_header(row_versions: dict) -> str:
    """The row versions as the entry's tag is derived from them (``entry_tag``): one
    ``<version key>\\t<version>`` line per row scope, sorted."""
    return "".join(f"{key}\t{version}\n" for key, version in sorted(row_versions.items()))


def encode_entry(row_versions: dict[str, int], fragment: bytes, tag: str = "") -> bytes:
    """``row_versions``: version key (as the backend names it) -> version; ``tag``:
    the entry's ETag (``entry_tag``; token entries have none). The entry is
    ``<keys length> <versions length> <tag>\\n<keys><versions><fragment>``: the
    version keys sorted as a JSON array, their versions joined by commas in that
    order. valid_entry.lua decodes the array in C (cjson), MGETs the counters and
    compares their joined values with the stored ones in one string comparison,
    and replies with the stored tag: a Lua pattern loop over one line per row and
    a SHA-1 of the header on every hit cost Redis half as much again (38 against
    25 us for a 40-row job-list entry: docs/cache.md, "The entry format")."""
    keys = sorted(row_versions)
    packed = json.dumps(keys, separators=(",", ":")).encode() if keys else b""
    versions = ",".join(str(row_versions[k]) for k in keys).encode()
    return f"{len(packed)} {len(versions)} {tag}\n".encode() + packed + versions + fragment


# --- conditional GET (docs/cache.md, "ETags") ------------------------------------------
# An entry's ETag is derived from what it was built from, not from its bytes: the
# key's digest (path, query, caller, coarse scope versions) and the row versions
# of its header. Same key and row versions, same data: so the tag is known before
# anything is rendered (on a miss, as soon as the row versions are read), and a
# write that retires the entry changes it. Weak (W/): the envelope's
# correlation_id and timestamp differ from one response to the next.



class _NotModified:
    def __repr__(self):
        return "NOT_MODIFIED"


# ``lookup`` / ``fast_lookup`` return this instead of a fragment when the client's
# If-None-Match names the entry: the fragment never leaves Redis.
NOT_MODIFIED = _NotModified()


def entry_tag(key: str, header: str) -> str:
    """SHA-1 of the key's digest (its last 40 characters) and the row versions
    (``row_header``), computed once per entry: on a miss before anything is
    rendered, and stored in the entry (``encode_entry``) for the hits."""
    return hashlib.sha1((key[-40:] + "\n" + header).encode()).hexdigest()


def etag_value(tag: str) -> str:
    return f'W/"{tag}"'


def if_none_match(request) -> str:
    """The request's If-None-Match as the Lua lookups take it: the opaque tags
    between spaces (``" t1 t2 "``), ``" * "`` for ``*``, ``""`` when absent."""
    meta = request.META if hasattr(request, "META") else request._request.META
    raw = meta.get("HTTP_IF_NONE_MATCH", "")
    if not raw:
        return ""
    tags = []
    for part in raw.split(","):
        part = part.strip()
        if part == "*":
            return " * "
        if part.startswith("W/"):
            part = part[2:]
        if len(part) > 2 and part[0] == part[-1] == '"':
            tag = part[1:-1]
            if len(tag) == 40 and all(c in "0123456789abcdef" for c in tag):
                tags.append(tag)
    return " " + " ".join(tags[:8]) + " " if tags else ""


def names_tag(inm: str, tag: str) -> bool:
    """Python's ``not_modified`` (valid_entry.lua)."""
    return bool(inm) and (inm == " * " or f" {tag} " in inm)


def decode_entry(value: bytes) -> tuple[dict[str, str], bytes]:
    """The inverse of ``encode_entry``: (row versions by version key, fragment)."""
    value = bytes(value)
    nl = value.index(b"\n")
    klen, vlen, _tag = value[:nl].split(b" ")
    start, klen, vlen = nl + 1, int(klen), int(vlen)
    keys = json.loads(value[start : start + klen]) if klen else []
    versions = value[start + klen : start + klen + vlen].decode().split(",") if vlen else []
    return dict(zip(keys, versions)), value[start + klen + vlen :]


def entry_stored_tag(value: bytes) -> str:
    """The tag ``encode_entry`` stored in front of an entry ('' for none)."""
    value = bytes(value)
    return value[: value.index(b"\n")].split(b" ")[2].decode()
