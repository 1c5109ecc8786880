"""`make ops-cost`: what the operations features cost, in one short repeatable run.

1. The slow-query hook (core/db_instrumentation.py), in process: ``SELECT 1``
   executed through Django's cursor in alternating blocks with the hook on the
   connection and off; the median time per statement of each, and the difference.
2. The same hook and the connection pool on a real server: gunicorn as ``make
   serve`` runs it (config/gunicorn.py: 2 processes x GUNICORN_THREADS threads,
   PERF_HEADERS on) in three configurations, started in turn, each twice (A B C A B C):
     persistent  - CONN_MAX_AGE connections, hook on (SLOW_QUERY_MS=100): today's default
     hook off    - as persistent, SLOW_QUERY_MS=0
     pool        - DATABASE_POOL=1 (psycopg pool per worker), hook on
   For each: the median server time (Server-Timing ``app``) of 200 sequential
   job-list misses (unique query parameter), then wrk for DURATION seconds on
   job-detail misses (8 connections): requests/s and p50/p99, and the server
   connections the app holds right after (pg_stat_activity).

Data: its own database ``shiftboard_ops_cost`` (OPS_COST_DB_NAME) on the
PostgreSQL server of DATABASE_URL (default this machine's), created, migrated and
seeded with 1,000 jobs if empty; Redis db OPS_COST_REDIS_DB (default 7) at the
host of REDIS_URL, only keys under its own prefix, deleted at the end. Prints a
Markdown table; writes nothing else.
"""
from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

from . import load
from .run import Server, ensure_database, free_port

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "opscost"


def urls() -> tuple[str, str]:
    raw = os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/postgres"
    u = urllib.parse.urlsplit(raw)
    name = os.environ.get("OPS_COST_DB_NAME", "shiftboard_ops_cost")
    db = urllib.parse.urlunsplit((u.scheme, u.netloc, f"/{name}", u.query, ""))
    r = urllib.parse.urlsplit(os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379")
    redis = urllib.parse.urlunsplit((r.scheme, r.netloc, f"/{int(os.environ.get('OPS_COST_REDIS_DB', '7'))}", "", ""))
    return db, redis


def base_env(db_url: str, redis_url: str, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("ROOT_URLCONF", "DATABASE_POOL", "SLOW_QUERY_MS")}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.base", DATABASE_URL=db_url, REDIS_URL=redis_url,
        SECRET_KEY="ops-cost-" + secrets.token_urlsafe(32), DEBUG="0", SECURE_SSL_REDIRECT="0",
        ALLOWED_HOSTS="127.0.0.1", PERF_HEADERS="1", DEBUG_TOOLBAR="0", LOG_LEVEL="ERROR",
        CACHE_KEY_PREFIX=PREFIX, PYTHONWARNINGS="ignore:No directory at", PYTHONPATH=str(ROOT),
        # wrk's unique "_b=" must stay in the key to force the misses measured.
        RESPONSE_CACHE_KEY_EXTRA_PARAMS="_b",
    )
    env.update(extra)
    return env


def hook_in_process(db_url: str, blocks: int, per_block: int) -> dict:
    """Part 1, in a child process on the same settings (keeps this one Django-free)."""
    code = f"""
import json, time, django
django.setup()
from django.db import connection
from core.db_instrumentation import slow_query_wrapper, install
connection.ensure_connection()
install(connection)
on, off = [], []
with connection.cursor() as c:
    for b in range({blocks}):
        for mode in (("on", "off") if b % 2 == 0 else ("off", "on")):
            if mode == "on":
                install(connection)
            elif slow_query_wrapper in connection.execute_wrappers:
                connection.execute_wrappers.remove(slow_query_wrapper)
            t = time.perf_counter()
            for _ in range({per_block}):
                c.execute("SELECT 1")
            (on if mode == "on" else off).append((time.perf_counter() - t) / {per_block} * 1e6)
print(json.dumps({{"on": on, "off": off}}))
"""
    import json

    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=base_env(db_url, ""), check=True,
                         capture_output=True, text=True)
    data = json.loads(out.stdout.strip().splitlines()[-1])
    on, off = statistics.median(data["on"]), statistics.median(data["off"])
    diffs = [a - b for a, b in zip(data["on"], data["off"])]
    return {"on_us": on, "off_us": off, "diff_us": statistics.median(diffs), "blocks": blocks,
            "per_block": per_block}


def wrapper_alone(n: int = 200_000) -> dict:
    """The hook's own cost around a no-op execute (no database): what it adds to
    every statement, without the round trip's noise."""
    code = f"""
import json, time, django
django.setup()
from core import db_instrumentation as di
di._threshold = 0.1
noop = lambda sql, params, many, context: None
ctx = {{"connection": None}}
runs = {{"direct": [], "wrapped": []}}
for _ in range(7):
    t = time.perf_counter()
    for _ in range({n}):
        noop("SELECT 1", None, False, ctx)
    runs["direct"].append((time.perf_counter() - t) / {n} * 1e9)
    t = time.perf_counter()
    for _ in range({n}):
        di.slow_query_wrapper(noop, "SELECT 1", None, False, ctx)
    runs["wrapped"].append((time.perf_counter() - t) / {n} * 1e9)
print(json.dumps(runs))
"""
    import json

    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=base_env("sqlite:////tmp/unused.sqlite3", ""),
                         check=True, capture_output=True, text=True)
    runs = json.loads(out.stdout.strip().splitlines()[-1])
    return {"direct_ns": min(runs["direct"]), "wrapped_ns": min(runs["wrapped"])}


def connection_lifecycle(db_url: str, rounds: int, n: int = 1000) -> dict:
    """Per request, in process: request_started, one SELECT 1, request_finished (what
    Django does to the connection around every request), with persistent
    connections (the health check on the first use of each request) and with the
    pool (take a connection at the first query, give it back at the end, checked
    when taken). Alternating child processes, ``rounds`` each."""
    code = f"""
import json, time, django
django.setup()
from django.core.signals import request_finished, request_started
from django.db import connection
def one():
    request_started.send(sender=None)
    with connection.cursor() as c:
        c.execute("SELECT 1")
    request_finished.send(sender=None)
for _ in range(50):
    one()
t = time.perf_counter()
for _ in range({n}):
    one()
print(json.dumps((time.perf_counter() - t) / {n} * 1e6))
"""
    import json

    out = {"persistent": [], "pool": []}
    for _ in range(rounds):
        for name, pool in (("persistent", "0"), ("pool", "1")):
            env = base_env(db_url, "", DATABASE_POOL=pool)
            res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True,
                                 text=True)
            out[name].append(json.loads(res.stdout.strip().splitlines()[-1]))
    return {k: statistics.median(v) for k, v in out.items()} | {"runs": out}


def prepare(db_url: str, redis_url: str) -> None:
    ensure_database(db_url)
    env = base_env(db_url, redis_url)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    # A throwaway database: seed may give its users the published demo password.
    subprocess.run([sys.executable, "manage.py", "seed", "--jobs", "1000", "--if-empty"], cwd=ROOT,
                   env={**env, "ALLOW_DEMO_PASSWORD": "1"}, check=True, stdout=subprocess.DEVNULL)


def job_ids(port: int, n: int = 50) -> list[int]:
    import json

    probe = load.Probe("127.0.0.1", port)
    ids = []
    for page in (1, 2, 3):
        body = json.loads(probe.request("GET", f"/api/v1/jobs/?page={page}")["body"])
        ids += [item["id"] for item in body["data"]]
    probe.close()
    return ids[:n]


def measure(name: str, env: dict, duration: float) -> dict:
    port = free_port(18700)
    server = Server(env, port, Path(os.devnull))
    try:
        probe = load.Probe("127.0.0.1", port)
        tag = secrets.token_hex(4)
        for i in range(20):  # warm-up: connections, imports, the pool
            probe.request("GET", f"/api/v1/jobs/?w={tag}{i}")
        # "_b=" (RESPONSE_CACHE_KEY_EXTRA_PARAMS above): any other unknown parameter is
        # dropped from the cache key, and these would be hits, not the misses measured.
        answers = [probe.request("GET", f"/api/v1/jobs/?_b={tag}{i}") for i in range(200)]
        app = [a["app_ms"] for a in answers]
        misses = sum(a["x_cache"] == "MISS" for a in answers)
        probe.close()
        if misses != len(answers):
            raise RuntimeError(f"{name}: {misses} of {len(answers)} job-list probes were cache misses")
        reqs = [load.Req(f"/api/v1/jobs/{i}/") for i in job_ids(port)]
        wrk = load.run_wrk(f"http://127.0.0.1:{port}", reqs, duration=duration, connections=8, threads=2, bust=True)
        conns = server_connections(env["DATABASE_URL"])
    finally:
        server.stop()
    return {"config": name, "app_ms": statistics.median(app), "rps": wrk["rps"], "p50_ms": wrk["p50_ms"],
            "p99_ms": wrk["p99_ms"], "errors": wrk["errors"], "connections": conns}


def server_connections(db_url: str) -> int:
    """Connections to the ops-cost database other than this one (the app's)."""
    import psycopg

    u = urllib.parse.urlsplit(db_url)
    admin = urllib.parse.urlunsplit(("postgresql", u.netloc, "/postgres", u.query, ""))
    with psycopg.connect(admin, autocommit=True) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [u.path.lstrip("/")],
        ).fetchone()[0]


def cleanup_redis(redis_url: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{PREFIX}:*", count=1000))
    for i in range(0, len(keys), 500):
        client.delete(*keys[i:i + 500])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds of wrk per configuration and round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--in-process-only", action="store_true", help="skip the gunicorn runs")
    args = parser.parse_args()
    if not args.in_process_only and not load.have_wrk():
        sys.exit("wrk is needed (apt-get install wrk)")
    db_url, redis_url = urls()
    started = time.time()
    prepare(db_url, redis_url)
    alone = wrapper_alone()
    hook = hook_in_process(db_url, blocks=20, per_block=2000)
    lifecycle = connection_lifecycle(db_url, rounds=5)
    print(f"Slow-query hook alone (no-op execute, best of 7 x 200,000): {alone['direct_ns']:.0f} ns direct, "
          f"{alone['wrapped_ns']:.0f} ns through the hook: +{alone['wrapped_ns'] - alone['direct_ns']:.0f} ns "
          f"per statement")
    print(f"Slow-query hook, in process: SELECT 1 through Django's cursor, {hook['blocks']} alternating blocks "
          f"of {hook['per_block']}: hook on {hook['on_us']:.2f} us, off {hook['off_us']:.2f} us per statement "
          f"(median of paired differences {hook['diff_us']:+.2f} us)")
    print(f"Connection per request, in process (request_started, SELECT 1, request_finished; median of 5 "
          f"alternating runs of 1,000): persistent {lifecycle['persistent']:.0f} us, pool {lifecycle['pool']:.0f} us "
          f"(runs: persistent {', '.join(f'{v:.0f}' for v in lifecycle['runs']['persistent'])}; "
          f"pool {', '.join(f'{v:.0f}' for v in lifecycle['runs']['pool'])})")
    if args.in_process_only:
        return
    configs = [
        ("persistent (default)", {"DATABASE_POOL": "0", "SLOW_QUERY_MS": "100"}),
        ("hook off", {"DATABASE_POOL": "0", "SLOW_QUERY_MS": "0"}),
        ("pool", {"DATABASE_POOL": "1", "SLOW_QUERY_MS": "100"}),
    ]
    rows = []
    try:
        for rnd in range(args.rounds):
            for name, extra in configs:
                row = measure(name, base_env(db_url, redis_url, **extra), args.duration)
                row["round"] = rnd + 1
                rows.append(row)
                print(f"[ops-cost] round {rnd + 1} {name}: app {row['app_ms']:.2f} ms, "
                      f"{row['rps']:.0f} req/s, p50 {row['p50_ms']:.2f} ms, p99 {row['p99_ms']:.2f} ms, "
                      f"{row['connections']} connections", flush=True)
    finally:
        cleanup_redis(redis_url)
    print()
    print("| configuration | round | job-list miss, server time (median of 200) | job-detail miss: req/s | p50 ms "
          "| p99 ms | errors | DB connections after |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['config']} | {r['round']} | {r['app_ms']:.2f} ms | {r['rps']:.0f} | {r['p50_ms']:.2f} | "
              f"{r['p99_ms']:.2f} | {r['errors']} | {r['connections']} |")
    threads = os.environ.get("GUNICORN_THREADS", "8")
    print(f"\n(gunicorn 2 processes x {threads} threads (config/gunicorn.py), wrk 2 threads x 8 connections, "
          f"{args.duration:.0f} s each; {os.cpu_count()} cores; total {time.time() - started:.0f} s)")


if __name__ == "__main__":
    main()
