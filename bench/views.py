"""The floor: a bare Django view returning fixed bytes, as large as the page it is
compared with (``?bytes=N``, the size of Shiftboard's job list page, measured by
the bench). It goes through the same middleware as every other request, so it is
the most any endpoint could do on this server. And the state of the slow-query
hook, which the bench reads before it compares the hook on and off."""
from functools import lru_cache

from django.conf import settings
from django.db import connection
from django.http import HttpResponse, JsonResponse

from core.db_instrumentation import slow_query_wrapper

from .middleware import SLOW_QUERY_HOOK_HEADER  # the toggle's header (no cachalot needed to import it)

MAX_BYTES = 1_000_000


@lru_cache(maxsize=16)
def _body(size: int) -> bytes:
    filler = b'{"data":"' + b"x" * max(0, size - 11) + b'"}'
    return filler[:size]


def floor(request):
    """``?round_trip=1``: first one round trip to Redis on the fast path's own
    connection, with a script that only reads the clock (noop.lua). That is the least a
    cache hit can cost above the floor while every hit is validated against the
    counters in Redis (no stale read after a write): the bench reports it as the
    bound of the hit ÷ floor figure."""
    try:
        size = min(max(int(request.GET.get("bytes", "4096")), 2), MAX_BYTES)
    except ValueError:
        size = 4096
    if request.GET.get("round_trip") == "1":
        from core.cache.backends import backend

        round_trip = getattr(backend(), "bare_round_trip", None)  # Redis only (the bench's cache)
        if round_trip is not None:
            round_trip()
    return HttpResponse(_body(size), content_type="application/json")


def slow_query_hook(request):
    """Whether the slow-query hook (core/db_instrumentation.py) is on the database
    connection of the thread serving this request, and SLOW_QUERY_MS. Read inside
    the request, so it honors ``X-Bench-Slow-Query-Hook`` (bench/middleware.py): the
    bench checks on its two servers (hook on, hook off) and for the toggle on one
    server (off removes the wrapper, on keeps it) instead of trusting either."""
    connection.ensure_connection()  # the hook is installed when a connection is made
    return JsonResponse({
        "slow_query_ms": getattr(settings, "SLOW_QUERY_MS", None),
        "installed": slow_query_wrapper in connection.execute_wrappers,
        "asked": request.headers.get(SLOW_QUERY_HOOK_HEADER),
    })
