"""Hosts and transport (issue 10, class 5): ALLOWED_HOSTS on every path, the
proxy TLS header trusted only when configured, and Cache-Control / Vary that
make the answers safe for shared HTTP caches."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from tests.conftest import auth_client
from tests.jobs.factories import JobFactory

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


def _warm(path: str) -> None:
    api = APIClient()
    assert api.get(path).status_code == 200
    assert api.get(path)["X-Cache"] == "HIT"


def test_a_cached_hit_is_not_served_to_a_foreign_host():
    """The anonymous fast path answers before CommonMiddleware: the host must be
    checked before it (it was not: a cached 200 for any Host)."""
    JobFactory()
    _warm("/api/v1/jobs/")
    response = APIClient().get("/api/v1/jobs/", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert b"data" not in response.content or b'"success":false' in response.content
    # a cache miss too
    assert APIClient().get("/api/v1/categories/", HTTP_HOST="evil.example").status_code == 400
    assert APIClient().get("/api/v1/jobs/", HTTP_HOST="testserver").status_code == 200


def _settings_value(expr: str, **env) -> str:
    base = {"DJANGO_SETTINGS_MODULE": "config.settings.base", "SECRET_KEY": "k" * 50, "PATH": os.environ["PATH"]}
    done = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); from django.conf import settings; print({expr})"],
        env={**base, **env}, cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_proxy_tls_header_is_trusted_only_when_configured():
    assert _settings_value("settings.SECURE_PROXY_SSL_HEADER") == "None"
    assert _settings_value(
        "settings.SECURE_PROXY_SSL_HEADER", SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto"
    ) == "('HTTP_X_FORWARDED_PROTO', 'https')"


def test_a_client_sent_forwarded_proto_does_not_make_a_request_secure(settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = None
    response = APIClient().get("/api/v1/health/", HTTP_X_FORWARDED_PROTO="https")
    assert response.status_code == 301
    assert response["Location"].startswith("https://")
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert APIClient().get("/api/v1/health/", HTTP_X_FORWARDED_PROTO="https").status_code == 200


def _vary(response) -> set:
    return {v.strip().lower() for v in response["Vary"].split(",")}


def test_public_answers_are_safe_for_a_shared_cache():
    job = JobFactory()
    for path in ("/api/v1/jobs/", f"/api/v1/jobs/{job.pk}/", "/api/v1/categories/"):
        for expected in ("MISS", "HIT"):  # the DRF path, then the fast path
            response = APIClient().get(path)
            assert response["X-Cache"] == expected
            assert response["Cache-Control"] == "public, no-cache", path
            assert {"authorization", "cookie", "accept"} <= _vary(response), path


def test_private_answers_are_private_no_store(client_user):
    job = JobFactory(client=client_user)
    api = auth_client(client_user)
    for response in (
        api.get("/api/v1/users/me/"),
        api.get("/api/v1/payments/"),
        api.get(f"/api/v1/jobs/{job.pk}/applications/"),
        api.get("/api/v1/jobs/"),  # public data, but asked with a token
        api.patch("/api/v1/users/me/", {"first_name": "Ann"}, format="json"),
        APIClient().get("/api/v1/jobs/999999/"),  # errors
        APIClient().post("/api/v1/auth/login/", {"email": "a@b.c", "password": "x"}, format="json"),
    ):
        assert response["Cache-Control"] == "private, no-store", response.wsgi_request.path
        assert {"authorization", "cookie"} <= _vary(response)


def test_views_that_set_their_own_cache_control_keep_it(client, settings):
    settings.METRICS_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"]
