"""With DEBUG=1 the Debug Toolbar shows on the browsable API and the admin
(docs/API.md "Profiling"). The toolbar is installed when the settings load, so this
starts the real development server with DEBUG=1 on a free port and reads the
HTML it serves; the test settings (DEBUG_TOOLBAR=0) are not used there."""
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 8
# Local requests only: never through an HTTP proxy from the environment.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, accept: str = "text/html") -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Accept": accept})
    try:
        with OPENER.open(request, timeout=3) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture
def dev_server(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG_TOOLBAR", "REDIS_URL", "PERF_HEADERS"}}
    env.update(
        DEBUG="1",
        DJANGO_SETTINGS_MODULE="config.settings.base",
        DATABASE_URL=f"sqlite:///{tmp_path / 'dev.sqlite3'}",
        SECRET_KEY="",
    )
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload", "--skip-checks"],
        cwd=BASE_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            try:
                if _get(f"{base}/api/v1/health/", accept="application/json")[0] == 200:
                    break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the dev server did not start: {server.stderr.read().decode()[-2000:]}")
            time.sleep(0.1)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_toolbar_on_browsable_api_and_admin_with_debug(dev_server):
    status, html = _get(f"{dev_server}/api/v1/health/?format=api")
    assert status == 200
    assert 'id="djDebug"' in html
    status, html = _get(f"{dev_server}/api/v1/health/")  # Accept: text/html -> browsable API
    assert status == 200
    assert 'id="djDebug"' in html
    status, html = _get(f"{dev_server}/admin/login/")
    assert status == 200
    assert 'id="djDebug"' in html
    # Collapsed until the developer opens it (SHOW_COLLAPSED): it never covers the page's controls.
    assert 'data-default-show="false"' in html
    # JSON stays JSON: the toolbar only decorates HTML pages.
    status, body = _get(f"{dev_server}/api/v1/health/", accept="application/json")
    assert status == 200
    assert "djDebug" not in body and body.startswith("{")
