"""django-cachalot only for the (c) baseline.

Once installed, cachalot patches the ORM for every request. This middleware wraps
every request outside ``/bench/cachalot/`` in ``cachalot_disabled()``, so Shiftboard
and the other baselines run exactly the queries they would run without it (the
bench checks that Shiftboard's query counts are the same as under plain
``config.settings.base``). Writes still invalidate cachalot's tables in every
request, as they must for (c) to stay correct."""
from cachalot.api import LOCAL_STORAGE, cachalot_disabled

CACHALOT_PREFIX = "/bench/cachalot/"


class CachalotOnlyUnderPrefixMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith(CACHALOT_PREFIX):
            return self.get_response(request)
        try:
            with cachalot_disabled():
                return self.get_response(request)
        finally:
            # cachalot_disabled() restores the flag only when the block exits
            # normally; a sync worker reuses its thread, so restore it here too.
            LOCAL_STORAGE.cachalot_enabled = True


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
