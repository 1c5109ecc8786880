"""Signed-in hits without the database (core/cache/callers.py and the fast path)
and conditional GETs (ETag, If-None-Match, 304).

- A token's cached entry resolves its caller with no query; a signed-in hit is
  answered before DRF with the same status, bytes and headers as DRF's path, for
  every private endpoint and every role; a revoked token, a deactivated user or
  a role change is seen on the very next request.
- Every cached GET carries an ETag from its key and row versions; If-None-Match
  with the current tag is a 304 without a body (on the fast path, on DRF's, and
  on a miss before anything is built); after a write the old tag is never a 304.
"""
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

import core.cache.middleware as fast_path
from accounts import services as account_services
from jobs import services as job_services
from tests.accounts.factories import ClientUserFactory, StaffUserFactory, WorkerUserFactory
from tests.conftest import auth_client
from tests.jobs.factories import ApplicationFactory, JobFactory, SavedJobFactory
from tests.payments.factories import PaymentFactory
from tests.ratings.factories import ReviewFactory

pytestmark = pytest.mark.django_db(transaction=True)

# Headers that differ per request by design.
PER_REQUEST = {"X-Request-ID", "Server-Timing", "Date"}


@pytest.fixture
def world():
    client, worker, staff = ClientUserFactory(), WorkerUserFactory(), StaffUserFactory()
    job = JobFactory(client=client)
    ApplicationFactory(job=job, worker=worker)
    SavedJobFactory(job=job, user=worker)
    payment = PaymentFactory(payer=client, recipient=worker)
    review = ReviewFactory(reviewer=client, reviewed=worker)
    return {"client": client, "worker": worker, "staff": staff, "job": job, "payment": payment, "review": review}


def private_paths(w):
    return [
        "/api/v1/users/me/",
        "/api/v1/users/me/balance/",
        "/api/v1/users/me/saved-jobs/",
        "/api/v1/applications/",
        "/api/v1/payments/",
        f"/api/v1/payments/{w['payment'].pk}/",
        f"/api/v1/users/{w['client'].pk}/payments/",
        f"/api/v1/users/{w['worker'].pk}/payments/",
        f"/api/v1/jobs/{w['job'].pk}/applications/",
    ]


def public_paths(w):
    return [
        "/api/v1/jobs/",
        f"/api/v1/jobs/{w['job'].pk}/",
        f"/api/v1/users/{w['worker'].pk}/",
        f"/api/v1/users/{w['worker'].pk}/reviews/",
        "/api/v1/reviews/",
        "/api/v1/categories/",
    ]


def without_tail(response):
    if not response.content:
        return b""
    body = json.loads(response.content)
    body.pop("correlation_id", None)
    body.pop("timestamp", None)
    return body


def drf_path(monkeypatch):
    """A context in which the fast path never resolves a token: DRF answers."""
    context = monkeypatch.context()
    m = context.__enter__()
    m.setattr(fast_path, "cached_caller", lambda token: None)
    m.setattr(fast_path, "remembered_caller", lambda token: None)
    return context


def compare(fast, slow, where):
    assert fast.status_code == slow.status_code, where
    assert without_tail(fast) == without_tail(slow), where
    fast_headers = {k: v for k, v in fast.headers.items() if k not in PER_REQUEST}
    slow_headers = {k: v for k, v in slow.headers.items() if k not in PER_REQUEST}
    assert fast_headers == slow_headers, where


def test_a_token_is_resolved_from_its_entry_from_its_third_use(world, dispatches):
    api = auth_client(world["worker"])
    counts = []
    for _ in range(4):
        with CaptureQueriesContext(connection) as ctx:
            response = api.get("/api/v1/users/me/saved-jobs/")
        assert response.status_code == 200
        counts.append(len(ctx.captured_queries))
    # 1st: token + ids + COUNT + page + skills (a MISS); 2nd: the token only (the
    # entry was a hint: the versions are read before the query); then none.
    assert counts == [5, 1, 0, 0]
    assert len(dispatches) == 2


@pytest.mark.parametrize("role", ["client", "worker", "staff"])
def test_signed_in_hits_are_the_drf_paths_answer_for_every_endpoint(world, role, dispatches, monkeypatch):
    api = auth_client(world[role])
    for path in private_paths(world) + public_paths(world):
        for _ in range(3):  # the token's hint, its entry, and the response's entry
            first = api.get(path)
        before = len(dispatches)
        with CaptureQueriesContext(connection) as ctx:
            fast = api.get(path)
        served_fast = len(dispatches) == before
        if first.status_code == 200:
            assert served_fast, f"{role} {path}: a 200 hit went through DRF"
            assert fast["X-Cache"] == "HIT" and len(ctx.captured_queries) == 0, path
        else:
            # Denied (401/403/404): DRF answers, with its query, as before.
            assert not served_fast, f"{role} {path}: {first.status_code} answered by the fast path"
        context = drf_path(monkeypatch)
        try:
            slow = api.get(path)
        finally:
            context.__exit__(None, None, None)
        assert len(dispatches) == before + (1 if served_fast else 2)
        compare(fast, slow, f"{role} {path}")
        if fast.status_code == 200:
            tag = fast["ETag"]
            fast304 = api.get(path, HTTP_IF_NONE_MATCH=tag)
            context = drf_path(monkeypatch)
            try:
                slow304 = api.get(path, HTTP_IF_NONE_MATCH=tag)
            finally:
                context.__exit__(None, None, None)
            assert fast304.status_code == 304 and fast304.content == b"", path
            compare(fast304, slow304, f"{role} {path} 304")


@pytest.mark.parametrize("revoke", ["logout", "deactivate", "token_deleted_in_admin"])
def test_a_revoked_caller_is_refused_on_the_very_next_request(world, revoke, dispatches):
    user = world["client"]
    api = auth_client(user)
    for path in private_paths(world)[:5]:
        for _ in range(3):
            assert api.get(path).status_code == 200
    tag = api.get("/api/v1/payments/")["ETag"]
    n = len(dispatches)
    assert api.get("/api/v1/payments/")["X-Cache"] == "HIT" and len(dispatches) == n  # the fast path
    if revoke == "logout":
        assert api.post("/api/v1/auth/logout/").status_code == 204
    elif revoke == "deactivate":
        user.is_active = False
        user.save()
    else:
        from rest_framework.authtoken.models import TokenProxy

        TokenProxy.objects.get(user=user).delete()
    for path in private_paths(world)[:5]:
        assert api.get(path).status_code == 401, (revoke, path)
    assert api.get("/api/v1/payments/", HTTP_IF_NONE_MATCH=tag).status_code == 401


@pytest.mark.redis
def test_a_signed_in_hit_is_one_round_trip_that_checks_the_callers_entry(world, dispatches, monkeypatch):
    """On one Redis, a token this process has read valid is checked in the same
    script as the response lookup (callers.remembered_caller, fast_lookup.lua):
    a signed-in hit is one round trip, and an entry that no longer holds the
    remembered snapshot, or is gone, serves nothing (DRF answers, from the database)."""
    from core.cache import callers
    from core.cache.backends import backend
    from core.cache.keys import decode_entry, encode_entry
    from core.cache.redis_backend import RedisBackend

    b = backend()
    if not b.checks_caller:
        pytest.skip("the token entry and the response are not on one Redis (a Cluster)")
    scripts = []
    original = RedisBackend._run
    monkeypatch.setattr(RedisBackend, "_run", lambda self, client, name, keys, args: (
        scripts.append(name), original(self, client, name, keys, args))[1])
    user = world["worker"]
    api = auth_client(user)
    path = "/api/v1/users/me/saved-jobs/"
    for _ in range(3):
        assert api.get(path).status_code == 200
    scripts.clear()
    n = len(dispatches)
    with CaptureQueriesContext(connection) as ctx:
        hit = api.get(path)
    assert hit["X-Cache"] == "HIT" and len(dispatches) == n and len(ctx.captured_queries) == 0
    assert scripts == ["fast_lookup"]  # no separate token lookup

    # The token's entry, still valid, now holding another snapshot (a name this
    # process has not seen): the remembered one is not trusted.
    token = api._credentials["HTTP_AUTHORIZATION"].split()[1]
    key = callers.token_entry_key(token)
    raw = b.get(key)
    rows, snapshot = decode_entry(raw)
    other = json.loads(snapshot) | {"first_name": "Someone else"}
    b.put(key, encode_entry(rows, json.dumps(other).encode()), 300)
    scripts.clear()
    n = len(dispatches)
    with CaptureQueriesContext(connection) as ctx:
        me = api.get("/api/v1/users/me/")
    assert scripts[0] == "fast_lookup" and len(dispatches) == n + 1  # refused: DRF answered
    assert any("authtoken" in q["sql"] for q in ctx.captured_queries)  # from the database
    assert me.status_code == 200 and me.json()["data"]["first_name"] == user.first_name
    assert key not in callers._SEEN

    # Remembered again (two valid reads), then the entry is gone: DRF authenticates.
    for _ in range(2):
        assert api.get(path)["X-Cache"] == "HIT"
    assert callers._SEEN.get(key) is not None
    b.delete(key)
    n = len(dispatches)
    with CaptureQueriesContext(connection) as ctx:
        assert api.get(path).status_code == 200
    assert len(dispatches) == n + 1
    assert any("authtoken" in q["sql"] for q in ctx.captured_queries)


def test_a_role_change_is_seen_on_the_very_next_request(world):
    user = world["worker"]
    api = auth_client(user)
    for _ in range(3):
        assert api.get("/api/v1/users/me/").json()["data"]["role"] == "worker"
    user.role = "client"
    user.save()
    assert api.get("/api/v1/users/me/").json()["data"]["role"] == "client"
    # Applications are listed by role: as a client, those to the caller's jobs (none).
    assert api.get("/api/v1/applications/").json()["data"] == []


def test_a_miss_after_the_fast_path_resolved_the_caller_does_not_query_the_token(world):
    api = auth_client(world["worker"])
    for _ in range(2):
        api.get("/api/v1/users/me/")  # the token's hint, then its entry
    with CaptureQueriesContext(connection) as ctx:
        response = api.get("/api/v1/users/me/saved-jobs/")
    assert response["X-Cache"] == "MISS"
    assert not any("authtoken" in q["sql"] for q in ctx.captured_queries)
    assert len(ctx.captured_queries) == 4  # ids + COUNT + page + skills: no token query


# --- conditional GET ------------------------------------------------------------------

def test_public_etag_304_on_both_paths_and_cache_control(world, dispatches):
    anon = APIClient()
    first = anon.get("/api/v1/jobs/")
    tag = first["ETag"]
    assert tag.startswith('W/"') and first["Cache-Control"] == "public, no-cache"
    assert anon.get("/api/v1/jobs/")["ETag"] == tag  # a hit: the same tag
    n = len(dispatches)
    with CaptureQueriesContext(connection) as ctx:
        fast = anon.get("/api/v1/jobs/", HTTP_IF_NONE_MATCH=tag)
    assert fast.status_code == 304 and fast.content == b"" and len(dispatches) == n
    assert len(ctx.captured_queries) == 0
    anon.cookies["sessionid"] = "unknown"  # the DRF path
    slow = anon.get("/api/v1/jobs/", HTTP_IF_NONE_MATCH=f'"other", {tag}')
    assert slow.status_code == 304 and len(dispatches) == n + 1
    assert fast["Cache-Control"] == "public, no-cache"  # what its 200 gets
    assert slow["Cache-Control"] == "private, no-store"  # it sent a (session) cookie
    del slow.headers["Cache-Control"], fast.headers["Cache-Control"]
    compare(fast, slow, "304")
    assert "Content-Type" not in fast.headers


def test_a_private_answer_is_no_store_and_revalidates_with_its_etag(world):
    """Kept by no cache (core.middleware.HTTPCachePolicyMiddleware); a client that
    keeps the body itself revalidates it with the ETag."""
    api = auth_client(world["client"])
    response = api.get("/api/v1/payments/")
    assert response["Cache-Control"] == "private, no-store"
    again = api.get("/api/v1/payments/", HTTP_IF_NONE_MATCH=response["ETag"])
    assert again.status_code == 304 and again["Cache-Control"] == "private, no-store"


def test_never_304_for_a_stale_tag_after_a_write(world):
    anon = APIClient()
    job = world["job"]
    detail = f"/api/v1/jobs/{job.pk}/"
    tags = {path: anon.get(path)["ETag"] for path in ("/api/v1/jobs/", detail)}
    # A row write: the job's title (a row scope of both entries).
    job_services.job_update(job=job, by=job.client, data={"title": "Renamed"})
    for path, tag in tags.items():
        again = anon.get(path, HTTP_IF_NONE_MATCH=tag)
        assert again.status_code == 200, path
        assert again["ETag"] != tag
        assert "Renamed" in again.content.decode()
        assert anon.get(path, HTTP_IF_NONE_MATCH=again["ETag"]).status_code == 304
    # A membership write: a new job in the list (a coarse scope).
    tag = anon.get("/api/v1/jobs/")["ETag"]
    JobFactory(title="Brand new")
    again = anon.get("/api/v1/jobs/", HTTP_IF_NONE_MATCH=tag)
    assert again.status_code == 200 and "Brand new" in again.content.decode()
    # A private list after a write of one of its rows (the payer's name).
    api = auth_client(world["client"])
    tag = api.get("/api/v1/payments/")["ETag"]
    account_services.user_update(user=world["client"], user_fields={"last_name": "Changed"}, profile_fields={})
    again = api.get("/api/v1/payments/", HTTP_IF_NONE_MATCH=tag)
    assert again.status_code == 200 and "Changed" in again.content.decode()


def test_a_miss_with_the_current_tag_is_a_304_before_anything_is_built(world):
    from core.cache import backend

    anon = APIClient()
    # The plain list recalls its ids query under the same coarse versions
    # (Rows(recall=True)): no query at all. A filtered list runs it.
    for path, queries in (("/api/v1/jobs/", 0), ("/api/v1/jobs/?ordering=rate", 1)):
        tag = anon.get(path)["ETag"]
        # The entry is gone (evicted, expired) but nothing was written: same versions.
        for key in list(core_entry_keys()):
            backend().delete(key)
        with CaptureQueriesContext(connection) as ctx:
            response = anon.get(path, HTTP_IF_NONE_MATCH=tag)
        assert response.status_code == 304 and response["X-Cache"] == "MISS", path
        assert len(ctx.captured_queries) == queries, path  # the ids query or none; no page, no COUNT


def core_entry_keys():
    from core.cache import RESPONSE_PREFIX, backend

    return backend().scan_prefix(RESPONSE_PREFIX)


def test_if_none_match_forms():
    from django.test import RequestFactory

    from core.cache.keys import if_none_match

    tag = "a" * 40
    get = RequestFactory().get
    assert if_none_match(get("/")) == ""
    assert if_none_match(get("/", HTTP_IF_NONE_MATCH=f'W/"{tag}"')) == f" {tag} "
    assert if_none_match(get("/", HTTP_IF_NONE_MATCH=f'"x", "{tag}"')) == f" {tag} "
    assert if_none_match(get("/", HTTP_IF_NONE_MATCH="*")) == " * "
    assert if_none_match(get("/", HTTP_IF_NONE_MATCH="garbage ' \" ")) == ""


@pytest.mark.redis
def test_a_remembered_caller_refused_by_a_permission_is_read_again(monkeypatch):
    """A permission that refuses a remembered snapshot which no lookup has confirmed
    (the user may have changed since: here made staff) drops it: DRF answers that
    request from the database, and the token's next request finds the fresh entry
    and is a fast hit with no query. Kept, the stale snapshot would be refused and
    re-authenticated from the database on every request."""
    from core.cache import callers
    from core.cache.backends import backend

    if not backend().checks_caller:
        pytest.skip("the token entry and the response are not on one Redis (a Cluster)")
    payer, worker = ClientUserFactory(), WorkerUserFactory()
    PaymentFactory(payer=payer, recipient=worker)
    api = auth_client(worker)
    own, other = f"/api/v1/users/{worker.pk}/payments/", f"/api/v1/users/{payer.pk}/payments/"
    for _ in range(3):
        assert api.get(own).status_code == 200
    key = callers.token_entry_key(api._credentials["HTTP_AUTHORIZATION"].split()[1])
    assert b'"is_staff":false' in callers._SEEN[key].replace(b" ", b"")
    worker.is_staff = True
    worker.save()  # retires the token's entry (user:<id>); this process still remembers the old snapshot
    with CaptureQueriesContext(connection) as ctx:
        first = api.get(other)
    assert first.status_code == 200 and any("authtoken" in q["sql"] for q in ctx.captured_queries)
    assert key not in callers._SEEN or b'"is_staff":true' in callers._SEEN[key].replace(b" ", b"")
    api.get(other)  # the fresh entry, read from Redis, is remembered
    with CaptureQueriesContext(connection) as ctx:
        again = api.get(other)
    assert again.status_code == 200 and again["X-Cache"] == "HIT"
    assert ctx.captured_queries == []
