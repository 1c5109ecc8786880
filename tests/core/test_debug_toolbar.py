"""With DEBUG=1 the Debug Toolbar shows on the browsable API and the admin
(docs/API.md "Profiling"). The toolbar is installed when the settings load, so this
starts the real development server with DEBUG=1 on a free port and reads the
HTML it serves; the test settings (DEBUG_TOOLBAR=0) are not used there."""
import urllib.error
import urllib.request

import pytest

from tests.cache import servers

STARTUP_SECONDS = 8
# Local requests only: never through an HTTP proxy from the environment.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _get(url: str, accept: str = "text/html") -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Accept": accept})
    try:
        with OPENER.open(request, timeout=3) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture
def dev_server(tmp_path):
    with servers.dev_server(servers.dev_env(tmp_path / "dev.sqlite3"), startup_seconds=STARTUP_SECONDS) as base:
        yield base


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
