"""/metrics (core/metrics.py): django-prometheus request latency, database query
counts through its backend wrapper, the response cache counter; only to the
networks of METRICS_ALLOWED_NETWORKS or with METRICS_TOKEN."""
import pytest
from django.db import connection
from django.urls import path, resolve
from rest_framework.response import Response
from rest_framework.views import APIView

from core.cache import cached_response
from core.metrics import metrics_view


class CachedCountView(APIView):
    """A cached public endpoint that runs one query."""

    authentication_classes = []
    permission_classes = []

    @cached_response(lambda view, request, **kw: ["metrics-test"])
    def get(self, request):
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return Response({"one": cursor.fetchone()[0]})


urlpatterns = [
    path("metrics", metrics_view),
    path("cached/", CachedCountView.as_view()),
]


def _sample(text: str, name: str, default=None, **labels) -> float:
    """The value of the first sample of ``name`` whose labels include ``labels``."""
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    if default is not None:
        return default
    raise AssertionError(f"no sample {name} {labels}")


def test_metrics_is_routed_outside_the_api():
    match = resolve("/metrics")
    assert match.func is metrics_view


@pytest.mark.django_db
@pytest.mark.urls(__name__)
def test_loopback_sees_latency_query_and_cache_metrics(client, settings):
    settings.METRICS_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    before = client.get("/metrics", REMOTE_ADDR="127.0.0.1").content.decode()
    assert client.get("/cached/").headers["X-Cache"] == "MISS"
    assert client.get("/cached/").headers["X-Cache"] == "HIT"
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    view = "CachedCountView"
    # the endpoint label is the view class (and handler) name
    cache_lines = [line for line in text.splitlines() if line.startswith("shiftboard_response_cache_total{")]
    for result in ("hit", "miss"):
        assert any(
            f'"{view}' in line and f'result="{result}"' in line and float(line.rsplit(" ", 1)[1]) >= 1
            for line in cache_lines
        ), cache_lines
    assert "django_http_requests_latency_seconds_by_view_method_bucket" in text
    latency_count = _sample(
        text,
        "django_http_requests_latency_seconds_by_view_method_count",
        method="GET",
        view=f"{__name__}.{view}",
    )
    assert latency_count >= 2
    # the database wrapper counts queries (the MISS ran one)
    executed = _sample(text, "django_db_execute_total", alias="default", vendor=connection.vendor)
    executed_before = _sample(before, "django_db_execute_total", default=0, alias="default", vendor=connection.vendor)
    assert executed >= executed_before + 1


@pytest.mark.urls(__name__)
@pytest.mark.parametrize(
    "meta",
    [
        {"REMOTE_ADDR": "203.0.113.9"},
        {"REMOTE_ADDR": "10.0.0.5", "HTTP_AUTHORIZATION": "Bearer wrong-token"},
        # no header a client sends grants anything
        {"REMOTE_ADDR": "203.0.113.9", "HTTP_X_FORWARDED_FOR": "127.0.0.1", "HTTP_X_REAL_IP": "127.0.0.1"},
        {"REMOTE_ADDR": "203.0.113.9", "HTTP_FORWARDED": "for=127.0.0.1"},
    ],
)
def test_anyone_else_gets_404(client, settings, meta):
    settings.METRICS_TOKEN = "s3cret-metrics-token"
    settings.METRICS_ALLOWED_NETWORKS = ["127.0.0.1/32", "10.1.0.0/16"]
    response = client.get("/metrics", **meta)
    assert response.status_code == 404
    assert b"django_http" not in response.content


@pytest.mark.urls(__name__)
def test_loopback_is_not_trusted_unless_configured(client, settings):
    """A proxy on the same host makes every request loopback: loopback is only
    let in when METRICS_ALLOWED_NETWORKS says so (by default only with DEBUG=1)."""
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = []
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 404
    settings.METRICS_ALLOWED_NETWORKS = ["10.1.0.0/16"]
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="10.2.0.1").status_code == 404


def test_allowed_networks_default_is_loopback_only_with_debug():
    import subprocess
    import sys
    from pathlib import Path

    code = "from django.conf import settings; print(settings.METRICS_ALLOWED_NETWORKS)"
    out = {}
    for debug in ("0", "1"):
        env = {"DJANGO_SETTINGS_MODULE": "config.settings.base", "DEBUG": debug, "SECRET_KEY": "x" * 50,
               "PATH": "/usr/bin:/bin"}
        done = subprocess.run([sys.executable, "-c", "import django; django.setup(); " + code],
                              env=env, capture_output=True, text=True, timeout=60,
                              cwd=Path(__file__).resolve().parents[2])
        assert done.returncode == 0, done.stderr
        out[debug] = done.stdout.strip()
    assert out["0"] == "[]"
    assert "127.0.0.1/32" in out["1"]


@pytest.mark.urls(__name__)
def test_a_remote_caller_with_the_token_is_served(client, settings):
    settings.METRICS_TOKEN = "s3cret-metrics-token"
    response = client.get("/metrics", REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer s3cret-metrics-token")
    assert response.status_code == 200
    assert b"shiftboard_response_cache_total" in response.content


@pytest.mark.urls(__name__)
def test_no_token_configured_means_no_remote_access(client, settings):
    settings.METRICS_TOKEN = ""
    response = client.get("/metrics", REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer ")
    assert response.status_code == 404
