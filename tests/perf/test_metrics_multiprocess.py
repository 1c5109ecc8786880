"""Prometheus multiprocess mode (PROMETHEUS_MULTIPROC_DIR, as ``make serve`` sets it
for gunicorn's workers): samples written by separate processes are summed by
/metrics, whichever process serves it."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import os, sys
import django
django.setup()
from django.test import Client
client = Client()
for _ in range(int(sys.argv[1])):
    assert client.get("/api/v1/health/").status_code == 200
if sys.argv[2] == "read":
    sys.stdout.write(client.get("/metrics", REMOTE_ADDR="127.0.0.1").content.decode())
"""


def _process(tmp_path, requests: int, mode: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.test",
        DATABASE_URL=f"sqlite:///{tmp_path / 'metrics.sqlite3'}",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prom"),
        ALLOWED_HOSTS="testserver",
        METRICS_ALLOWED_NETWORKS="127.0.0.1/32",
    )
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(requests), mode],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _health_requests(metrics: str) -> float:
    total = 0.0
    for line in metrics.splitlines():
        if line.startswith("django_http_requests_total_by_view_transport_method_total{") and 'view="health"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_sum_every_process(tmp_path):
    (tmp_path / "prom").mkdir()
    _process(tmp_path, 3, "write")
    _process(tmp_path, 4, "write")
    metrics = _process(tmp_path, 0, "read")
    assert _health_requests(metrics) == 7
    assert len(list((tmp_path / "prom").glob("counter_*.db"))) == 3  # one file per process
