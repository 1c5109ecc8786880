"""gunicorn's own lines with LOG_FORMAT=json (config/gunicorn.py, config/workers.py,
core/logging.py): started as ``make serve`` starts it, every line gunicorn and
Django write for a request is a JSON object carrying that request's id, also the
lines written after the middleware returned: a streamed body failing half-way
(gunicorn: "Error handling request", the connection cut) or before its first
chunk (gunicorn answers 500 itself), and gunicorn's access line when asked for."""
import http.client
import json
import os
import re
import socket
import subprocess
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from tests.cache.servers import free_port, gunicorn_command, stop_process

ROOT = Path(settings.BASE_DIR)
STARTUP = ("Starting gunicorn", "Listening at", "Using worker", "Booting worker")


def _database_url(tmp_path) -> str:
    db = connection.settings_dict
    if connection.vendor != "postgresql":
        return f"sqlite:///{tmp_path / 'db.sqlite3'}"  # the test URLs need no table
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class Server:
    """``gunicorn -c config/gunicorn.py config.wsgi`` as make serve runs it
    (production settings, DATABASE_POOL=1, multiprocess metrics), one worker, with
    LOG_FORMAT=json and the test URLs; stderr to a file."""

    def __init__(self, tmp_path, extra_args=()):
        self.port = free_port()
        self.log_path = tmp_path / "stderr.log"
        metrics = tmp_path / "prometheus"
        metrics.mkdir()
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.base",
            "DEBUG": "0", "DEBUG_TOOLBAR": "0", "SECURE_SSL_REDIRECT": "0",
            "SECRET_KEY": "gunicorn-log-test-secret-key-0123456789-abcdefghijkl",
            "ALLOWED_HOSTS": "127.0.0.1",
            "LOG_FORMAT": "json", "LOG_LEVEL": "INFO",
            "ROOT_URLCONF": "tests.ops.urls",
            "DATABASE_URL": _database_url(tmp_path), "DATABASE_POOL": "1",
            "PROMETHEUS_MULTIPROC_DIR": str(metrics),
            # One worker: once it answers it has booted, so no boot line of a second
            # worker lands among a request's lines.
            "WEB_CONCURRENCY": "1",
            "CACHE_KEY_PREFIX": f"sbglog{os.getpid()}",
            "REDIS_SENTINELS": "", "REDIS_CLUSTER_NODES": "",
        }
        self.stderr = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            gunicorn_command("--bind", f"127.0.0.1:{self.port}", *extra_args),
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=self.stderr,
        )
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not start: {self.log_path.read_text()[-3000:]}")
            try:
                if self.request("/livez", None)[0] == 200:  # probes log nothing
                    break
            except OSError:
                time.sleep(0.1)

    def raw_lines(self) -> list[str]:
        return [line for line in self.log_path.read_text().splitlines() if line.strip()]

    def settled_lines(self) -> list[str]:
        """The log once it has stopped growing (gunicorn writes its access line after
        the client may already have the response)."""
        count, stable_since = -1, time.monotonic()
        while time.monotonic() - stable_since < 0.3:
            lines = self.raw_lines()
            if len(lines) != count:
                count, stable_since = len(lines), time.monotonic()
            time.sleep(0.05)
        return lines

    def request(self, path, request_id):
        """(status, X-Request-ID of the response, whether the body arrived whole)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        try:
            conn.request("GET", path, headers={"Host": "127.0.0.1", **({"X-Request-ID": request_id}
                                                                     if request_id else {})})
            response = conn.getresponse()
            try:
                response.read()
                whole = True
            except http.client.IncompleteRead:
                whole = False
            return response.status, response.getheader("X-Request-ID"), whole
        finally:
            conn.close()

    def logged_for(self, path, request_id=None):
        """Make one request; the lines the server wrote meanwhile, parsed."""
        before = len(self.settled_lines())
        status, header_id, whole = self.request(path, request_id)
        lines = [json.loads(line) for line in self.settled_lines()[before:]]
        return status, header_id, whole, lines

    def stop(self):
        stop_process(self.proc, timeout=15)
        self.stderr.close()


def messages(lines):
    return [(line["logger"], line["message"]) for line in lines]


def assert_all_carry(lines, request_id):
    assert lines
    for line in lines:
        assert line["request_id"] == request_id, line
        assert set(line) >= {"time", "level", "logger", "message", "request_id", "endpoint", "status"}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("access_log", [False, True], ids=["as-make-serve", "with-access-logfile"])
def test_every_line_gunicorn_and_django_write_for_a_request_is_json_with_its_id(tmp_path, access_log):
    server = Server(tmp_path, ["--access-logfile", "-"] if access_log else [])
    try:
        gunicorn_access = 1 if access_log else 0

        # A normal request.
        status, header_id, whole, lines = server.logged_for("/ops-test/fast/", "req-ok-1")
        assert (status, header_id, whole) == (200, "req-ok-1", True)
        assert_all_carry(lines, "req-ok-1")
        assert [line["logger"] for line in lines].count("shiftboard.access") == 1
        assert [line["logger"] for line in lines].count("gunicorn.access") == gunicorn_access
        if access_log:
            access = next(line for line in lines if line["logger"] == "gunicorn.access")
            assert (access["status"], access["method"], access["path"]) == (200, "GET", "/ops-test/fast/")
            assert access["duration_ms"] >= 0 and access["endpoint"] == "ops-test-fast"

        # A view that raises: Django answers 500 (the view's, the API's, Django's and
        # the access lines).
        status, header_id, whole, lines = server.logged_for("/ops-test/fail/", "req-fail-1")
        assert status == 500 and header_id == "req-fail-1"
        assert_all_carry(lines, "req-fail-1")
        assert {"shiftboard.tests.ops", "shiftboard.api", "django.request", "shiftboard.access"} <= {
            line["logger"] for line in lines}
        assert [line["logger"] for line in lines].count("gunicorn.access") == gunicorn_access

        # The body fails half-way, after the middleware returned: gunicorn logs the
        # error and cuts the connection.
        status, header_id, whole, lines = server.logged_for("/ops-test/stream-fail/", "req-stream-1")
        assert (status, header_id, whole) == (200, "req-stream-1", False)
        assert_all_carry(lines, "req-stream-1")
        assert ("shiftboard.tests.ops", "stream failing") in messages(lines)  # the app, inside the body
        error = next(line for line in lines if line["logger"] == "gunicorn.error")
        assert error["message"] == "Error handling request" and error["level"] == "ERROR"
        assert "RuntimeError: stream boom" in error["exc_info"]
        assert error["endpoint"] == "ops-test-stream-fail"

        # The body fails before its first chunk: gunicorn answers 500 itself (no
        # X-Request-ID on that response), and its line carries the id the app gave
        # the request (none sent by this client).
        status, header_id, whole, lines = server.logged_for("/ops-test/stream-fail-early/")
        assert status == 500 and header_id is None
        generated = lines[0]["request_id"]
        assert re.fullmatch(r"[0-9a-f]{32}", generated)
        assert_all_carry(lines, generated)
        error = next(line for line in lines if line["logger"] == "gunicorn.error")
        assert error["message"] == "Error handling request GET /ops-test/stream-fail-early/"
        assert "RuntimeError: early stream boom" in error["exc_info"]
        if access_log:  # gunicorn's two access lines: the app's 200 it could not send, its own 500
            assert [line["status"] for line in lines if line["logger"] == "gunicorn.access"] == [200, 500]

        # Not a request at all (unparsable): gunicorn's warning is JSON, with no id.
        before = len(server.settled_lines())
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
            raw.sendall(b"NOT HTTP AT ALL\r\n\r\n")
            raw.recv(1024)
        invalid = [json.loads(line) for line in server.settled_lines()[before:]]
        assert [(line["logger"], line["request_id"]) for line in invalid
                if line["message"].startswith("Invalid request")] == [("gunicorn.error", None)]
    finally:
        server.stop()
    # Every line of the whole run is one JSON object; the only lines without an id
    # are gunicorn's start and stop, Python warnings at start, and the unparsable request.
    everything = [json.loads(line) for line in server.raw_lines()]
    without_id = {line["message"].split(" ")[0] for line in everything if line["request_id"] is None
                  and line["logger"] != "py.warnings" and not line["message"].startswith(STARTUP)}
    assert without_id <= {"Invalid", "Handling", "Worker", "Shutting"}, without_id
