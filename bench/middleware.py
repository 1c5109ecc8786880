"""The bench's middleware (bench/settings.py only): django-cachalot only for the
(c) baseline, the cache's bookkeeping header, and the slow-query hook switched off
for one request (SlowQueryHookToggleMiddleware).

Once installed, cachalot patches the ORM for every request. This middleware wraps
every request outside ``/bench/cachalot/`` in ``cachalot_disabled()``, so Shiftboard
and the other baselines run exactly the queries they would run without it (the
bench checks that Shiftboard's query counts are the same as under plain
``config.settings.base``). Writes still invalidate cachalot's tables in every
request, as they must for (c) to stay correct.

cachalot (bench/requirements.txt, installed by ``make bench`` only) is imported
when that middleware is built, not with the module: the other two are tested in
the suite, whose environment (``make install``, CI) has no cachalot."""
from django.db import connection

from core.db_instrumentation import slow_query_wrapper

CACHALOT_PREFIX = "/bench/cachalot/"


class CachalotOnlyUnderPrefixMiddleware:
    def __init__(self, get_response):
        from cachalot.api import LOCAL_STORAGE, cachalot_disabled

        self.get_response = get_response
        self.local_storage = LOCAL_STORAGE
        self.cachalot_disabled = cachalot_disabled

    def __call__(self, request):
        if request.path.startswith(CACHALOT_PREFIX):
            return self.get_response(request)
        try:
            with self.cachalot_disabled():
                return self.get_response(request)
        finally:
            # cachalot_disabled() restores the flag only when the block exits
            # normally; a sync worker reuses its thread, so restore it here too.
            self.local_storage.cachalot_enabled = True


class CacheBookkeepingHeaderMiddleware:
    """``X-Cache-Bookkeeping: lookup=0.210,ids=0.800,rows=0.150,store=0.120`` (ms):
    what the response cache spent on its own work in this request (core.cache's
    ``request.cache_bookkeeping``: the lookup, the ids query, the row versions,
    the store), so the bench can show what a miss costs on top of the build.
    Outermost, so the store (done when the response is rendered) is counted."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        spent = getattr(request, "cache_bookkeeping", None)
        if spent:
            response["X-Cache-Bookkeeping"] = ",".join(f"{step}={ms:.3f}" for step, ms in spent.items())
        return response


SLOW_QUERY_HOOK_HEADER = "X-Bench-Slow-Query-Hook"
_SLOW_QUERY_HOOK_META = "HTTP_" + SLOW_QUERY_HOOK_HEADER.upper().replace("-", "_")


class SlowQueryHookToggleMiddleware:
    """``X-Bench-Slow-Query-Hook: off`` or ``on`` on a request: the slow-query hook
    (core/db_instrumentation.py) off or on for that request alone, in the same
    server process, so the bench can compare the two request by request on one
    server (bench/run.py, slow_query_hook_cost) instead of across two processes.

    For either value the middleware does the same: it opens (or health-checks) the
    thread's default connection first, as the first query would, so the hook is
    installed exactly as it is on any connection; then with ``off`` it takes
    ``slow_query_wrapper`` out of ``connection.execute_wrappers`` for the request
    and puts it back first in the list afterwards, even when the request raised.
    The state the request ran with (the wrapper in the list or not, read after the
    response is built) is answered in the same header, so every measured request
    says what it measured. The only work that differs between ``on`` and ``off``
    is that list removal and insertion.

    A request without the header is left alone. Outermost, so the Server-Timing
    counter and everything it times run in the state asked for. Bench settings only
    (bench/settings.py), never config/."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        asked = request.META.get(_SLOW_QUERY_HOOK_META)
        if asked not in ("on", "off"):
            return self.get_response(request)
        # What the first cursor would do (BaseDatabaseWrapper._cursor), done before
        # the wrapper list is read: a connection replaced now would get the hook back.
        connection.close_if_health_check_failed()
        connection.ensure_connection()
        wrappers = connection.execute_wrappers
        removed = asked == "off" and slow_query_wrapper in wrappers
        if removed:
            wrappers.remove(slow_query_wrapper)
        try:
            response = self.get_response(request)
            ran_with = "on" if slow_query_wrapper in connection.execute_wrappers else "off"
        finally:
            if removed and slow_query_wrapper not in connection.execute_wrappers:
                connection.execute_wrappers.insert(0, slow_query_wrapper)
        response[SLOW_QUERY_HOOK_HEADER] = ran_with
        return response
