"""The response cache: ``@cached_response`` declares a cached view handler,
``serve_cached`` serves it (look up, or build and store under the versions read
before the query), ``page_rows`` names the row scopes of a page with the cheap ids
query. docs/cache.md, "The order on a miss" and "Row scopes"."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from functools import wraps

from django.conf import settings
from prometheus_client import Counter

from core import replicas

from . import floors, trace
from .backends import backend
from .keys import GENERATION_SCOPE, LOCK_PREFIX, encode_entry, key_material, response_key
from .outage import CacheUnavailable, health
from .versions import get_versions, row_versions

# How long a request waits for another one that is rebuilding the same entry.
STAMPEDE_WAIT_SECONDS = 0.5
STAMPEDE_POLL_SECONDS = 0.02

CACHE_REQUESTS = Counter(
    "shiftboard_response_cache_total",
    "Response cache lookups by endpoint and result (hit, miss, bypass).",
    ["view", "result"],
)


def _set_status(endpoint: str, request, response, status: str):
    # Server-Timing and X-Cache speak hit|miss (docs/API.md); metrics tell bypass apart.
    request._request.cache_status = "hit" if status == "hit" else "miss"
    request._request.cache_decision = status  # hit | miss | bypass, for the access log (core/logging.py)
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
    read, then the response is built and stored with them (docs/cache.md,
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
        if trace.current() is not None:
            renderer = getattr(getattr(request, "accepted_renderer", None), "format", None)
            trace.record(endpoint=endpoint, private=private, path="drf")
            trace.record_decision(trace.NOT_CACHED, trace.NOT_JSON.format(renderer=f"the '{renderer}' renderer"))
        return build()
    scopes = set(scopes)
    caller = "public"
    if private:
        user = request.user
        caller = f"user:{user.pk}" if user.is_authenticated else "anon"
        if user.is_authenticated:
            scopes.add(f"user:{user.pk}")
    lock_key = None
    # The read floor of this response (floors.py): noted while its versions are read.
    floors.begin()
    # On a Redis Cluster: the group (hash tag) of this response's keys (cluster.py).
    if backend().grouped:
        backend().select_group(key_material(request, caller, sorted(scopes | {GENERATION_SCOPE})))
    if pre is not None:
        floors.note(pre["floor"])  # None: the fast path found it unknown
    try:
        if pre is not None:
            versions, key = pre["versions"], pre["key"]
            fragment, locked = None, pre["lock_key"] is not None
        else:
            versions = get_versions(scopes)
            key = response_key(endpoint, request, versions, caller)
            fragment, locked = backend().lookup(key, LOCK_PREFIX + key, endpoint)
        if trace.current() is not None:
            trace.record_key(endpoint, caller, private, key, versions, key_material(request, caller, sorted(versions)))
            trace.record(path="fast lookup, DRF build" if pre is not None else "drf")
        if fragment is None:
            if locked:
                lock_key = LOCK_PREFIX + key
            else:
                # Someone else is rebuilding this entry: wait for it briefly.
                waited = time.monotonic()
                fragment = _wait_for(key)
                if trace.current() is not None:
                    outcome = "found its entry" if fragment is not None else "built it here"
                    trace.record(stampede=trace.STAMPEDE.format(ms=(time.monotonic() - waited) * 1000, outcome=outcome))
    except Exception as exc:  # noqa: BLE001 - cache down: answer from the database
        if not isinstance(exc, CacheUnavailable):
            health.failed("read", exc)
        response = build()
        _set_status(endpoint, request, response, "bypass")
        trace.record_decision(trace.BYPASS, trace.UNAVAILABLE)
        return response

    row_map: dict[str, int] = {}
    if fragment is None and rows is not None:
        try:
            # The ids query may read a replica past the coarse scopes' floor: a row
            # it misses is a membership change, which bumped a coarse scope.
            with replicas.reads_at(floors.current()):
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
            trace.record_decision(trace.BYPASS, trace.UNAVAILABLE)
            return response
        _rows_read_hook(request)
        if trace.current() is not None:
            trace.record(rows_recorded=dict(zip(sorted(row_scopes), row_map.values())))

    if fragment is not None:
        response = Response()
        response.cached_fragment = bytes(fragment)
        _set_status(endpoint, request, response, "hit")
        trace.record_decision(trace.HIT)
        return response

    try:
        # A replica may serve the build only once it has replayed every write that
        # bumped a scope or row this response shows (floors.py; docs/scaling.md).
        with replicas.reads_at(floors.current()):
            response = build()
    except BaseException:
        _unlock(lock_key)
        raise
    _set_status(endpoint, request, response, "miss")
    trace.record_decision(trace.MISS, getattr(trace.current(), "stampede", ""))
    ttl = settings.RESPONSE_CACHE_TTL
    cacheable = response.status_code == 200 and getattr(response, "envelope_message", None) is None

    def store(rendered):
        value = getattr(rendered, "rendered_fragment", None) if cacheable else None
        if value is not None:
            _before_store_hook(request)
            value = encode_entry(row_map, bytes(value))
        try:
            backend().store(key, value, ttl, lock_key, endpoint)
            trace.record(stored=value is not None)
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
    request, **kwargs)`` (optional; normally a ``core.cache.Rows``, which reads
    them from the view's own queryset) names the row scopes of the rows it shows
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



def _wait_for(key: str):
    deadline = time.monotonic() + STAMPEDE_WAIT_SECONDS
    b = backend()
    while time.monotonic() < deadline:
        time.sleep(STAMPEDE_POLL_SECONDS)
        value, _ = b.lookup(key, None, None)  # validated, like any read
        if value is not None:
            return value
    return None


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
        # A page past what the paginator counts (it stops at count_cap) is a 404
        # anyway; never hand the database an OFFSET beyond its integer range.
        if offset > getattr(paginator, "count_cap", offset):
            return []
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
