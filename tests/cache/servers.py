"""Real servers for the cross-process cache tests: gunicorn serving this project
(production settings: DEBUG off, Redis, PostgreSQL test database) and a private
redis-server that a test may stop or pause. Plus a tiny HTTP client (stdlib), the
development server (DEBUG=1) for the tests of what exists only there, and gunicorn
over a SQLite file with production variables only (tests/core: workers, deploy)."""
from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import redis
from django.conf import settings
from django.db import connection

ROOT = Path(settings.BASE_DIR)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc: subprocess.Popen, timeout: float) -> None:
    """SIGTERM to ``proc`` (a server started by a test) and up to ``timeout`` s for it
    to exit; then SIGKILL and up to 5 s more. Nothing if it has already exited."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def gunicorn_command(*args: str) -> list[str]:
    """``gunicorn config.wsgi`` with the project's config (config/gunicorn.py, as ``make
    serve``) and no control socket, then ``args``."""
    return [
        str(Path(sys.executable).parent / "gunicorn"),
        "config.wsgi",
        "-c", str(ROOT / "config" / "gunicorn.py"),
        "--no-control-socket",  # the default path is shared by every gunicorn on the machine
        *args,
    ]


def production_env(**extra: str) -> dict[str, str]:
    """Production variables only (not the test settings' defaults in os.environ):
    PATH, HOME and LANG from here, the base settings module, then ``extra``."""
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
    env.update(DJANGO_SETTINGS_MODULE="config.settings.base", **extra)
    return env


def health_status(port: int, timeout: float) -> int:
    """The status of /api/v1/health/ on ``port`` (OSError: no answer within ``timeout`` s)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/api/v1/health/", headers={"Host": "127.0.0.1"})
        return conn.getresponse().status
    finally:
        conn.close()


def health_answers(port: int, timeout: float = 2) -> bool:
    """Whether /api/v1/health/ on ``port`` answers 200 within ``timeout`` seconds."""
    try:
        return health_status(port, timeout) == 200
    except OSError:
        return False


@contextmanager
def sqlite_gunicorn(
    database: Path,
    *,
    workers: int,
    args: tuple[str, ...] = (),
    ready: Callable[[subprocess.Popen, int], bool] | None = None,
    **env: str,
) -> Iterator[tuple[subprocess.Popen, int]]:
    """gunicorn (``gunicorn_command``, ``workers`` and ``args``) on a free port over the
    SQLite file ``database``, with production variables only plus ``env``: its process
    and port once ``ready(process, port)`` (by default: the health endpoint answers
    200), stopped at the end (see ``_running``; 30 s to start)."""
    port = free_port()
    command = gunicorn_command("--workers", str(workers), "--bind", f"127.0.0.1:{port}", *args)
    variables = production_env(
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="0",
        DATABASE_URL=f"sqlite:///{database}",
        LOG_LEVEL="WARNING",
        **env,
    )
    probe = (lambda proc: ready(proc, port)) if ready else (lambda proc: health_answers(port))
    with _running("gunicorn", command, variables, ready=probe, startup_seconds=30) as proc:
        yield proc, port


@contextmanager
def _running(
    name: str, command: list[str], env: dict[str, str], *, ready: Callable[[subprocess.Popen], bool],
    startup_seconds: float,
) -> Iterator[subprocess.Popen]:
    """``command`` run from the project's root with ``env``, yielded once ``ready(process)``,
    terminated at the end (killed after 20 s). One that exits, or is not ready within
    ``startup_seconds``, raises RuntimeError with the end of its stderr."""
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + startup_seconds
        while not ready(proc):
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"{name} did not start: {proc.communicate()[1].decode(errors='replace')[-2000:]}")
            time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def redis_url_db(url: str) -> str:
    """The database part of a redis:// URL (``/6``), or ``/0``."""
    path = url.rsplit("/", 1)
    return "/" + path[1] if len(path) == 2 and path[1].isdigit() else "/0"


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: dict | None
    elapsed: float
    request_id: str

    @property
    def data(self):
        return (self.body or {}).get("data")

    @property
    def x_cache(self) -> str | None:
        return self.headers.get("x-cache")


class Gunicorn:
    """``gunicorn config.wsgi`` on a free port with the given worker count. The
    access log records each request's worker pid by request id, so a test can
    tell which process answered."""

    def __init__(self, *, workers: int, redis_url: str, key_prefix: str, extra_env: dict | None = None):
        self.port = free_port()
        self.workers = workers
        self.dir = Path(tempfile.mkdtemp(prefix="sb-gunicorn-"))
        self.access_log = self.dir / "access.log"
        db = connection.settings_dict
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.base",
            "DEBUG": "0",
            "DEBUG_TOOLBAR": "0",
            "SECRET_KEY": "gunicorn-test-secret-key-0123456789-abcdefghijklmnop",
            "SECURE_SSL_REDIRECT": "0",
            "ALLOWED_HOSTS": "127.0.0.1",
            "PERF_HEADERS": "1",
            # /metrics for the tests' own reads of the counters (db_queries).
            "METRICS_ALLOWED_NETWORKS": "127.0.0.1/32",
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
            "REDIS_URL": redis_url,
            # An explicit REDIS_URL means that server; empty: this run's own Redis
            # (REDIS_URL, Sentinel or Cluster from the environment, as settings read it).
            **({"REDIS_SENTINELS": "", "REDIS_CLUSTER_NODES": ""} if redis_url else {}),
            "CACHE_KEY_PREFIX": key_prefix,
            "PASSWORD_HASHERS": "django.contrib.auth.hashers.MD5PasswordHasher",
            "THROTTLE_APPLICATIONS": "100000/hour",
            "THROTTLE_PAYMENTS": "100000/hour",
            "THROTTLE_REVIEWS": "100000/hour",
            "LOG_LEVEL": "WARNING",
            "PROMETHEUS_MULTIPROC_DIR": str(self.dir),
            # The tests' way to force a fresh read (``?_fresh=<unique>``): a parameter
            # no view reads is otherwise not part of a key (core/cache/query.py).
            "RESPONSE_CACHE_KEY_EXTRA_PARAMS": "_fresh",
            **(extra_env or {}),
        }
        if db.get("PASSWORD"):
            env["DATABASE_URL"] = env["DATABASE_URL"].replace(f"{db['USER']}@", f"{db['USER']}:{db['PASSWORD']}@")
        # Read replicas configured for this run: the same test database on each replica
        # (under the test runner the replica aliases mirror the primary in this process).
        replica_urls = [
            f"postgres://{r['USER']}@{r['HOST'] or '127.0.0.1'}:{r['PORT'] or 5432}/{db['NAME']}"
            for alias, r in settings.DATABASES.items()
            if alias.startswith("replica_")
        ]
        if replica_urls and "DATABASE_REPLICA_URLS" not in (extra_env or {}):
            env["DATABASE_REPLICA_URLS"] = ",".join(replica_urls)
        self.env = env
        self.stderr = open(self.dir / "stderr.log", "wb")
        self.proc = subprocess.Popen(
            gunicorn_command(
                "--workers", str(workers),
                "--bind", f"127.0.0.1:{self.port}",
                "--timeout", "30",
                "--access-logfile", str(self.access_log),
                "--access-logformat", "%(p)s %({x-request-id}o)s",
            ),
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self.stderr,
        )
        self.api = Api(self.port)

    def wait_ready(self, timeout: float = 30.0, path: str = "/api/v1/health/") -> None:
        """Until ``path`` answers 200 (``/livez``: without asking the databases)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.log_tail()}")
            try:
                if self.api.get(path).status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"gunicorn did not answer on :{self.port}: {self.log_tail()}")

    def log_tail(self) -> str:
        self.stderr.flush()
        return (self.dir / "stderr.log").read_text(errors="replace")[-3000:]

    def worker_pids_by_request(self) -> dict[str, int]:
        pids = {}
        if self.access_log.exists():
            for line in self.access_log.read_text().splitlines():
                parts = line.split()  # "<pid> request-id" (gunicorn writes the pid as <1234>)
                if len(parts) == 2 and parts[0].strip("<>").isdigit():
                    pids[parts[1]] = int(parts[0].strip("<>"))
        return pids

    def metrics(self) -> str:
        """/metrics as Prometheus text (loopback callers may read it)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        try:
            conn.request("GET", "/metrics", headers={"Host": "127.0.0.1"})
            return conn.getresponse().read().decode()
        finally:
            conn.close()

    def db_queries(self) -> dict[tuple[str, str], float]:
        """``shiftboard_db_queries_total`` summed over the workers: (database, kind) -> count."""
        import re

        pattern = r'^shiftboard_db_queries_total\{database="([^"]+)",kind="([^"]+)"\} ([0-9.e+]+)$'
        return {(d, k): float(v) for d, k, v in re.findall(pattern, self.metrics(), flags=re.M)}

    def stop(self) -> None:
        stop_process(self.proc, timeout=10)
        self.stderr.close()
        if os.environ.get("KEEP_GUNICORN_LOGS"):
            shutil.copy(self.dir / "stderr.log", f"/tmp/gunicorn-{self.port}.log")
        shutil.rmtree(self.dir, ignore_errors=True)


@contextmanager
def gunicorn_pair(key_prefix: str, *, read_workers: int) -> Iterator[tuple[Gunicorn, Gunicorn]]:
    """Gunicorn A (1 worker, for the writes) and B (``read_workers``, for the reads)
    on this run's Redis and ``key_prefix``, both answering; at the end both are
    stopped and the prefix's keys deleted."""
    a = Gunicorn(workers=1, redis_url=settings.REDIS_URL, key_prefix=key_prefix)
    b = Gunicorn(workers=read_workers, redis_url=settings.REDIS_URL, key_prefix=key_prefix)
    try:
        a.wait_ready()
        b.wait_ready()
        yield a, b
    finally:
        a.stop()
        b.stop()
        delete_prefix(settings.REDIS_URL, key_prefix)


class Api:
    """One new TCP connection per request (gunicorn's sync workers close it anyway,
    and a new connection may land on any worker)."""

    def __init__(self, port: int):
        self.port = port

    def request(self, method: str, path: str, *, token: str | None = None, body=None, headers=None) -> Response:
        request_id = uuid.uuid4().hex
        all_headers = {"X-Request-ID": request_id, "Accept": "application/json", "Host": "127.0.0.1"}
        if token:
            all_headers["Authorization"] = f"Token {token}"
        payload = None
        if body is not None:
            payload = json.dumps(body)
            all_headers["Content-Type"] = "application/json"
        all_headers.update(headers or {})
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        start = time.perf_counter()
        try:
            conn.request(method, path, body=payload, headers=all_headers)
            raw = conn.getresponse()
            content = raw.read()
            elapsed = time.perf_counter() - start
            response_headers = {k.lower(): v for k, v in raw.getheaders()}
            status = raw.status
        finally:
            conn.close()
        parsed = json.loads(content) if content else None
        return Response(status, response_headers, parsed, elapsed, request_id)

    def get(self, path: str, **kw) -> Response:
        return self.request("GET", path, **kw)


def resp2_command(port: int, *command, password: str | None = None):
    """One command on a connection of its own, its reply read. RESP2: a paused
    Redis holds RESP3's HELLO as it holds every command (CLIENT UNPAUSE too)."""
    conn = redis.Connection(host="127.0.0.1", port=port, password=password, socket_timeout=10, protocol=2)
    try:
        conn.send_command(*command)
        return conn.read_response()
    finally:
        conn.disconnect()


@dataclass
class RedisServer:
    """A private redis-server (no persistence) that a test may stop, restart or pause."""

    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    @staticmethod
    def available() -> bool:
        return shutil.which("redis-server") is not None and shutil.which("redis-cli") is not None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.cli("PING") == "PONG":
                return
            time.sleep(0.05)
        raise RuntimeError(f"redis-server on :{self.port} did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None

    def cli(self, *args: str) -> str:
        result = subprocess.run(
            ["redis-cli", "-p", str(self.port), *args], capture_output=True, text=True, timeout=10
        )
        return result.stdout.strip()

    def pause(self, milliseconds: int) -> None:
        assert self.cli("CLIENT", "PAUSE", str(milliseconds), "ALL") == "OK"

    def unpause(self) -> None:
        assert self.cli("CLIENT", "UNPAUSE") == "OK"

    @contextmanager
    def off_cpu(self):
        """The server process stopped (SIGSTOP) for the block, then continued: what
        arrives meanwhile waits in the kernel, and Redis reads it all in one turn
        of its event loop, as when the scheduler does not run it for a while."""
        self.proc.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            self.proc.send_signal(signal.SIGCONT)


def dev_env(database: Path, **extra: str) -> dict[str, str]:
    """The environment of a development server (DEBUG=1, so the browsable API and
    the Debug Toolbar are on) over the SQLite file ``database``, with local-memory
    cache whatever this run's Redis; ``extra`` on top."""
    dropped = {"REDIS_URL", "REDIS_SENTINELS", "REDIS_CLUSTER_NODES", "PERF_HEADERS", "DEBUG_TOOLBAR"}
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env.update(
        DEBUG="1", DJANGO_SETTINGS_MODULE="config.settings.base", DATABASE_URL=f"sqlite:///{database}", SECRET_KEY=""
    )
    return {**env, **extra}


@contextmanager
def dev_server(env: dict[str, str], *, startup_seconds: float = 15) -> Iterator[str]:
    """``manage.py runserver`` with ``env`` (see ``dev_env``) on a free port: its base
    URL once /api/v1/health/ answers 200, the server stopped at the end. A server
    that exits or does not answer in ``startup_seconds`` fails with its stderr."""
    port = free_port()
    command = [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload", "--skip-checks"]
    with _running(
        "the dev server", command, env, ready=lambda proc: health_answers(port, timeout=15),
        startup_seconds=startup_seconds,
    ):
        yield f"http://127.0.0.1:{port}"


def delete_prefix(redis_url: str, prefix: str) -> None:
    """Test clean-up: remove this run's keys (SCAN, test-only) from a shared Redis."""
    import redis

    if not redis_url:  # Sentinel or Cluster: this run's own cache client reaches the same servers
        from django.core.cache import cache

        client = cache.client.get_client(write=True)
        for key in list(client.scan_iter(match=f"{prefix}:*", count=1000)):
            client.delete(key)
        return
    client = redis.Redis.from_url(redis_url)
    try:
        batch = []
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                client.delete(*batch)
                batch = []
        if batch:
            client.delete(*batch)
    finally:
        client.close()
