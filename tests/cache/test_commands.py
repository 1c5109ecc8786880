"""The on-call tools (docs/cache.md, "A response looks stale"): ``manage.py
cache_explain`` agrees with what the response cache really does (a miss, a hit,
a stale entry after a bump, after ``cache_invalidate``), answers for every GET
endpoint of the README, and creates nothing; every bump is logged at DEBUG with
the request id. ``transaction=True``: bumps run in ``on_commit`` as in production."""
import io
import logging
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from core import cache as cache_layer
from jobs.cache import JOB_SET
from tests.accounts.factories import ClientUserFactory
from tests.conftest import auth_client
from tests.jobs.factories import ApplicationFactory, JobFactory
from tests.payments.factories import PaymentFactory
from tests.ratings.factories import ReviewFactory

pytestmark = pytest.mark.django_db(transaction=True)

JOBS = "/api/v1/jobs/"


def explain(url, user=None) -> str:
    out = io.StringIO()
    call_command("cache_explain", url, *(["--user", str(user.pk)] if user else []), stdout=out)
    return out.getvalue()


def invalidate(*args) -> str:
    out = io.StringIO()
    call_command("cache_invalidate", *args, stdout=out)
    return out.getvalue()


def verdict(text: str) -> str:
    return next(line for line in text.splitlines() if line.startswith("verdict:"))[len("verdict:") :].strip()


def printed_key(text: str) -> str:
    return next(line for line in text.splitlines() if line.startswith("key:"))[len("key:") :].strip()


def stored_keys(endpoint: str) -> list[str]:
    return [k for k in cache_layer.backend().scan_prefix(f"{cache_layer.RESPONSE_PREFIX}{endpoint}:")]


def warm(client, url):
    assert client.get(url).status_code == 200
    response = client.get(url)
    assert response["X-Cache"] == "HIT"


def test_miss_before_any_request_and_nothing_created():
    JobFactory()
    for _ in range(2):  # the second run sees no counter either: the first created none
        text = explain(JOBS)
        assert "endpoint:  JobViewSet.list (public)" in text
        assert re.search(r"^  \* +\(no counter\)$", text, re.M), text
        assert verdict(text).startswith("MISS: no counter for *")
    assert stored_keys("JobViewSet.list") == []


def test_hit_names_the_real_key_and_the_row_header(anon):
    job = JobFactory()
    warm(anon, JOBS)
    text = explain(JOBS)
    assert verdict(text) == "HIT"
    assert [printed_key(text)] == stored_keys("JobViewSet.list")  # the key the response cache stored
    assert re.search(rf"^  job:{job.pk} +(\d+) -> \1  ok$", text, re.M), text
    assert re.search(rf"^  user:{job.client_id} +(\d+) -> \1  ok$", text, re.M), text
    # A different query string is a different entry. On a Redis Cluster it may
    # belong to another group, whose copies of the counters nobody has read yet.
    other = verdict(explain(JOBS + "?per_page=5"))
    assert other.startswith("MISS: no entry under the current versions") or (
        cache_layer.backend().grouped and other.startswith("MISS: no counter for")
    ), other


def test_stale_after_a_row_bump_is_explained_and_really_missed(anon):
    job = JobFactory()
    warm(anon, JOBS)
    cache_layer.bump_now({f"job:{job.pk}"})
    text = explain(JOBS)
    assert verdict(text) == f"MISS: row check failed: job:{job.pk} bumped since the entry was stored"
    assert re.search(rf"^  job:{job.pk} +\d+ -> \d+  CHANGED$", text, re.M), text
    assert anon.get(JOBS)["X-Cache"] == "MISS"  # the response cache agrees
    assert verdict(explain(JOBS)) == "HIT"


def test_invalidate_then_explain_shows_the_coarse_bump(anon):
    warm(anon, JOBS)
    before = cache_layer.get_versions([JOB_SET])[JOB_SET]  # the plain list's membership
    out = invalidate(JOB_SET)
    assert out.strip() == f"bumped {JOB_SET}: {before} -> {before + 1}"
    assert verdict(explain(JOBS)) == f"MISS: coarse scope bumped: {JOB_SET} bumped 1 time(s) since the entry was stored"
    assert anon.get(JOBS)["X-Cache"] == "MISS"
    warm(anon, JOBS)
    invalidate("--all")
    assert verdict(explain(JOBS)) == (
        "MISS: coarse scope bumped: the global generation (*) bumped 1 time(s) since the entry was stored"
    )
    assert anon.get(JOBS)["X-Cache"] == "MISS"


def test_invalidate_needs_scopes_or_all():
    with pytest.raises(CommandError):
        invalidate()
    with pytest.raises(CommandError):
        invalidate("jobs", "--all")


def test_private_endpoint_is_explained_per_caller():
    user = ClientUserFactory()
    warm(auth_client(user), "/api/v1/users/me/")
    text = explain("/api/v1/users/me/", user)
    assert f"endpoint:  MeView.get (private, caller user:{user.pk})" in text
    assert re.search(rf"^  user:{user.pk} +\d+$", text, re.M), text  # a private entry depends on its caller
    assert verdict(text) == "HIT"
    assert verdict(explain("/api/v1/users/me/")).startswith("NOT CACHED: refused for this caller (401")


def test_not_cached_and_unknown_urls():
    assert verdict(explain("/api/v1/health/")).startswith("NOT CACHED: not a cached endpoint")
    # The browsable API (DEBUG only; a 404 here) is never cached.
    assert verdict(explain("/api/v1/jobs/?format=api")).startswith("NOT CACHED: ")
    assert verdict(explain("http://testserver/nowhere/")) == "NOT CACHED: no such URL (404)"


def _shape(path: str) -> str:
    """``/api/v1/jobs/{pk}/`` -> ``/jobs/{id}/``: how README and this list compare."""
    return re.sub(r"\{\w+\}", "{id}", path.removeprefix("/api/v1"))


def _readme_get_paths() -> set[str]:
    text = (Path(settings.BASE_DIR) / "README.md").read_text()
    return {_shape(path) for path in re.findall(r"`GET (/[^`?]*)`", text)}


# Every GET endpoint of the README, and who may read it (None: anonymous).
README_ENDPOINTS = {
    "/jobs/": None,
    "/jobs/{job}/": None,
    "/categories/": None,
    "/skills/": None,
    "/users/{worker}/": None,
    "/users/{worker}/reviews/": None,
    "/users/{worker}/reviews-given/": None,
    "/reviews/": None,
    "/users/me/": "client",
    "/users/me/balance/": "client",
    "/users/me/saved-jobs/": "worker",
    "/applications/": "worker",
    "/payments/": "client",
    "/users/{client}/payments/": "client",
    "/jobs/{job}/applications/": "client",
    "/payments/{payment}/": "client",
    "/health/": None,  # not cached: the command says so
}
NOT_CACHED_ENDPOINTS = {"/health/"}


def test_every_readme_get_endpoint_is_explained():
    readme = _readme_get_paths()
    listed = {_shape(path) for path in README_ENDPOINTS}
    assert readme and readme <= listed, f"README GET endpoints missing here: {readme - listed}"
    payment = PaymentFactory()
    client, worker = payment.payer, payment.recipient
    ApplicationFactory(job=JobFactory(client=client), worker=worker)
    ReviewFactory(reviewer=client, reviewed=worker)
    ids = {"job": payment.job_id, "worker": worker.pk, "client": client.pk, "payment": payment.pk}
    users = {None: None, "client": client, "worker": worker}
    for template, who in README_ENDPOINTS.items():
        url = "/api/v1" + template.format(**ids)
        user = users[who]
        text = explain(url, user)
        if template in NOT_CACHED_ENDPOINTS:
            assert verdict(text).startswith("NOT CACHED: not a cached endpoint"), f"{url}: {text}"
            continue
        assert re.search(r"^endpoint:  \w+\.\w+ ", text, re.M), f"{url}: {text}"
        assert verdict(text).startswith("MISS"), f"{url}: {text}"
        warm(auth_client(user) if user else APIClient(), url)
        assert verdict(explain(url, user)) == "HIT", f"{url}: {explain(url, user)}"


def test_every_bump_is_logged_with_the_request_id(caplog):
    client = ClientUserFactory()
    job = JobFactory(client=client)
    with caplog.at_level(logging.DEBUG, logger="shiftboard.cache"):
        response = auth_client(client).patch(
            f"{JOBS}{job.pk}/", {"title": "Renamed"}, format="json", HTTP_X_REQUEST_ID="rid-bump-14"
        )
        assert response.status_code == 200, response.content
        invalidate("jobs")
    bumps = [r for r in caplog.records if r.name == "shiftboard.cache" and r.getMessage().startswith("bump ")]
    in_request = [r for r in bumps if r.request_id == "rid-bump-14"]
    assert in_request and all(r.levelno == logging.DEBUG for r in bumps)
    assert any(f"job:{job.pk}" in r.getMessage().split() for r in in_request)
    # The command is no request: its bump carries "-".
    assert "bump jobs" in [r.getMessage() for r in bumps if r.request_id == "-"]
    # The configured format prints it.
    line = logging.Formatter(settings.LOGGING["formatters"]["plain"]["format"]).format(in_request[0])
    assert "[rid-bump-14] shiftboard.cache: bump " in line
