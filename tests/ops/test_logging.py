"""Logs that join up (core/logging.py): with the JSON format, every line of a
request, Django's own error lines and on_commit work included, is one JSON object
carrying the request's id."""
import io
import json
import logging
import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.test import Client, override_settings

from core.logging import JsonFormatter, RequestContextFilter

pytestmark = [pytest.mark.urls("tests.ops.urls")]


@pytest.fixture
def json_lines():
    """Every log line (root logger, INFO and up) as JSON, through the same filter
    and formatter LOG_FORMAT=json installs."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestContextFilter())
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)

    def read():
        handler.flush()
        return [json.loads(line) for line in stream.getvalue().splitlines()]

    yield read
    root.removeHandler(handler)
    root.setLevel(old_level)


@pytest.mark.django_db(transaction=True)
def test_every_line_of_a_failing_drf_request_carries_its_id(json_lines):
    with override_settings(ACCESS_LOG=True):
        response = Client(raise_request_exception=False).get("/ops-test/fail/", HTTP_X_REQUEST_ID="req-fail-1")
    assert response.status_code == 500
    lines = json_lines()
    by_message = {line["message"]: line for line in lines}
    # The view's line, the on_commit work's line, the API's error line (with the
    # traceback), Django's own "Internal Server Error" line, the access line.
    assert "view started" in by_message
    assert "on_commit work ran" in by_message
    api_error = next(line for line in lines if line["logger"] == "shiftboard.api")
    assert "RuntimeError: boom" in api_error["exc_info"]
    django_error = next(line for line in lines if line["logger"] == "django.request")
    assert django_error["message"].startswith("Internal Server Error: /ops-test/fail/")
    assert django_error["status"] == 500
    access = next(line for line in lines if line["logger"] == "shiftboard.access")
    assert access["status"] == 500 and access["duration_ms"] > 0 and access["level"] == "WARNING"
    assert len(lines) >= 5
    for line in lines:
        assert line["request_id"] == "req-fail-1", line
        assert line["endpoint"] == "ops-test-fail", line
        assert set(line) >= {"time", "level", "logger", "message", "request_id", "endpoint", "status",
                             "duration_ms", "cache"}
        assert line["time"].endswith("Z")


@pytest.mark.django_db
def test_an_uncaught_exception_outside_drf_logs_the_id_too(json_lines):
    response = Client(raise_request_exception=False).get("/ops-test/fail-plain/", HTTP_X_REQUEST_ID="req-fail-2")
    assert response.status_code == 500
    lines = json_lines()
    assert {line["logger"] for line in lines} >= {"shiftboard.tests.ops", "django.request"}
    assert all(line["request_id"] == "req-fail-2" for line in lines), lines
    error = next(line for line in lines if line["logger"] == "django.request")
    assert "RuntimeError: plain boom" in error["exc_info"]


@pytest.mark.django_db
def test_client_errors_from_the_api_carry_the_id(json_lines):
    """DRF answers a 400/404 itself; Django logs it after the middleware returned."""
    client = Client()
    bad = client.post("/api/v1/auth/login/", data="{}", content_type="application/json",
                      HTTP_X_REQUEST_ID="req-400")
    missing = client.get("/api/v1/jobs/999999999/", HTTP_X_REQUEST_ID="req-404")
    assert bad.status_code == 400 and missing.status_code == 404
    lines = [line for line in json_lines() if line["logger"] == "django.request"]
    assert {(line["request_id"], line["status"]) for line in lines} == {("req-400", 400), ("req-404", 404)}
    assert {(line["request_id"], line["endpoint"]) for line in lines} == {("req-400", "auth-login"),
                                                                         ("req-404", "job-detail")}


@pytest.mark.django_db
def test_access_line_names_the_cache_decision(json_lines):
    with override_settings(ACCESS_LOG=True):
        client = Client()
        first = client.get("/api/v1/jobs/", HTTP_X_REQUEST_ID="req-a")
        second = client.get("/api/v1/jobs/", HTTP_X_REQUEST_ID="req-b")
    assert first["X-Cache"] == "MISS" and second["X-Cache"] == "HIT"
    access = {line["request_id"]: line for line in json_lines() if line["logger"] == "shiftboard.access"}
    assert access["req-a"]["cache"] == "miss" and access["req-b"]["cache"] == "hit"
    assert access["req-a"]["endpoint"] == access["req-b"]["endpoint"] == "job-list"
    assert access["req-a"]["status"] == 200 and access["req-a"]["path"] == "/api/v1/jobs/"


def test_log_format_json_writes_only_json_lines():
    """The settings with LOG_FORMAT=json, in a fresh process: a warning outside any
    request and a 404 request, every stderr line a JSON object."""
    script = (
        "import logging; from django.test import Client;"
        "logging.getLogger('x').warning('outside');"
        "r = Client().get('/api/v1/no-such-thing/', HTTP_X_REQUEST_ID='req-sub');"
        "print(r.status_code)"
    )
    env = {**os.environ, "LOG_FORMAT": "json", "DJANGO_SETTINGS_MODULE": "config.settings.test",
           "ALLOWED_HOSTS": "testserver"}
    result = subprocess.run([sys.executable, "manage.py", "shell", "-c", script], cwd=settings.BASE_DIR,
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip().splitlines()[-1] == "404", result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    assert [line["message"] for line in lines][0] == "outside"
    assert lines[0]["request_id"] is None
    # (py.warnings: Python warnings as JSON too, e.g. WhiteNoise's at middleware set-up.)
    request_lines = [line for line in lines[1:] if line["logger"] != "py.warnings"]
    assert request_lines and all(line["request_id"] == "req-sub" for line in request_lines)
    assert any(line["logger"] == "shiftboard.access" and line["status"] == 404 for line in request_lines)


@pytest.mark.django_db
def test_access_line_says_bypass_when_the_cache_is_failing(json_lines, monkeypatch):
    """X-Cache says MISS for a bypass; the access line tells them apart."""
    from core.cache import health as cache_health

    monkeypatch.setattr(cache_health, "failing", True)  # as after a Redis error
    with override_settings(ACCESS_LOG=True):
        response = Client().get("/api/v1/jobs/", HTTP_X_REQUEST_ID="req-bypass")
    assert response.status_code == 200 and response["X-Cache"] == "MISS"
    access = [line for line in json_lines() if line["logger"] == "shiftboard.access"]
    assert [(line["request_id"], line["cache"]) for line in access] == [("req-bypass", "bypass")]


def test_gunicorn_access_line_fields_and_id_without_a_request():
    """gunicorn's access line (config/gunicorn.py with --access-logfile) as fields;
    where the app never saw the request, the id is the response's X-Request-ID,
    else a valid one the client sent, else none."""
    from core.logging import GunicornAccessFilter

    def render(atoms):
        record = logging.LogRecord("gunicorn.access", logging.INFO, __file__, 1, "%(s)s %(U)s", (atoms,), None)
        assert RequestContextFilter().filter(record) and GunicornAccessFilter().filter(record)
        return json.loads(JsonFormatter().format(record))

    atoms = {"s": "404", "m": "GET", "U": "/x/", "D": 1500, "{x-request-id}o": "from-response",
             "{x-request-id}i": "from-client"}
    line = render(atoms)
    assert line["message"] == "404 /x/"
    assert (line["request_id"], line["status"], line["method"], line["path"], line["duration_ms"]) == (
        "from-response", 404, "GET", "/x/", 1.5)
    assert render({**atoms, "{x-request-id}o": None})["request_id"] == "from-client"
    assert render({**atoms, "{x-request-id}o": None, "{x-request-id}i": "bad id\n"})["request_id"] is None
