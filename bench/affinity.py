"""CPU layouts of the throughput runs.

On a small machine the load driver, the server, PostgreSQL and Redis share the
same cores, so a request's figure also carries what the driver and the services
cost on the server's cores (and the context switches between them: a Redis round
trip on the server's own core hands that core to Redis). ``make bench``
measures the per-endpoint table in two layouts, every case in both
(``--layouts=shared``: the first only):

- **shared**: every process may run on every CPU (the layout of earlier runs);
- **pinned**: the server (gunicorn's master, workers and their threads) alone on
  the last CPU; the bench itself, its load driver (wrk, or the Python driver),
  and the local PostgreSQL and Redis processes on the others. That is the
  layout of a deployment, where clients, the database and the cache are other
  machines, and what the issue's "pin the driver and server to separate cores"
  asks for. With this table in a run, the throughput targets are judged in it
  and the shared table's figures are reported beside them (bench/report.py,
  ``targets``).

The pinned layout's server is one of its own, sized for that core: one gunicorn
worker (``--pinned-workers``) of GUNICORN_THREADS threads, in ``--pinned-rounds``
rounds (bench/run.py, ``pinned_table``). In the first run with both layouts
(2026-12-01, 2 cores, 100,000 jobs, bench/results/2026-12-01-layouts) the
pinned table reused the two-worker server of the shared one, and its floor ran
at 698 req/s with a p95 of 661 ms against 1,752 req/s and 14.75 ms shared: two
processes squeezed onto one core, whose accept loops starved behind the busy
threads. Measured on 2026-12-01 on another VM of the same kind (3 s wrk runs,
8 connections, three rounds each): two workers on the core did not stall there
(floor 1,612-1,665 req/s, job-list hit ÷ floor 0.77-0.81), one worker served
the floor at 1,742-1,769 req/s with a hit ÷ floor of 0.81-0.85. One process per
core is what a threaded worker is sized to (one interpreter lock per process),
so the pinned server has one. That core was fully used in every case (no idle
time), so its table compares what each request costs the server's core: the
hit ÷ floor figure of a deployment, where a hit's Redis work (about 0.1 ms of
CPU, the Lua check of its row versions) is spent on the cache's own machine;
the shared layout takes it from the server's two cores.

Each process's previous affinity is put back when the pinned section ends (the
local PostgreSQL and Redis are shared services: they are never stopped, only
confined for the duration of those runs)."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

SERVICE_NAMES = ("postgres", "redis-server")


def available() -> bool:
    return hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) >= 2


def split() -> tuple[set[int], set[int]]:
    """(the server's CPUs, everyone else's): the last CPU, and the others."""
    cpus = sorted(os.sched_getaffinity(0))
    return {cpus[-1]}, set(cpus[:-1])


def _tasks(pid: int) -> list[int]:
    try:
        return [int(t.name) for t in Path(f"/proc/{pid}/task").iterdir()]
    except OSError:
        return []


def _pids(match) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if match(int(entry.name)):
                    out.append(int(entry.name))
    return out


def process_group(pgid: int) -> list[int]:
    return _pids(lambda pid: os.getpgid(pid) == pgid)


def services() -> list[int]:
    """The local PostgreSQL and Redis processes (none when they run elsewhere)."""
    return _pids(lambda pid: Path(f"/proc/{pid}/comm").read_text().strip() in SERVICE_NAMES)


def confine(pids: list[int], cpus: set[int], saved: dict[int, set[int]]) -> None:
    """Every thread of ``pids`` onto ``cpus``; each one's previous mask goes into
    ``saved`` (first seen wins). Threads made later inherit their creator's."""
    for pid in pids:
        for tid in _tasks(pid):
            with contextlib.suppress(OSError):
                saved.setdefault(tid, os.sched_getaffinity(tid))
                os.sched_setaffinity(tid, cpus)


def restore(saved: dict[int, set[int]]) -> None:
    for tid, cpus in saved.items():
        with contextlib.suppress(OSError):  # gone meanwhile
            os.sched_setaffinity(tid, cpus)


@contextlib.contextmanager
def pinned(server_pid: int):
    """The pinned layout for the server whose master is ``server_pid`` (its whole
    process group); yields a description of it for the report."""
    server_cpus, other_cpus = split()
    saved: dict[int, set[int]] = {}
    me = os.sched_getaffinity(0)
    try:
        confine(process_group(os.getpgid(server_pid)), server_cpus, saved)
        service_pids = services()
        confine(service_pids, other_cpus, saved)
        os.sched_setaffinity(0, other_cpus)  # the bench and the drivers it starts
        yield {
            "server_cpus": sorted(server_cpus), "other_cpus": sorted(other_cpus),
            "services_confined": len(service_pids),
        }
    finally:
        os.sched_setaffinity(0, me)
        restore(saved)
        # Service processes started meanwhile (a PostgreSQL backend forked for
        # another client) inherited the confinement: released too.
        confine([pid for pid in services() if not set(_tasks(pid)) <= saved.keys()], me, {})
