"""Request id and Server-Timing middleware, and the log filter that stamps every
log line of a request with its id."""
import contextvars
import logging
import re
import time
import uuid

from django.conf import settings
from django.db import connections

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def current_request_id() -> str:
    return request_id_var.get()


class RequestIDLogFilter(logging.Filter):
    """Adds ``record.request_id`` so the log format can print it."""

    def filter(self, record):
        record.request_id = request_id_var.get()
        return True


class RequestIDMiddleware:
    """Takes a valid ``X-Request-ID`` from the client or makes one (uuid4 hex), and
    sends it back on the response."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        rid = incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = rid
        token = request_id_var.set(rid)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = rid
        return response


class _QueryCounter:
    """A database execute wrapper that counts queries and their time."""

    def __init__(self):
        self.count = 0
        self.duration = 0.0

    def __call__(self, execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.duration += time.perf_counter() - start
            self.count += 1


class ServerTimingMiddleware:
    """``Server-Timing: db;dur=…;desc="N queries", cache;desc=hit|miss, app;dur=…``
    when PERF_HEADERS is on. The count comes from an execute wrapper on every
    connection, so it is the same number the Debug Toolbar's SQL panel shows."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.enabled = settings.PERF_HEADERS

    def __call__(self, request):
        if not self.enabled:
            return self.get_response(request)
        counter = _QueryCounter()
        start = time.perf_counter()
        wrappers = [conn.execute_wrapper(counter) for conn in connections.all()]
        for w in wrappers:
            w.__enter__()
        try:
            response = self.get_response(request)
            if hasattr(response, "render") and not getattr(response, "is_rendered", True):
                response.render()
        finally:
            for w in reversed(wrappers):
                w.__exit__(None, None, None)
        total_ms = (time.perf_counter() - start) * 1000
        parts = [f'db;dur={counter.duration * 1000:.2f};desc="{counter.count} queries"']
        # "hit" only when the response cache served it; anything built by a view
        # (uncached endpoints and writes included) is a "miss", so the header
        # always has docs/API.md's three parts.
        cache_status = "hit" if getattr(request, "cache_status", None) == "hit" else "miss"
        parts.append(f'cache;desc="{cache_status}"')
        parts.append(f"app;dur={total_ms:.2f}")
        response["Server-Timing"] = ", ".join(parts)
        request.query_count = counter.count
        return response


def show_toolbar(request) -> bool:
    """The Debug Toolbar on HTML pages (browsable API, admin, docs) in DEBUG only."""
    from django.conf import settings as s

    return bool(s.DEBUG) and request.META.get("REMOTE_ADDR") in getattr(s, "INTERNAL_IPS", [])
