"""What the response cache counts and times: the per-endpoint hit/miss/bypass
counter and the request's cache status (X-Cache, Server-Timing, access log), and
the milliseconds a request spent on the cache's own work (the bench reads it)."""
from __future__ import annotations

import time

from prometheus_client import Counter

CACHE_REQUESTS = Counter(
    "shiftboard_response_cache_total",
    "Response cache lookups by endpoint and result (hit, miss, bypass).",
    ["view", "result"],
)


def set_status(endpoint: str, request, response, status: str):
    # Server-Timing and X-Cache speak hit|miss (docs/API.md); metrics tell bypass apart.
    request._request.cache_status = "hit" if status == "hit" else "miss"
    request._request.cache_decision = status  # hit | miss | bypass, for the access log (core/logging.py)
    response["X-Cache"] = "HIT" if status == "hit" else "MISS"
    CACHE_REQUESTS.labels(endpoint, status).inc()


class Bookkeeping:
    """Milliseconds this request spent on the cache's own work (the lookup, the
    ids query, the row versions, the store), in ``request.cache_bookkeeping``:
    what a miss costs on top of building the response. The bench reports it
    (bench/middleware.py); nothing else reads it."""

    def __init__(self, request):
        # The fast path's own lookup (a miss it handed over) is already in it.
        self.times = getattr(request._request, "cache_bookkeeping", None) or {}
        request._request.cache_bookkeeping = self.times
        self.start = time.perf_counter()

    def lap(self, step: str) -> None:
        now = time.perf_counter()
        self.times[step] = round(self.times.get(step, 0.0) + (now - self.start) * 1000, 3)
        self.start = now
