"""A bad deploy refuses to start (issue 10, class 4): DEBUG off, a per-process
cache and several workers would serve stale reads, so ``check --deploy`` fails
and gunicorn does not start; with REDIS_URL (or one worker) both pass."""
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

from core.checks import per_process_cache_problem
from tests.cache.servers import free_port, gunicorn_command, production_env

ROOT = Path(__file__).resolve().parents[2]
LOCMEM = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
REDIS = {"default": {"BACKEND": "django_redis.cache.RedisCache"}}


def _env(**extra) -> dict:
    return production_env(SECRET_KEY="deploy-test-" + "k" * 50, ALLOWED_HOSTS="api.example.com,127.0.0.1", **extra)


def test_the_rule():
    prod = dict(DEBUG=False)
    assert per_process_cache_problem(workers=2, settings=SimpleNamespace(CACHES=LOCMEM, **prod))
    assert per_process_cache_problem(workers=1, settings=SimpleNamespace(CACHES=LOCMEM, **prod)) is None
    assert per_process_cache_problem(workers=4, settings=SimpleNamespace(CACHES=REDIS, **prod)) is None
    assert per_process_cache_problem(workers=4, settings=SimpleNamespace(CACHES=LOCMEM, DEBUG=True)) is None


def _check_deploy(**extra):
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=_env(**extra), capture_output=True, text=True, timeout=120,
    )


def test_check_deploy_fails_on_a_per_process_cache_with_several_workers():
    done = _check_deploy()  # WEB_CONCURRENCY unset: make serve's 2 workers
    assert done.returncode != 0
    assert "shiftboard.E001" in done.stderr and "REDIS_URL" in done.stderr
    assert _check_deploy(WEB_CONCURRENCY="3").returncode != 0


def test_check_deploy_passes_with_redis_or_one_worker():
    done = _check_deploy(REDIS_URL="redis://127.0.0.1:6379/0")  # not contacted by the check
    assert done.returncode == 0, done.stderr
    done = _check_deploy(WEB_CONCURRENCY="1")
    assert done.returncode == 0, done.stderr


def test_gunicorn_refuses_to_start_with_several_workers_and_a_per_process_cache(tmp_path):
    args = gunicorn_command("--bind", f"127.0.0.1:{free_port()}")
    env = _env(DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}", SECURE_SSL_REDIRECT="0")
    done = subprocess.run([*args, "--workers", "2"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "Refusing to start" in done.stderr and "REDIS_URL" in done.stderr
    # one worker starts
    proc = subprocess.Popen([*args, "--workers", "1"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        time.sleep(3)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    finally:
        proc.terminate()
        proc.wait(timeout=20)
