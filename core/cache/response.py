"""The response cache: ``@cached_response`` declares a cached view handler,
``serve_cached`` serves it (look up, or build and store under the versions read
before the query; the row scopes come from ``rows.Rows`` and ``rows.page_rows``). docs/cache.md, "The order on a miss" and "Row scopes"."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from functools import wraps

from django.conf import settings

from core import replicas

from . import counts, floors, trace
from .backends import backend
from .identity import caller_scopes, endpoint_name, json_renderer_accepted, select_group
from .keys import (
    LOCK_PREFIX,
    NOT_MODIFIED,
    encode_entry,
    entry_tag,
    etag_value,
    forget_created,
    if_none_match,
    key_material,
    names_tag,
    response_key,
    row_header,
)
from .measure import Bookkeeping, set_status
from .outage import CacheUnavailable, health
from .rows import Rows, row_scopes
from .versions import drop_created, get_versions, row_versions

# How long a request waits for another one that is rebuilding the same entry.
STAMPEDE_WAIT_SECONDS = 0.5
STAMPEDE_POLL_SECONDS = 0.02

def _validators(response, tag: str | None, private: bool) -> None:
    # Cache-Control is core.middleware.HTTPCachePolicyMiddleware's, for every
    # answer alike (a 304 gets what its 200 would get).
    if tag is not None:
        response["ETag"] = etag_value(tag)


def _not_modified(endpoint: str, request, tag: str, private: bool, status: str):
    """304 for a client that holds the current entry: no body is read or sent."""
    from rest_framework.response import Response

    response = Response(status=304)
    set_status(endpoint, request, response, status)
    _validators(response, tag, private)
    return response


def serve_cached(
    view,
    request,
    build: Callable,
    scopes: Iterable[str],
    private: bool,
    endpoint: str = "",
    rows: Callable[[], Iterable[str]] | None = None,
    countable: bool = False,
):
    """Serve ``build()``'s response from the cache when an entry exists for the
    current versions of ``scopes``; otherwise build it and store it. Permission
    checks have already run (this is called from the handler, after ``initial``);
    a private entry is keyed by the caller and also depends on ``user:<id>``, so a
    change to the caller (role, staff flag) retires it.

    ``rows(versions)`` (optional; given the coarse versions just read) runs the
    cheap ids query (or recalls its answer: ``Rows(recall=True)``) and names the row scopes of
    what the response will show; on a miss it runs, then the row versions are
    read, then the response is built and stored with them (docs/cache.md,
    "Row scopes"). ``countable``: the list's total is kept under the coarse
    versions too (counts.py)."""
    from rest_framework.response import Response

    endpoint = endpoint or view.__class__.__name__
    caller, scopes = caller_scopes(request, scopes, private)
    # The fast path (AnonymousHitMiddleware) already looked this entry up and missed.
    pre = getattr(request._request, "cache_prelookup", None)
    if pre is None:
        forget_created()  # the counters this request's reads create are noted from here
    if pre is not None:
        request._request.cache_prelookup = None
        if pre["endpoint"] != endpoint or pre["caller"] != caller:
            _unlock(pre["lock_key"])
            pre = None
    if not json_renderer_accepted(request):
        if pre is not None:
            _unlock(pre["lock_key"])
        if trace.current() is not None:
            renderer = getattr(getattr(request, "accepted_renderer", None), "format", None)
            trace.record(endpoint=endpoint, private=private, path="drf")
            trace.record_decision(trace.NOT_CACHED, trace.NOT_JSON.format(renderer=f"the '{renderer}' renderer"))
        return build()
    lock_key = None
    # The read floor of this response (floors.py): noted while its versions are read.
    floors.begin()
    select_group(request, caller, scopes)
    if pre is not None:
        floors.note(pre["floor"])  # None: the fast path found it unknown
    inm = if_none_match(request)
    tag = None
    spent = Bookkeeping(request)
    try:
        if pre is not None:
            versions, key = pre["versions"], pre["key"]
            fragment, locked = None, pre["lock_key"] is not None
        else:
            # Two round trips (versions, then the validated lookup) where the fast
            # path did not run: a session, a token without a valid entry yet.
            versions = get_versions(scopes)
            key = response_key(endpoint, request, versions, caller)
            fragment, locked, tag = backend().lookup(key, LOCK_PREFIX + key, endpoint, inm)
            spent.lap("lookup")
        if trace.current() is not None:
            trace.record_key(endpoint, caller, private, key, versions, key_material(request, caller, sorted(versions)))
            trace.record(path="fast lookup, DRF build" if pre is not None else "drf")
        if fragment is None:
            if locked:
                lock_key = LOCK_PREFIX + key
            else:
                # Someone else is rebuilding this entry: wait for it briefly.
                waited = time.monotonic()
                fragment, tag = _wait_for(key, inm)
                spent.lap("wait")
                if trace.current() is not None:
                    outcome = "found its entry" if fragment is not None else "built it here"
                    trace.record(stampede=trace.STAMPEDE.format(ms=(time.monotonic() - waited) * 1000, outcome=outcome))
    except Exception as exc:  # noqa: BLE001 - cache down: answer from the database
        if not isinstance(exc, CacheUnavailable):
            health.failed("read", exc)
        response = build()
        set_status(endpoint, request, response, "bypass")
        trace.record_decision(trace.BYPASS, trace.UNAVAILABLE)
        return response

    row_map: dict[str, int] = {}
    if fragment is None and rows is not None:
        try:
            spent.start = time.perf_counter()
            # The ids query may read a replica past the coarse scopes' floor: a row
            # it misses is a membership change, which bumped a coarse scope.
            row_scopes = replicas.read_at(floors.current(), lambda: set(rows(versions))) - set(versions)
            spent.lap("ids")
        except BaseException:
            _unlock(lock_key)
            drop_created()  # e.g. the 404 of a row that does not exist: no key left behind
            raise
        try:
            row_map = row_versions(row_scopes)
            spent.lap("rows")
        except Exception as exc:  # noqa: BLE001 - cache down: answer from the database
            if not isinstance(exc, CacheUnavailable):
                health.failed("read", exc)
            lock_key = None
            response = build()
            set_status(endpoint, request, response, "bypass")
            trace.record_decision(trace.BYPASS, trace.UNAVAILABLE)
            return response
        _rows_read_hook(request)
        if trace.current() is not None:
            trace.record(rows_recorded=dict(zip(sorted(row_scopes), row_map.values())))

    if fragment is NOT_MODIFIED:
        return _not_modified(endpoint, request, tag, private, "hit")
    if fragment is not None:
        response = Response()
        response.cached_fragment = bytes(fragment)
        set_status(endpoint, request, response, "hit")
        trace.record_decision(trace.HIT)
        _validators(response, tag, private)
        return response

    # A miss: the entry's tag is known before anything is rendered (the key and the
    # row versions just read). A client holding it gets its 304 without a build.
    tag = entry_tag(key, row_header(row_map))
    if names_tag(inm, tag):
        _unlock(lock_key)
        return _not_modified(endpoint, request, tag, private, "miss")
    memo = counts.CountMemo.for_request(endpoint, view, request, caller, versions) if countable else None
    try:
        # A replica may serve the build only once it has replayed every write that
        # bumped a scope or row this response shows (floors.py; docs/scaling.md).
        if memo is not None:
            counts.arm(request, memo)
        # A replica that fails meanwhile (down, hung): built again on the primary.
        response = replicas.read_at(floors.current(), build)
    except BaseException:
        _unlock(lock_key)
        drop_created()
        raise
    finally:
        counts.arm(request, None)
    set_status(endpoint, request, response, "miss")
    trace.record_decision(trace.MISS, getattr(trace.current(), "stampede", ""))
    ttl = settings.RESPONSE_CACHE_TTL
    cacheable = response.status_code == 200 and getattr(response, "envelope_message", None) is None
    if cacheable:
        _validators(response, tag, private)

    def store(rendered):
        value = getattr(rendered, "rendered_fragment", None) if cacheable else None
        if value is not None:
            _before_store_hook(request)
            value = encode_entry(row_map, bytes(value), tag)
        spent.start = time.perf_counter()
        try:
            backend().store(key, value, ttl, lock_key, endpoint)
            if value is not None and memo is not None:
                memo.flush()  # the list's total, kept only beside a stored entry
            spent.lap("store")
            trace.record(stored=value is not None)
        except Exception as exc:  # noqa: BLE001
            health.failed("write", exc)
        if value is None:
            drop_created()  # not stored (a 404, any non-200): the counters its reads created go

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
    query=None,
):
    """Decorates a view handler (``list``, ``retrieve``, an ``@action``):
    ``scopes(view, request, **kwargs)`` names what decides which rows the response
    shows and in what order (coarse scopes: part of the key); ``rows(view,
    request, **kwargs)`` (optional; normally a ``core.cache.Rows``, which reads
    them from the view's own queryset) names the row scopes of the rows it shows
    (validated on every hit); ``private=True`` keys the entry by caller;
    ``query`` (a ``core.cache.Query``) says what the handler reads from the query
    string where the view does not tell (query.py). Metrics
    and keys name the endpoint ``<ViewClass>.<handler>``. The wrapper carries
    ``cache_meta`` (scopes, rows, private) for the anonymous fast path."""

    # The total of a list whose rows are the view's own filtered queryset (counts.py).
    countable = isinstance(rows, Rows) and rows.source is None and not rows.detail

    def decorate(handler):
        @wraps(handler)
        def wrapper(view, request, *args, **kwargs):
            return serve_cached(
                view,
                request,
                lambda: handler(view, request, *args, **kwargs),
                scopes(view, request, **kwargs),
                private,
                endpoint=endpoint_name(view.__class__, handler.__name__),
                rows=(lambda versions: row_scopes(rows, view, request, versions, kwargs)) if rows is not None else None,
                countable=countable,
            )

        wrapper.cache_meta = {
            "scopes": scopes, "rows": rows, "private": private, "name": handler.__name__, "query": query,
        }
        return wrapper

    return decorate



def _wait_for(key: str, inm: str = ""):
    """The entry another request is rebuilding, and its tag, once it is stored
    (at most STAMPEDE_WAIT_SECONDS), else (None, None)."""
    deadline = time.monotonic() + STAMPEDE_WAIT_SECONDS
    b = backend()
    while time.monotonic() < deadline:
        time.sleep(STAMPEDE_POLL_SECONDS)
        value, _, tag = b.lookup(key, None, None, inm)  # validated, like any read
        if value is not None:
            return value, tag
    return None, None


def _rows_read_hook(request) -> None:
    """Called on a miss after the row versions are read and before the response
    is built (step 3 -> 4). Nothing in production; tests patch it to commit a
    write exactly there."""


def _before_store_hook(request) -> None:
    """Called on a miss after the response is built and before it is stored.
    Nothing in production; tests patch it to commit a write exactly there."""
