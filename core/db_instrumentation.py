"""Slow queries, named: every SQL statement that takes ``SLOW_QUERY_MS`` or longer
(default 100; 0 turns the hook off) is logged once, on the ``shiftboard.db.slow``
logger at WARNING, with the request id, the endpoint, the duration and the SQL
with its parameters elided, and counted in ``shiftboard_db_slow_queries_total``
by endpoint.

How: one execute wrapper (``connection.execute_wrappers``) on every database
connection, installed when the connection is made (the ``connection_created``
signal, so connections of any thread, of the pool, of management commands are
all covered). It is put *first* in the list: Django's ``execute_wrapper()``
context manager removes the *last* wrapper when it exits, so a wrapper entered
before the connection was opened (the Server-Timing counter) still removes its
own. Per statement it costs two ``perf_counter()`` calls and a comparison; the
logging, the SQL clean-up and the counter only happen for a slow one.

What is logged as the SQL: the statement Django sent with its placeholders
(``%s``), so values bound as parameters never appear; literals written into the
SQL text itself (quoted strings, numbers) are replaced by ``?`` too, long
``IN (%s, %s, ...)`` lists are shortened, and the text is cut at 2,000
characters. The endpoint is the URL pattern name of the request being served
(the ``view`` label of django-prometheus's request metrics), ``<no request>``
outside a request (management commands, background threads).
"""
import logging
import re
import time

from django.conf import settings
from django.core.signals import setting_changed
from django.db.backends.signals import connection_created
from django.dispatch import receiver
from prometheus_client import Counter

from .middleware import current_request

logger = logging.getLogger("shiftboard.db.slow")

SLOW_QUERIES = Counter(
    "shiftboard_db_slow_queries_total",
    "SQL statements that took SLOW_QUERY_MS or longer, by endpoint (URL pattern name).",
    ["endpoint"],
)

NO_REQUEST = "<no request>"
UNRESOLVED = "<unresolved>"
MAX_SQL_CHARS = 2000

_STRING_LITERAL = re.compile(r"'(?:[^']|'')*'")
_NUMBER_LITERAL = re.compile(r"(?<![\w.$])-?\d+(?:\.\d+)?(?![\w.])")
_PLACEHOLDER_RUN = re.compile(r"%s(?:\s*,\s*%s){3,}")
_WHITESPACE = re.compile(r"\s+")


def _threshold_seconds() -> float:
    ms = getattr(settings, "SLOW_QUERY_MS", 100)
    return ms / 1000.0 if ms and ms > 0 else 0.0


_threshold = None  # seconds; read from settings when the first connection is made


def elide_sql(sql) -> str:
    """The statement's text without any value in it (module docstring)."""
    text = sql if isinstance(sql, str) else str(sql)
    text = _STRING_LITERAL.sub("?", text)
    text = _NUMBER_LITERAL.sub("?", text)
    text = _PLACEHOLDER_RUN.sub("%s, ...", text)
    text = _WHITESPACE.sub(" ", text).strip()
    if len(text) > MAX_SQL_CHARS:
        text = text[:MAX_SQL_CHARS] + " ..."
    return text


def current_endpoint() -> str:
    request = current_request()
    if request is None:
        return NO_REQUEST
    match = getattr(request, "resolver_match", None)
    return (match.view_name or UNRESOLVED) if match is not None else UNRESOLVED


def report_slow_query(sql, seconds: float, alias: str, many: bool, failed: bool) -> None:
    endpoint = current_endpoint()
    SLOW_QUERIES.labels(endpoint).inc()
    duration_ms = round(seconds * 1000, 2)
    clean = elide_sql(sql)
    logger.warning(
        "slow query: %.1f ms on %s (db %s%s%s): %s",
        duration_ms,
        endpoint,
        alias,
        ", executemany" if many else "",
        ", failed" if failed else "",
        clean,
        extra={"endpoint": endpoint, "duration_ms": duration_ms, "sql": clean, "db": alias},
    )


def slow_query_wrapper(execute, sql, params, many, context):
    """The execute wrapper (see the module docstring)."""
    start = time.perf_counter()
    failed = True
    try:
        result = execute(sql, params, many, context)
        failed = False
        return result
    finally:
        elapsed = time.perf_counter() - start
        if elapsed >= _threshold:
            try:
                report_slow_query(sql, elapsed, context["connection"].alias, many, failed)
            except Exception:  # noqa: BLE001 - reporting must never fail the query
                pass


def install(connection) -> bool:
    """Put the wrapper on ``connection`` (once; first in the list). False when
    SLOW_QUERY_MS is 0 (off)."""
    global _threshold
    if _threshold is None:
        _threshold = _threshold_seconds()
    if not _threshold:
        return False
    wrappers = connection.execute_wrappers
    if slow_query_wrapper not in wrappers:
        wrappers.insert(0, slow_query_wrapper)
    return True


@receiver(connection_created, dispatch_uid="core.db_instrumentation.install")
def _on_connection_created(sender, connection, **kwargs):
    install(connection)


@receiver(setting_changed, dispatch_uid="core.db_instrumentation.setting_changed")
def _on_setting_changed(setting, **kwargs):
    global _threshold
    if setting == "SLOW_QUERY_MS":
        _threshold = _threshold_seconds()
        from django.db import connections

        for conn in connections.all(initialized_only=True):
            if _threshold:
                install(conn)
            elif slow_query_wrapper in conn.execute_wrappers:
                conn.execute_wrappers.remove(slow_query_wrapper)
