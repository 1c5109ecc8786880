"""gunicorn settings used by ``make serve`` (``gunicorn -c config/gunicorn.py``).

Worker model: WEB_CONCURRENCY processes (default 2) of gunicorn's threaded
``gthread`` worker, each serving GUNICORN_THREADS requests at once (default 8),
with new connections shared out evenly between the processes (config/workers.py).
With the ``sync`` worker (the old default) each worker read one request at a
time, so as many idle connections as there are workers that never finish their
request froze the server until the 30 s worker timeout. A ``gthread`` worker
keeps connections that have sent nothing in its poller (no thread is held); a
connection that sent part of a request holds one thread, so a worker keeps
answering while fewer than GUNICORN_THREADS such connections are open to it
(tests/core/test_slow_clients.py). On the internet put a buffering reverse proxy
(nginx, a cloud load balancer) in front as well: it reads whole requests before
passing them on, which no number of threads can replace.

A per-process cache (no REDIS_URL) with several workers and DEBUG off is refused
at start (``on_starting``), as ``check --deploy`` refuses it (core/checks.py):
each worker would keep its own copies and invalidate only its own. With DATABASE_POOL=1 (``make serve``'s default on PostgreSQL) each
process has one psycopg pool sized by the settings (DATABASE_POOL_MAX_SIZE,
default GUNICORN_THREADS): at most WEB_CONCURRENCY x DATABASE_POOL_MAX_SIZE
connections per host (docs/operations.md).

Prometheus in multiprocess mode: with PROMETHEUS_MULTIPROC_DIR set (``make serve``
sets it and empties the directory before gunicorn starts), every worker writes its
metric samples to files there and /metrics aggregates all workers. When a worker
exits its live gauges are marked dead, so a restarted worker does not count twice.

LOG_FORMAT=json: gunicorn's own lines (start, worker boot, errors) are JSON too, and
those of a request carry its id: the worker (config/workers.py) keeps the request
the app's middleware saw until gunicorn is done with it, and the log filter reads
it from there ("Error handling request" when the app raises past WSGI). Its access
log stays off (the app writes one JSON access line per request); given
``--access-logfile``, its lines are JSON on stderr too, with the request id.
"""
import os

workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "config.workers.BalancedThreadWorker"  # gthread, balanced (config/workers.py)
threads = int(os.environ.get("GUNICORN_THREADS", "8"))

if os.environ.get("LOG_FORMAT", "plain").lower() == "json":
    logger_class = "config.gunicorn_logging.JsonLogger"  # access lines only with --access-logfile
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "core.logging.JsonFormatter"}},
        "filters": {
            "request_context": {"()": "core.logging.RequestContextFilter"},
            "gunicorn_access": {"()": "core.logging.GunicornAccessFilter"},
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
                "filters": ["request_context", "gunicorn_access"],
            },
        },
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["console"], "propagate": False},
            # Written only with --access-logfile (config/gunicorn_logging.py; make
            # serve passes none: the app writes one access line per request).
            "gunicorn.access": {"level": "INFO", "handlers": ["console"], "propagate": False},
        },
    }


def on_starting(server):
    # Settings only (no django.setup() in the master: the workers are forked from it).
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    from core.checks import per_process_cache_problem

    problem = per_process_cache_problem(workers=server.cfg.workers)
    if problem:
        raise SystemExit(f"Refusing to start: {problem}")


def post_worker_init(worker):
    """Once a worker has loaded the application (and its URL configuration, which
    imports every view, as its first request would), the objects made so far --
    modules, classes, settings, ~110,000 of them -- are moved out of the garbage
    collector's reach (``gc.freeze``): they live as long as the process, and a
    full collection no longer walks them. Measured on 2 cores under wrk, every
    request a cache miss of the job list (allocation-heavy), 100,000 jobs: a full
    collection walked about 4,500 objects instead of 113,000 and took 3-19 ms
    instead of 35-101 ms (two servers each way); in four alternating 6-second
    runs each, the p99 was 55-143 ms (median 64.5) with it and 68-238 ms (median
    218.5) without, throughput the same within noise (304 against 310 req/s)."""
    import gc

    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - imports the URL conf and the views
    gc.collect()
    gc.freeze()


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
