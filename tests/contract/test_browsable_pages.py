"""The HTML side is whole: every page of the browsable API answers without a 5xx
for every role (anonymous, client, worker, staff), detail pages with write forms
included, and OPTIONS on every endpoint answers without a 5xx.

The browsable API exists only with DEBUG=1 (its renderer is chosen when the
settings load), so this starts the real development server with DEBUG=1 on a free
port over a seeded SQLite database, as tests/core/test_debug_toolbar.py does."""
import json
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.cache import servers

BASE_DIR = Path(__file__).resolve().parents[2]
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
STARTUP_SECONDS = 15


def _request(url, method="GET", accept="text/html", token=None):
    headers = {"Accept": accept}
    if token:
        headers["Authorization"] = f"Token {token}"
    request = urllib.request.Request(url, method=method, headers=headers)
    try:
        with OPENER.open(request, timeout=20) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browsable")
    env = servers.dev_env(tmp / "dev.sqlite3")
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput", "-v0"], cwd=BASE_DIR, env=env, check=True, timeout=300)
    seeded = subprocess.run(
        [*manage, "seed", "--jobs", "20"], cwd=BASE_DIR, env=env, check=True, timeout=300,
        capture_output=True, text=True,
    )
    tokens = dict(re.findall(r"^\s*(admin|client|worker)\s+\S+\s+token (\w+)", seeded.stdout, re.M))
    assert set(tokens) == {"admin", "client", "worker"}, seeded.stdout
    with servers.dev_server(env, startup_seconds=STARTUP_SECONDS) as base:
        yield base, tokens


def _json(base, path, token):
    status, body = _request(f"{base}{path}", accept="application/json", token=token)
    assert status == 200, (path, body[:300])
    return json.loads(body)["data"]


def _urls(base, tokens):
    """Every path of the schema, with ids the demo client owns or takes part in."""
    status, body = _request(f"{base}/api/schema/?format=json", accept="application/json")
    assert status == 200
    paths = list(json.loads(body)["paths"])
    client = tokens["client"]
    me = _json(base, "/api/v1/users/me/", client)
    ids = {
        "/jobs/": _json(base, f"/api/v1/jobs/?client={me['id']}", client)[0]["id"],
        "/applications/": _json(base, "/api/v1/applications/", client)[0]["id"],
        "/payments/": _json(base, "/api/v1/payments/", client)[0]["id"],
        "/users/": me["id"],
    }
    urls = []
    for path in paths:
        if "{id}" in path:
            prefix = next(p for p in ids if path.startswith(f"/api/v1{p}"))
            path = path.replace("{id}", str(ids[prefix]))
        urls.append(path)
    assert len(urls) >= 30
    return urls


ROLES = ["anonymous", "client", "worker", "admin"]


def test_every_browsable_page_and_options_answer_without_5xx_for_every_role(dev_server):
    base, tokens = dev_server
    urls = _urls(base, tokens)
    failures, pages = [], 0
    for role in ROLES:
        token = tokens.get(role)
        for url in urls:
            status, html = _request(f"{base}{url}", token=token)
            if status >= 500:
                failures.append((role, "GET html", url, status, html[:200]))
            elif url.startswith("/api/v1/"):
                # A page of the browsable API, errors (401, 404, 405 ...) included.
                assert "<html" in html.lower(), (role, url, status)
                pages += status == 200
            status, body = _request(f"{base}{url}", method="OPTIONS", accept="application/json", token=token)
            if status >= 500:
                failures.append((role, "OPTIONS", url, status, body[:200]))
    assert failures == []
    assert pages >= 50  # 200s: public pages for everyone, private ones for the signed-in (57 seen)


def test_detail_pages_show_write_forms_to_the_owner(dev_server):
    base, tokens = dev_server
    client = tokens["client"]
    me = _json(base, "/api/v1/users/me/", client)
    job = _json(base, f"/api/v1/jobs/?client={me['id']}&status=open", client)[0]
    status, html = _request(f"{base}/api/v1/jobs/{job['id']}/", token=client)
    assert status == 200
    assert "PATCH" in html and "DELETE" in html  # the raw-data form and the delete button
    status, html = _request(f"{base}/api/v1/users/me/", token=client)
    assert status == 200 and "PATCH" in html
