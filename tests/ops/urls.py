"""Test-only URLs: the real ones plus views that force a slow query or fail after
logging (``@pytest.mark.urls("tests.ops.urls")``)."""
import logging
import time

from django.db import connection, transaction
from django.http import JsonResponse, StreamingHttpResponse
from django.urls import path
from rest_framework.views import APIView

from config.urls import handler400, handler404, handler500  # noqa: F401
from config.urls import urlpatterns as real_urlpatterns

log = logging.getLogger("shiftboard.tests.ops")

SLEEP_SQL = {
    "postgresql": "SELECT pg_sleep(%s::float / 1000.0), 'inline-secret-literal', 4242",
    "sqlite": "SELECT sb_sleep_ms(%s), 'inline-secret-literal', 4242",
}


def slow_sql(ms: int) -> None:
    """One statement that takes ``ms`` milliseconds in the database (PostgreSQL:
    pg_sleep; SQLite: a sleeping SQL function registered on the connection)."""
    connection.ensure_connection()
    if connection.vendor == "sqlite":
        connection.connection.create_function("sb_sleep_ms", 1, lambda v: time.sleep(int(v) / 1000.0) or 0)
    with connection.cursor() as cursor:
        cursor.execute(SLEEP_SQL[connection.vendor], [ms])
        cursor.fetchall()


def slow_view(request):
    slow_sql(int(request.GET.get("ms", "150")))
    return JsonResponse({"ok": True})


def fast_view(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"ok": True})


class FailingView(APIView):
    """Logs, queues on_commit work that logs, commits, then fails (DRF's path: the
    envelope handler logs the error and answers 500; Django's handler then writes
    its own ``django.request`` line)."""

    authentication_classes = []
    permission_classes = []

    def get(self, request):
        log.info("view started")
        with transaction.atomic():
            transaction.on_commit(lambda: log.warning("on_commit work ran"))
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
        raise RuntimeError("boom")


def failing_plain_view(request):
    log.info("plain view started")
    raise RuntimeError("plain boom")


def failing_stream_view(request):
    """A streamed body that fails after its first chunk: the exception leaves the
    WSGI application while the server iterates the body, after the middleware
    returned (the server has sent the headers: it can only cut the response)."""
    log.info("stream view started")

    def body():
        yield b"first chunk\n"
        log.warning("stream failing")
        raise RuntimeError("stream boom")

    return StreamingHttpResponse(body(), content_type="text/plain")


def failing_early_stream_view(request):
    """A streamed body that fails before its first chunk: the server has sent
    nothing yet and answers 500 itself."""

    def body():
        raise RuntimeError("early stream boom")
        yield b""  # pragma: no cover - makes this a generator

    return StreamingHttpResponse(body(), content_type="text/plain")


urlpatterns = [
    path("ops-test/stream-fail/", failing_stream_view, name="ops-test-stream-fail"),
    path("ops-test/stream-fail-early/", failing_early_stream_view, name="ops-test-stream-fail-early"),
    path("ops-test/slow/", slow_view, name="ops-test-slow"),
    path("ops-test/fast/", fast_view, name="ops-test-fast"),
    path("ops-test/fail/", FailingView.as_view(), name="ops-test-fail"),
    path("ops-test/fail-plain/", failing_plain_view, name="ops-test-fail-plain"),
    *real_urlpatterns,
]
