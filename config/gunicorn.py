"""gunicorn settings used by ``make serve`` (``gunicorn -c config/gunicorn.py``).

Prometheus in multiprocess mode: with PROMETHEUS_MULTIPROC_DIR set (``make serve``
sets it and empties the directory before gunicorn starts), every worker writes its
metric samples to files there and /metrics aggregates all workers. When a worker
exits its live gauges are marked dead, so a restarted worker does not count twice.
"""
import os


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
