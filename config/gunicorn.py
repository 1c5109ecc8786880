"""gunicorn settings used by ``make serve`` (``gunicorn -c config/gunicorn.py``).

Worker model: WEB_CONCURRENCY processes (default 2), each serving GUNICORN_THREADS
requests at once (default 1: sync workers; above 1 gunicorn uses its threaded
worker). With DATABASE_POOL=1 (``make serve``'s default on PostgreSQL) each
process has one psycopg pool sized by the settings (DATABASE_POOL_MAX_SIZE,
default GUNICORN_THREADS): at most WEB_CONCURRENCY x DATABASE_POOL_MAX_SIZE
connections per host (docs/operations.md).

Prometheus in multiprocess mode: with PROMETHEUS_MULTIPROC_DIR set (``make serve``
sets it and empties the directory before gunicorn starts), every worker writes its
metric samples to files there and /metrics aggregates all workers. When a worker
exits its live gauges are marked dead, so a restarted worker does not count twice.

LOG_FORMAT=json: gunicorn's own lines (start, worker boot, errors) are JSON too, and
its access log is left off (the app writes one JSON access line per request).
"""
import os

workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))

if os.environ.get("LOG_FORMAT", "plain").lower() == "json":
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "core.logging.JsonFormatter"}},
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"},
        },
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["console"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": False},
        },
    }


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
