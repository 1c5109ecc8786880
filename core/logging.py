"""Log lines that join up: every line of a request carries its id and endpoint,
and ``LOG_FORMAT=json`` writes one JSON object per line.

Two pieces, both installed by ``LOGGING`` in the settings:

``RequestContextFilter`` (on the console handler) stamps every record with
``request_id``, ``endpoint``, ``status``, ``duration_ms`` and ``cache``. It reads
the current request from ``core.middleware`` (a context variable set by
``RequestIDMiddleware`` for the whole request, so lines from views, services and
``transaction.on_commit`` work carry it). Django's own ``django.request`` lines
("Internal Server Error: ...", "Bad Request: ...") are written by the handler
*after* the middleware chain has returned, when the context variable is already
reset; they pass the request as ``record.request``, and the filter reads the id
from there instead. Lines written later still, by gunicorn ("Error handling
request", its access line) or inside a streamed body, find the request in the
scope the worker keeps around each request (``core.middleware.server_request_var``,
config/workers.py). ``GunicornAccessFilter`` turns gunicorn's access line into
fields. Fields a record brings itself (the access line passes
``status``, ``duration_ms``, ``cache``) are kept.

``JsonFormatter`` renders a record as one line of JSON: ``time`` (UTC, ISO 8601,
milliseconds), ``level``, ``logger``, ``message``, ``request_id``, ``endpoint``,
``status``, ``duration_ms``, ``cache`` (null when not known for that line), any
of the slow-query fields (``sql``, ``db``) and, for errors, ``exc_info`` (the
traceback as one string, newlines escaped by JSON, so still one line).

The endpoint is the URL pattern's name (``job-list``, ``user-detail``): the same
``view`` label django-prometheus puts on the request metrics, so a log line and a
dashboard panel name an endpoint the same way.
"""
import datetime
import json
import logging

from .middleware import _VALID_REQUEST_ID, current_request, request_id_var, server_request

# Fields every JSON line has (null when the line does not know them).
CONTEXT_FIELDS = ("request_id", "endpoint", "status", "duration_ms", "cache")
# Fields some lines add (slow queries); written when present.
EXTRA_FIELDS = ("sql", "db", "method", "path")


def endpoint_of(request) -> str | None:
    """The URL pattern name of a resolved request, else None."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return None
    return match.view_name or None


def cache_decision_of(request) -> str | None:
    """hit, miss or bypass as the response cache decided it (None: not a cached
    endpoint, or not decided yet)."""
    return getattr(request, "cache_decision", None) or getattr(request, "cache_status", None)


class RequestContextFilter(logging.Filter):
    """Stamps request id, endpoint, status, duration and cache decision on a record."""

    def filter(self, record):
        request = current_request()
        rid = request_id_var.get()
        if request is None:
            # django.request lines logged after the middleware returned.
            request = getattr(record, "request", None)
            if request is not None and not hasattr(request, "META"):
                request = None  # someone's unrelated "request" extra
            if request is None:
                # Lines of the server (gunicorn) or of a streamed body, written after
                # the middleware returned (core.middleware.server_request_var).
                request = server_request()
            if request is not None and rid == "-":
                rid = getattr(request, "request_id", "-")
        if not hasattr(record, "request_id") or record.request_id in (None, "-"):
            record.request_id = rid
        if getattr(record, "endpoint", None) is None:
            record.endpoint = endpoint_of(request) if request is not None else None
        if getattr(record, "status", None) is None:
            record.status = getattr(record, "status_code", None)
        if not hasattr(record, "duration_ms"):
            record.duration_ms = None
        if getattr(record, "cache", None) is None:
            record.cache = cache_decision_of(request) if request is not None else None
        return True


class GunicornAccessFilter(logging.Filter):
    """gunicorn's access line (when its access log is on) as fields: ``status``,
    ``method``, ``path``, ``duration_ms`` from its atoms; the request id from the
    request (RequestContextFilter, run first), else the response's ``X-Request-ID``,
    else a valid one the client sent (the application never saw the request)."""

    def filter(self, record):
        atoms = record.args if isinstance(record.args, dict) else None
        if record.name != "gunicorn.access" or atoms is None:
            return True
        if getattr(record, "request_id", "-") in (None, "-"):
            for key in ("{x-request-id}o", "{x-request-id}i"):
                value = atoms.get(key) or ""
                if _VALID_REQUEST_ID.match(value):
                    record.request_id = value
                    break
        status = atoms.get("s")
        record.status = int(status) if str(status).isdigit() else getattr(record, "status", None)
        record.method, record.path = atoms.get("m"), atoms.get("U")
        if isinstance(atoms.get("D"), int):
            record.duration_ms = round(atoms["D"] / 1000, 2)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line (module docstring)."""

    def format(self, record):
        out = {
            "time": datetime.datetime.fromtimestamp(record.created, tz=datetime.UTC).isoformat(
                timespec="milliseconds"
            ).replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            out[name] = getattr(record, name, None)
        if out["request_id"] == "-":
            out["request_id"] = None
        for name in EXTRA_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                out[name] = value
        if record.exc_info:
            out["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc_info"] = record.exc_text
        if record.stack_info:
            out["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def logging_config(log_format: str, level: str) -> dict:
    """The ``LOGGING`` dict for ``LOG_FORMAT`` ``plain`` (default) or ``json``."""
    if log_format not in ("plain", "json"):
        raise ValueError(f"LOG_FORMAT must be plain or json, not {log_format!r}")
    formatters = {
        "plain": {"format": "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"},
        "json": {"()": "core.logging.JsonFormatter"},
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_context": {"()": "core.logging.RequestContextFilter"}},
        "formatters": formatters,
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "filters": ["request_context"],
                "formatter": log_format,
            },
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.db.backends": {"level": "INFO"},
            "django.server": {"level": "INFO"},
        },
    }
