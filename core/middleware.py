"""Request id and Server-Timing middleware, and the log filter that stamps every
log line of a request with its id (``core.logging.RequestContextFilter`` adds the
endpoint, status, duration and cache decision, and the JSON format)."""
import contextlib
import contextvars
import logging
import re
import time
import uuid

from django.conf import settings
from django.db import connections

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
# The request being served (the log filter and the slow-query hook read its
# endpoint); None outside a request.
request_var: contextvars.ContextVar = contextvars.ContextVar("request", default=None)
# Set by the WSGI server's worker around each request it handles (config/workers.py):
# a dict that RequestIDMiddleware fills with the request. It outlives the
# middleware, so what is logged while the server sends the body or after the
# application raised past WSGI (gunicorn's "Error handling request", its access
# line, the app's own lines inside a streamed body) still finds the request.
server_request_var: contextvars.ContextVar[dict | None] = contextvars.ContextVar("server_request", default=None)
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
access_logger = logging.getLogger("shiftboard.access")


def current_request_id() -> str:
    return request_id_var.get()


def current_request():
    return request_var.get()


def server_request():
    """The request the server is handling in this thread (``server_request_var``),
    also after the middleware returned; None outside one."""
    scope = server_request_var.get()
    return scope.get("request") if scope is not None else None


@contextlib.contextmanager
def server_request_scope():
    """For a WSGI server's worker: one request's scope (see ``server_request_var``)."""
    token = server_request_var.set({})
    try:
        yield
    finally:
        server_request_var.reset(token)


class RequestIDLogFilter(logging.Filter):
    """Adds ``record.request_id`` so the log format can print it (also for
    ``django.request`` lines written after the middleware returned, from the
    request they carry)."""

    def filter(self, record):
        rid = request_id_var.get()
        if rid == "-":
            rid = getattr(getattr(record, "request", None), "request_id", "-")
        record.request_id = rid
        return True


class RequestIDMiddleware:
    """Takes a valid ``X-Request-ID`` from the client or makes one (uuid4 hex), and
    sends it back on the response. While the request runs, the id and the request
    are in context variables (every log line of the request, ``on_commit`` work
    included, carries them). With ACCESS_LOG on, one ``shiftboard.access`` line per
    request: method, path, endpoint, status, duration and cache decision."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.access_log = getattr(settings, "ACCESS_LOG", False)

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        rid = incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = rid
        scope = server_request_var.get()
        if scope is not None:
            scope["request"] = request
        token = request_id_var.set(rid)
        request_token = request_var.set(request)
        start = time.perf_counter()
        try:
            response = self.get_response(request)
            if self.access_log and not getattr(request, "is_probe", False):
                self._log(request, response, start)
        finally:
            request_var.reset(request_token)
            request_id_var.reset(token)
        response["X-Request-ID"] = rid
        return response

    @staticmethod
    def _log(request, response, start):
        duration_ms = round((time.perf_counter() - start) * 1000, 2)
        status = response.status_code
        access_logger.log(
            logging.WARNING if status >= 500 else logging.INFO,
            "%s %s %s %.2f ms",
            request.method,
            request.path,
            status,
            duration_ms,
            extra={
                "status": status,
                "duration_ms": duration_ms,
                "method": request.method,
                "path": request.path,
                # hit | miss | bypass as the response cache decided (bypass is not
                # in X-Cache, which says MISS for it); None: not a cached endpoint.
                "cache": getattr(request, "cache_decision", None) or response.get("X-Cache", "").lower() or None,
            },
        )


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


class AllowedHostsMiddleware:
    """Validates the Host header against ALLOWED_HOSTS for every request, first.

    Django checks the host only when something calls ``request.get_host()``
    (CommonMiddleware, CSRF, redirects). The response cache's fast path
    (``core.cache.AnonymousHitMiddleware``) answers before any of them, so without
    this a request for any Host got a cached 200. Placed before every middleware
    that can answer; a bad host is the 400 of ``handler400``."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.get_host()  # raises DisallowedHost (a SuspiciousOperation -> 400)
        return self.get_response(request)


_VARY = ("Accept", "Authorization", "Cookie")


def _carries_credentials(request) -> bool:
    return "HTTP_AUTHORIZATION" in request.META or settings.SESSION_COOKIE_NAME in request.COOKIES


class HTTPCachePolicyMiddleware:
    """``Cache-Control`` and ``Vary`` for shared HTTP caches (proxies, CDNs) and
    browsers, on every response that does not set its own (the admin's and
    /metrics' ``never_cache``, WhiteNoise's static files keep theirs).

    - Public: a GET/HEAD 200 (or its 304: a revalidation must not change what
      a cache may do with the body it keeps) to a caller sending no credentials
      (no ``Authorization`` header, no session cookie) that sets no cookie. Such
      an answer is the same for every anonymous caller, so a shared cache may
      keep it: ``public, no-cache`` - stored, but revalidated before each reuse,
      so a write is never followed by a stale read from a proxy either (the
      response cache's ETag makes the revalidation a 304 without a body).
    - Private: everything else (anything a signed-in caller gets, errors,
      writes): ``private, no-store``. no-store rather than ``private, no-cache``:
      these bodies carry personal data (payments, e-mail, tokens), which must not
      be written to a shared or on-disk browser cache; a client that wants to
      revalidate a private resource can still keep its ETag in memory and send
      ``If-None-Match`` itself.
    - ``Vary: Accept, Authorization, Cookie`` on all of them: a cache keyed on the
      URL alone must never hand a signed-in caller's (or another format's)
      response to someone else.
    Placed outside the response cache's fast path, so both paths get the same."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        vary = [v.strip() for v in response.get("Vary", "").split(",") if v.strip()]
        seen = {v.lower() for v in vary}
        response["Vary"] = ", ".join(vary + [v for v in _VARY if v.lower() not in seen])
        if response.has_header("Cache-Control"):
            return response
        public = (
            request.method in ("GET", "HEAD")
            and response.status_code in (200, 304)
            and not _carries_credentials(request)
            and not response.cookies
        )
        response["Cache-Control"] = "public, no-cache" if public else "private, no-store"
        return response
