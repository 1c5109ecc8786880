"""The Debug Toolbar's "Response cache" panel (core/cache/panel.py): for a miss, a
hit, a row-check failure and a write it shows what the cache layer decided, read
from what the cache layer recorded for the request; it works through the
toolbar's history (the panel is rendered later from the toolbar's store, as a
browser does); the browsable API and the admin answer without a 5xx for every
role with the toolbar on; and without the toolbar nothing extra happens (no
query, no cache call, no recording).

The toolbar is switched on per test with settings overrides (DEBUG, the
middleware, the app, a URLconf with ``__debug__/``), as ``make run`` has it."""
import re

import pytest
from django.db import connection
from django.test import Client, modify_settings, override_settings
from django.test.utils import CaptureQueriesContext

from core.cache import trace
from tests.conftest import USES_REDIS, auth_client
from tests.jobs.factories import JobFactory

pytestmark = pytest.mark.django_db(transaction=True)

TOOLBAR_MIDDLEWARE = "debug_toolbar.middleware.DebugToolbarMiddleware"
PANEL = "ResponseCachePanel"


@pytest.fixture
def toolbar_on(monkeypatch):
    """The toolbar as ``make run`` has it. Adding an app re-runs every app's
    ``ready()``: django-zeal's would patch the ORM a second time and report every
    query twice, so its (already applied) patch is not re-applied meanwhile."""
    import zeal.apps
    from django.conf import settings

    monkeypatch.setattr(zeal.apps, "patch", lambda: None)
    # The browsable API, as DEBUG has it (DRF reads its renderers when it is imported).
    from rest_framework.views import APIView

    from core.envelope import EnvelopeBrowsableAPIRenderer, EnvelopeJSONRenderer

    monkeypatch.setattr(APIView, "renderer_classes", [EnvelopeJSONRenderer, EnvelopeBrowsableAPIRenderer])

    middleware = list(settings.MIDDLEWARE)
    middleware.insert(middleware.index("django.middleware.security.SecurityMiddleware"), TOOLBAR_MIDDLEWARE)
    with (
        modify_settings(INSTALLED_APPS={"append": "debug_toolbar"}),
        override_settings(
            DEBUG=True,
            INTERNAL_IPS=["127.0.0.1"],
            MIDDLEWARE=middleware,
            ROOT_URLCONF="tests.cache.toolbar_urls",
            DEBUG_TOOLBAR_CONFIG={"SHOW_TOOLBAR_CALLBACK": "core.middleware.show_toolbar", "SHOW_COLLAPSED": True},
            DEBUG_TOOLBAR_PANELS=[
                "debug_toolbar.panels.history.HistoryPanel",
                "core.cache.panel.ResponseCachePanel",
            ],
        ),
    ):
        yield


def panel_of_last_request(client):
    """The panel as the toolbar's history renders it: fetched later from the
    toolbar's store through ``__debug__/render_panel/`` (what the browser asks)."""
    from debug_toolbar.store import get_store

    request_id = list(get_store().request_ids())[-1]
    response = client.get("/__debug__/render_panel/", {"request_id": request_id, "panel_id": PANEL})
    assert response.status_code == 200
    stats = get_store().panel(request_id, PANEL)
    return stats, response.json()["content"]


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_miss_then_hit_of_the_job_list(toolbar_on):
    JobFactory.create_batch(2)
    client = Client(REMOTE_ADDR="127.0.0.1")

    first = client.get("/api/v1/jobs/", HTTP_ACCEPT="application/json")
    assert first["X-Cache"] == "MISS"
    miss, html = panel_of_last_request(client)
    assert miss["decision"] == trace.MISS
    assert miss["endpoint"] == "JobViewSet.list"
    assert miss["reason"] == trace.NO_ENTRY
    assert "jobs:set" in miss["coarse"] and "*" in miss["coarse"]
    assert miss["key"].startswith("r:JobViewSet.list:")
    shown = {f"job:{job['id']}" for job in first.json()["data"]}
    assert len(shown) == 2 and shown <= set(miss["rows_recorded"])
    assert miss["stored"] is True
    assert miss["round_trips"], "the lookup's round trips are timed"
    page = text(html)
    assert "MISS" in page and "JobViewSet.list" in page and "jobs:set" in page
    assert "Row scopes recorded in the new entry" in page

    second = client.get("/api/v1/jobs/", HTTP_ACCEPT="application/json")
    assert second["X-Cache"] == "HIT"
    hit, html = panel_of_last_request(client)
    assert hit["decision"] == trace.HIT
    assert hit["key"] == miss["key"] and hit["coarse"] == miss["coarse"]
    # The row scopes the hit validated: stored in the entry, current at lookup, equal.
    assert {scope for scope, _, _ in hit["rows"]} == set(miss["rows_recorded"])
    assert all(stored == now for _, stored, now in hit["rows"])
    assert {scope: str(v) for scope, v in miss["rows_recorded"].items()} == {s: stored for s, stored, _ in hit["rows"]}
    assert hit["path"] == "fast", "an anonymous JSON hit is answered by the fast path"
    if USES_REDIS:
        assert [op for op, _ in hit["round_trips"]] == ["fast_lookup"], "one round trip for a fast hit"
    assert "HIT" in text(html) and "ok" in text(html)


def test_row_check_failure_is_named(toolbar_on):
    job = JobFactory()
    client = Client(REMOTE_ADDR="127.0.0.1")
    client.get("/api/v1/jobs/", HTTP_ACCEPT="application/json")
    client.get("/api/v1/jobs/", HTTP_ACCEPT="application/json")
    assert panel_of_last_request(client)[0]["decision"] == trace.HIT
    # The client's new name retires only entries showing that user (a row scope).
    client_user = job.client
    client_user.first_name = "Renamed"
    client_user.save()

    response = client.get("/api/v1/jobs/", HTTP_ACCEPT="application/json")
    assert response["X-Cache"] == "MISS"
    stats, html = panel_of_last_request(client)
    assert stats["decision"] == trace.MISS
    assert stats["reason"].startswith("row check failed") and f"user:{client_user.pk}" in stats["reason"]
    changed = [row for row in stats["rows"] if row[1] != row[2]]
    assert [row[0] for row in changed] == [f"user:{client_user.pk}"]
    assert "CHANGED" in text(html)


def test_coarse_bump_is_named(toolbar_on):
    JobFactory()
    client = Client(REMOTE_ADDR="127.0.0.1")
    client.get("/api/v1/jobs/?city=Berlin", HTTP_ACCEPT="application/json")
    JobFactory(city="Berlin")  # a new job: the filtered lists' coarse scope moves
    client.get("/api/v1/jobs/?city=Berlin", HTTP_ACCEPT="application/json")
    stats, _ = panel_of_last_request(client)
    assert stats["decision"] == trace.MISS
    assert stats["reason"].startswith("coarse scope bumped:") and " jobs " in stats["reason"].replace(",", " ")


def test_write_shows_the_scopes_bumped_after_commit(toolbar_on, client_user):
    client = Client(REMOTE_ADDR="127.0.0.1")
    job = JobFactory(client=client_user)
    token = auth_client(client_user)._credentials["HTTP_AUTHORIZATION"]
    response = client.patch(
        f"/api/v1/jobs/{job.pk}/", {"title": "New title"}, content_type="application/json",
        HTTP_AUTHORIZATION=token, HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 200, response.content
    stats, html = panel_of_last_request(client)
    assert stats["decision"] is None, "a write is not a cache lookup"
    assert {"jobs", f"job:{job.pk}"} <= set(stats["bumps_sent"])
    assert stats["rolled_back"] == []
    page = text(html)
    assert "Bumped after commit" in page and f"job:{job.pk}" in page


def test_write_that_rolls_back_bumps_nothing(toolbar_on):
    from django.db import transaction

    from core.cache import bump

    with trace.tracing() as recorded:
        with pytest.raises(RuntimeError), transaction.atomic():
            bump("jobs", "job:1")
            raise RuntimeError("roll back")
    stats = recorded.as_stats()
    assert stats["bumps_sent"] == []
    assert stats["rolled_back"] == ["job:1", "jobs"]


def test_private_hit_through_drf_names_the_caller(toolbar_on, client_user):
    client = Client(REMOTE_ADDR="127.0.0.1")
    token = auth_client(client_user)._credentials["HTTP_AUTHORIZATION"]
    for expect in ("MISS", "HIT"):
        response = client.get("/api/v1/payments/", HTTP_AUTHORIZATION=token, HTTP_ACCEPT="application/json")
        assert response["X-Cache"] == expect
    stats, html = panel_of_last_request(client)
    assert stats["decision"] == trace.HIT and stats["private"] is True
    assert stats["caller"] == f"user:{client_user.pk}" and stats["path"] == "drf"
    assert f"user:{client_user.pk}" in stats["coarse"]


def test_browsable_api_says_why_it_is_not_cached(toolbar_on):
    JobFactory()
    client = Client(REMOTE_ADDR="127.0.0.1")
    response = client.get("/api/v1/jobs/", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert b"djDebug" in response.content, "the toolbar is on the page"
    stats, html = panel_of_last_request(client)
    assert stats["decision"] == trace.NOT_CACHED
    assert "only JSON responses are cached" in stats["reason"]


@pytest.mark.parametrize("role", ["anonymous", "client", "worker", "staff"])
def test_html_pages_answer_for_every_role_with_the_panel(toolbar_on, role, client_user, worker_user, staff_user):
    job = JobFactory(client=client_user)
    client = Client(REMOTE_ADDR="127.0.0.1")
    user = {"client": client_user, "worker": worker_user, "staff": staff_user}.get(role)
    if user is not None:
        client.force_login(user)
    pages = [
        "/api/v1/jobs/", f"/api/v1/jobs/{job.pk}/", f"/api/v1/users/{client_user.pk}/",
        "/api/v1/payments/", "/api/v1/users/me/", "/admin/", "/admin/jobs/job/", f"/admin/jobs/job/{job.pk}/change/",
    ]
    for page in pages:
        response = client.get(page, HTTP_ACCEPT="text/html")
        assert response.status_code < 500, (page, response.status_code)
        stats, html = panel_of_last_request(client)
        assert stats["status_code"] == response.status_code
        assert "Cache round trips" in html, page


def test_no_toolbar_no_recording_no_extra_calls(monkeypatch):
    """Without the toolbar: nothing is recorded, the backend is not wrapped and the
    lookups ask Redis for no row header; the same requests make the same queries."""
    from core.cache import backends

    JobFactory.create_batch(2)
    client = Client()
    calls = []
    original = backends.backend

    def counting_backend():
        b = original()
        calls.append(type(b).__name__)
        return b

    monkeypatch.setattr(backends, "backend", counting_backend)
    assert trace.current() is None and not trace.wants_header()
    with CaptureQueriesContext(connection) as miss_queries:
        client.get("/api/v1/jobs/", HTTP_ACCEPT="application/json")
    with CaptureQueriesContext(connection) as hit_queries:
        assert client.get("/api/v1/jobs/", HTTP_ACCEPT="application/json")["X-Cache"] == "HIT"
    assert "TimedBackend" not in calls
    assert len(hit_queries) == 0
    assert not any("cache_trace" in q["sql"] for q in miss_queries.captured_queries)
    assert trace.current() is None


@pytest.mark.redis
def test_redis_commands_are_the_same_without_the_toolbar():
    """Count the Redis commands this process sends for a miss and a hit: with no
    toolbar they are what the cache layer needs (hit: one EVALSHA on the fast
    path), and no command carries the tracing flag."""
    import redis
    from django.conf import settings

    if settings.REDIS_CLUSTER_NODES:
        pytest.skip("one Redis: on a Cluster a hit is two or three calls by design (docs/scaling.md)")
    JobFactory()
    sent = []
    # Counted on the connections (the client's and the fast path's own, which
    # bypasses the client and packs its commands itself): every command any of
    # them writes, read back from the bytes sent.
    import hiredis

    connection_class = redis.connection.AbstractConnection
    original = connection_class.send_packed_command

    def counting(self, command, *args, **kwargs):
        reader = hiredis.Reader(encoding="utf-8")
        reader.feed(b"".join(command) if isinstance(command, list) else command)
        while (args_sent := reader.gets()) is not False:
            sent.append(args_sent)
        return original(self, command, *args, **kwargs)

    client = Client()
    connection_class.send_packed_command = counting
    try:
        client.get("/api/v1/jobs/", HTTP_ACCEPT="application/json")
        sent.clear()
        assert client.get("/api/v1/jobs/", HTTP_ACCEPT="application/json")["X-Cache"] == "HIT"
    finally:
        connection_class.send_packed_command = original
    assert len(sent) == 1 and sent[0][0] in ("EVALSHA", "EVAL")
    numkeys = int(sent[0][2])
    argv = sent[0][3 + numkeys:]
    assert argv[9] == "0", "the tracing flag (fast_lookup.lua's ARGV[10]) is off"
