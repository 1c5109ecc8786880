"""Liveness and readiness (core/health.py): /livez answers while the process runs;
/readyz says whether it may get traffic (database, migrations, cache, replicas)."""
import json
import math
import os
import socket
import subprocess
import sys

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client, override_settings
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from core import health


def get(path, **extra):
    response = Client().get(path, **extra)
    return response.status_code, json.loads(response.content)


@pytest.mark.django_db
def test_ready_and_alive():
    assert get("/livez") == (200, {"status": "alive"})
    status, body = get("/readyz")
    assert status == 200 and body["status"] == "ready"
    checks = body["checks"]
    assert checks["database"]["ok"] and checks["database"]["critical"]
    assert checks["migrations"] == {"ok": True, "critical": True}
    assert checks["cache"]["ok"] and checks["cache"]["state"] == "ok" and not checks["cache"]["critical"]
    assert checks["replica_lag"] == {"ok": True, "replicas": {}, "critical": False}


@pytest.mark.django_db
def test_probes_skip_host_check_ssl_redirect_and_metrics():
    """A kubelet probes the pod IP over plain HTTP: no 400 for the Host, no 301 to
    https; probes are not counted as API traffic."""
    before = REGISTRY.get_sample_value("django_http_requests_before_middlewares_total") or 0
    with override_settings(SECURE_SSL_REDIRECT=True, ALLOWED_HOSTS=["api.example.com"]):
        assert get("/livez", HTTP_HOST="10.1.2.3:8000")[0] == 200
        assert get("/readyz", HTTP_HOST="10.1.2.3:8000")[0] == 200
        assert (REGISTRY.get_sample_value("django_http_requests_before_middlewares_total") or 0) == before
        # Everything else still gets the host check, and is counted (a refused Host too).
        other = Client(raise_request_exception=False).get("/api/v1/health/", HTTP_HOST="10.1.2.3:8000")
        assert other.status_code == 400
        assert REGISTRY.get_sample_value("django_http_requests_before_middlewares_total") == before + 1
    assert Client().get("/api/v1/health/").status_code == 200
    assert REGISTRY.get_sample_value("django_http_requests_before_middlewares_total") == before + 2
    assert Client().post("/readyz").status_code == 405


@pytest.mark.django_db
def test_unapplied_migrations_make_it_unready(monkeypatch):
    monkeypatch.setattr(health, "_leaf_migrations", health._leaves() | {("jobs", "9999_from_the_future")})
    status, body = get("/readyz")
    assert status == 503 and body["status"] == "unready"
    assert body["checks"]["migrations"] == {"ok": False, "unapplied": ["jobs.9999_from_the_future"], "critical": True}
    assert get("/livez")[0] == 200


@pytest.mark.django_db
def test_a_failing_non_critical_check_keeps_it_ready_a_critical_one_does_not(monkeypatch):
    monkeypatch.setattr(health, "_checks", dict(health._checks))
    health.register_check("extra", lambda: {"ok": False}, critical=False)
    assert get("/readyz")[0] == 200
    health.register_check("extra", lambda: 1 / 0, critical=True)
    status, body = get("/readyz")
    assert status == 503 and body["checks"]["extra"] == {"ok": False, "error": "ZeroDivisionError", "critical": True}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the with block ends: connection refused


def test_database_unreachable_unready_but_alive():
    """A fresh process whose DATABASE_URL points at a port nobody listens on."""
    script = (
        "import json; from django.test import Client; c = Client();"
        "l = c.get('/livez'); r = c.get('/readyz'); h = c.get('/api/v1/health/');"
        "print(json.dumps([l.status_code, r.status_code, json.loads(r.content), h.status_code]))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "ALLOWED_HOSTS": "testserver",
           "DATABASE_URL": f"postgres://postgres@127.0.0.1:{_closed_port()}/nothing", "LOG_LEVEL": "ERROR"}
    env.pop("REDIS_URL", None)
    result = subprocess.run([sys.executable, "manage.py", "shell", "-v", "0", "-c", script],
                            cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    live, ready, body, old = json.loads(result.stdout.strip().splitlines()[-1])
    assert live == 200
    assert ready == 503 and body["status"] == "unready"
    assert body["checks"]["database"] == {"ok": False, "error": "OperationalError", "critical": True}
    assert body["checks"]["migrations"]["ok"] is False
    assert old == 503  # the compatibility endpoint says the same


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_database_unreachable_in_process_then_back():
    """The running process loses its database (the connection now points at a
    closed port), becomes unready while alive, and ready again when it is back."""
    saved = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict["PORT"] = _closed_port()
    try:
        status, body = get("/readyz")
        assert status == 503 and body["checks"]["database"]["ok"] is False
        assert get("/livez")[0] == 200
    finally:
        connection.close()
        connection.settings_dict.update(saved)
    assert get("/readyz")[0] == 200


@pytest.mark.django_db
def test_replica_lag_is_reported_and_exported_but_never_makes_it_unready(monkeypatch):
    from core import replicas

    report = {
        "replica_0": {"status": "ok", "lag_bytes": 0, "lag_seconds": 120.0},  # idle primary: nothing to replay
        "replica_1": {"status": "ok", "lag_bytes": 4096, "lag_seconds": 45.0},  # behind
        "replica_2": {"status": "unavailable", "lag_bytes": None, "lag_seconds": None},
    }
    monkeypatch.setattr(replicas, "lag_report", lambda: {k: dict(v) for k, v in report.items()})
    status, body = get("/readyz")
    assert status == 200 and body["status"] == "ready"
    check = body["checks"]["replica_lag"]
    assert check["ok"] is False and check["critical"] is False
    assert [check["replicas"][a]["ok"] for a in ("replica_0", "replica_1", "replica_2")] == [True, False, False]
    assert REGISTRY.get_sample_value("shiftboard_db_replica_lag_seconds", {"alias": "replica_1"}) == 45.0
    assert REGISTRY.get_sample_value("shiftboard_db_replica_lag_bytes", {"alias": "replica_1"}) == 4096
    up = {a: REGISTRY.get_sample_value("shiftboard_db_replica_up", {"alias": a}) for a in report}
    assert up == {"replica_0": 1.0, "replica_1": 1.0, "replica_2": 0.0}
    assert math.isnan(REGISTRY.get_sample_value("shiftboard_db_replica_lag_seconds", {"alias": "replica_2"}))

    # replica_1 goes down: up 0, and its lag is NaN, not the 45 s it last had.
    report["replica_1"] = {"status": "unavailable", "lag_bytes": None, "lag_seconds": None}
    assert get("/readyz")[1]["checks"]["replica_lag"]["replicas"]["replica_1"]["ok"] is False
    assert REGISTRY.get_sample_value("shiftboard_db_replica_up", {"alias": "replica_1"}) == 0.0
    assert math.isnan(REGISTRY.get_sample_value("shiftboard_db_replica_lag_seconds", {"alias": "replica_1"}))
    assert math.isnan(REGISTRY.get_sample_value("shiftboard_db_replica_lag_bytes", {"alias": "replica_1"}))


@pytest.mark.django_db
def test_a_promoted_replica_is_reported_not_replicating_and_exported_for_the_alert(monkeypatch):
    """A replica that answers but no longer follows the primary: /readyz stays 200
    (not critical), its check is not ok with the reason; up 1 (it answers),
    replicating 0 (the alert), and no lag (NaN: its positions are not the primary's)."""
    from core import replicas

    report = {
        "replica_0": {"status": "ok", "lag_bytes": 0, "lag_seconds": 0.0},
        "replica_1": {"status": "not_replicating", "lag_bytes": None, "lag_seconds": None, "since": 1.0,
                      "reason": "not in recovery and not the primary: promoted"},
    }
    monkeypatch.setattr(replicas, "lag_report", lambda: {k: dict(v) for k, v in report.items()})
    status, body = get("/readyz")
    assert status == 200 and body["status"] == "ready"
    check = body["checks"]["replica_lag"]
    assert check["ok"] is False
    assert check["replicas"]["replica_1"]["ok"] is False and "promoted" in check["replicas"]["replica_1"]["reason"]
    assert check["replicas"]["replica_0"]["ok"] is True

    def sample(name, alias):
        return REGISTRY.get_sample_value(name, {"alias": alias})

    assert sample("shiftboard_db_replica_replicating", "replica_0") == 1.0
    assert sample("shiftboard_db_replica_replicating", "replica_1") == 0.0
    assert sample("shiftboard_db_replica_up", "replica_1") == 1.0
    assert math.isnan(sample("shiftboard_db_replica_lag_seconds", "replica_1"))
    assert math.isnan(sample("shiftboard_db_replica_lag_bytes", "replica_1"))
    # Unreachable: up 0, replicating not known (NaN), so only the down alert fires.
    report["replica_1"] = {"status": "unavailable", "lag_bytes": None, "lag_seconds": None}
    get("/readyz")
    assert sample("shiftboard_db_replica_up", "replica_1") == 0.0
    assert math.isnan(sample("shiftboard_db_replica_replicating", "replica_1"))


@pytest.mark.postgres
@pytest.mark.django_db
def test_replica_lag_measured_on_a_real_connection(monkeypatch):
    """The measurement itself, with the primary standing in for a replica."""
    from core import replicas

    monkeypatch.setattr(replicas, "replica_aliases", lambda: ["default"])
    status, body = get("/readyz")
    assert status == 200
    assert body["checks"]["replica_lag"]["replicas"]["default"]["status"] == "ok"


@pytest.mark.django_db
def test_compatibility_health_endpoint_unchanged():
    response = Client().get("/api/v1/health/")
    assert response.status_code == 200
    assert response.json()["data"] == {"database": "ok", "cache": "ok"}


def test_replica_lag_gauges_report_the_latest_probe_of_any_worker(tmp_path):
    """Prometheus multiprocess mode (gunicorn workers): a worker that saw a replica
    45 s behind, then another that saw it caught up: /metrics says 0, not the older,
    higher value; and a worker that has exited no longer counts."""
    from prometheus_client import CollectorRegistry, multiprocess

    def probe_in_a_worker(seconds, behind):
        code = (
            "from core.health import REPLICA_LAG, REPLICA_LAG_BYTES\n"
            f"REPLICA_LAG.labels('replica_1').set({seconds})\n"
            f"REPLICA_LAG_BYTES.labels('replica_1').set({behind})\n"
            "import os; print(os.getpid())\n"
        )
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
        out = subprocess.run([sys.executable, "-c", code], env=env, cwd=settings.BASE_DIR, capture_output=True,
                             text=True, check=True)
        return int(out.stdout.strip())

    def exported():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=str(tmp_path))
        return (registry.get_sample_value("shiftboard_db_replica_lag_seconds", {"alias": "replica_1"}),
                registry.get_sample_value("shiftboard_db_replica_lag_bytes", {"alias": "replica_1"}))

    behind_worker = probe_in_a_worker(45.0, 4096)
    assert exported() == (45.0, 4096.0)
    caught_up_worker = probe_in_a_worker(0.5, 0)
    assert exported() == (0.5, 0.0)
    multiprocess.mark_process_dead(caught_up_worker, path=str(tmp_path))  # config/gunicorn.py's child_exit
    multiprocess.mark_process_dead(behind_worker, path=str(tmp_path))
    assert exported() == (None, None)


def _replica_samples(metrics_text: str) -> dict[tuple[str, str], float]:
    """(metric, alias) -> value of the shiftboard_db_replica_* samples in /metrics text."""
    out = {}
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name.startswith("shiftboard_db_replica_"):
                out[sample.name, sample.labels["alias"]] = sample.value
    return out


def test_an_unreachable_replica_is_down_in_readiness_and_metrics_with_no_stale_lag(tmp_path):
    """A fresh process (as a gunicorn worker: Prometheus multiprocess mode) whose
    replica's port is closed. Another worker, still alive, last saw that replica up
    and 45 s behind. /readyz and /api/v1/health/ report it unavailable; /metrics
    says up 0, and its lag NaN instead of the other worker's 45 s."""
    from prometheus_client import CollectorRegistry, multiprocess

    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "ALLOWED_HOSTS": "testserver",
           "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), "METRICS_ALLOWED_NETWORKS": "127.0.0.1/32",
           "DATABASE_URL": f"sqlite:///{tmp_path / 'primary.sqlite3'}",
           "DATABASE_REPLICA_URLS": f"postgres://postgres@127.0.0.1:{_closed_port()}/nothing",
           "LOG_LEVEL": "ERROR"}
    env.pop("REDIS_URL", None)
    earlier_worker = (
        "from core.health import export_replica\n"
        "export_replica('replica_0', True, 45.0, 4096)\n"
    )
    subprocess.run([sys.executable, "-c", earlier_worker], env=env, cwd=settings.BASE_DIR, check=True, timeout=60)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(metrics_dir))
    assert registry.get_sample_value("shiftboard_db_replica_lag_seconds", {"alias": "replica_0"}) == 45.0

    script = (
        "import json; from django.test import Client; c = Client();"
        "r = c.get('/readyz'); h = c.get('/api/v1/health/'); m = c.get('/metrics');"
        "print(json.dumps([json.loads(r.content), h.json(), m.status_code, m.content.decode()]))"
    )
    result = subprocess.run([sys.executable, "manage.py", "shell", "-v", "0", "-c", script],
                            cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    ready, health_body, metrics_status, metrics_text = json.loads(result.stdout.strip().splitlines()[-1])
    replica = ready["checks"]["replica_lag"]["replicas"]["replica_0"]
    assert replica["status"] == "unavailable" and replica["ok"] is False
    assert ready["checks"]["replica_lag"]["ok"] is False
    assert health_body["data"]["replicas"]["replica_0"]["status"] == "unavailable"
    assert metrics_status == 200
    samples = _replica_samples(metrics_text)
    assert samples["shiftboard_db_replica_up", "replica_0"] == 0.0
    assert math.isnan(samples["shiftboard_db_replica_lag_seconds", "replica_0"])
    assert math.isnan(samples["shiftboard_db_replica_lag_bytes", "replica_0"])


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_gunicorn_exports_a_working_replica_up_and_a_closed_port_down():
    """gunicorn as ``make serve`` runs it (config/gunicorn.py, multiprocess metrics),
    with two replicas: this test database (a server that answers) and a closed port.
    After a /readyz: replica_0 up 1 with a measured lag, replica_1 up 0 with NaN."""
    from tests.cache.servers import Gunicorn

    db = connection.settings_dict
    working = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    if db.get("PASSWORD"):
        working = working.replace(f"{db['USER']}@", f"{db['USER']}:{db['PASSWORD']}@")
    closed = f"postgres://postgres@127.0.0.1:{_closed_port()}/nothing"
    server = Gunicorn(workers=2, redis_url=settings.REDIS_URL or "", key_prefix=f"sbup{os.getpid()}",
                      extra_env={"DATABASE_REPLICA_URLS": f"{working},{closed}"})
    try:
        server.wait_ready()
        ready = server.api.get("/readyz")
        samples = _replica_samples(server.metrics())
    finally:
        server.stop()
    replicas = ready.body["checks"]["replica_lag"]["replicas"]
    assert replicas["replica_0"]["status"] == "ok" and replicas["replica_0"]["ok"] is True
    assert replicas["replica_1"]["status"] == "unavailable" and replicas["replica_1"]["ok"] is False
    assert samples["shiftboard_db_replica_up", "replica_0"] == 1.0
    assert samples["shiftboard_db_replica_replicating", "replica_0"] == 1.0  # the primary itself: a mirror
    assert samples["shiftboard_db_replica_lag_seconds", "replica_0"] == 0.0  # not in recovery: at its own position
    assert samples["shiftboard_db_replica_lag_bytes", "replica_0"] >= 0
    assert samples["shiftboard_db_replica_up", "replica_1"] == 0.0
    assert math.isnan(samples["shiftboard_db_replica_replicating", "replica_1"])
    assert math.isnan(samples["shiftboard_db_replica_lag_seconds", "replica_1"])
    assert math.isnan(samples["shiftboard_db_replica_lag_bytes", "replica_1"])
