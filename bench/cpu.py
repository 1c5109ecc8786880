"""Where a throughput run's CPU went, per request: the server, PostgreSQL, Redis
and the load driver.

On the bench's machine every process shares the same cores. Once they are busy,
a throughput ratio between two runs is a ratio of CPU per request, so this module
splits each run's CPU by part and says how busy the machine was. For every wrk
run the bench reads the CPU time (user + system) spent during the run:

- **server**: gunicorn's process group (master, workers and all their threads),
  from ``/proc/<pid>/stat``;
- **postgres**, **redis**: every local process named ``postgres`` or
  ``redis-server``, whatever else the shared service serves (during the bench
  nothing else loads it);
- **driver**: the bench's children that finished during the run (wrk, or the
  Python driver's processes), from ``getrusage(RUSAGE_CHILDREN)``.

``busy`` is all of it divided by the run's wall time and the CPUs the bench may
use. A process that exits during a run is counted through its parent, which
reaps it (its children's CPU in ``/proc/<pid>/stat``). With
PostgreSQL or Redis on another machine their parts read 0 here: the figures are
this machine's."""
from __future__ import annotations

import os
import resource
import time
from pathlib import Path

from . import affinity

TICKS = os.sysconf("SC_CLK_TCK")
# The CPUs the bench may use, read when it starts: the pinned layout later confines
# the bench itself to fewer (bench/affinity.py), not the machine.
CPUS = len(os.sched_getaffinity(0))
SERVICES = {"postgres": "postgres", "redis-server": "redis"}
PARTS = ("server", "postgres", "redis", "driver")


def process_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all its threads); 0 once gone."""
    try:
        return stat_seconds(Path(f"/proc/{pid}/stat").read_text())
    except OSError:
        return 0.0


def stat_seconds(stat: str) -> float:
    """User + system CPU seconds from the text of ``/proc/<pid>/stat``: the
    process's own (all its threads) and that of its children it has reaped (a
    PostgreSQL backend or parallel worker that exited, a restarted gunicorn
    worker), so a process that ends during a run still counts with its parent."""
    # The command name (field 2) may hold spaces and parentheses: split after its end.
    fields = stat[stat.rindex(")") + 2 :].split()
    # utime, stime, cutime, cstime: fields 14 to 17.
    return sum(int(value) for value in fields[11:15]) / TICKS


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def snapshot(server_pgid: int | None) -> dict[str, float]:
    """CPU seconds so far, by part (and the wall clock under ``wall``)."""
    out = dict.fromkeys(PARTS, 0.0)
    if server_pgid is not None:
        out["server"] = sum(process_seconds(pid) for pid in affinity.process_group(server_pgid))
    for pid in affinity.services():
        part = SERVICES.get(_comm(pid))
        if part is not None:
            out[part] += process_seconds(pid)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    out["driver"] = usage.ru_utime + usage.ru_stime
    out["wall"] = time.perf_counter()
    return out


def per_request(before: dict[str, float], after: dict[str, float], requests: int,
                cpus: int | None = None) -> dict | None:
    """Milliseconds of CPU per answered request, by part and in total, and how busy
    the machine was (0..1 of every CPU the bench may use). ``None``: no request."""
    if not requests:
        return None
    wall = after["wall"] - before["wall"]
    spent = {part: max(0.0, after[part] - before[part]) for part in PARTS}
    total = sum(spent.values())
    cpus = cpus or CPUS
    out = {f"{part}_ms": spent[part] * 1000 / requests for part in PARTS}
    out["total_ms"] = total * 1000 / requests
    out["busy"] = total / (wall * cpus) if wall > 0 else None
    return out


def settle(server_pgid: int | None, *, quiet_share: float = 0.05, window: float = 0.1, windows: int = 2,
           timeout: float = 15.0) -> float:
    """Wait until the server, PostgreSQL and Redis are idle: ``windows`` windows in
    a row of ``window`` seconds in which together they spent less than
    ``quiet_share`` of one CPU. Returns the seconds waited (at most ``timeout``).

    wrk stops sending when its run ends, but the requests it had in flight go on:
    after a slow case, 8 requests of (a) or (c) at 60 to 180 ms of CPU each kept
    the server busy for up to a second into the next case, whose CPU and
    throughput they were charged to. Every case now starts on an idle server."""
    started = time.perf_counter()
    busy_parts = ("server", "postgres", "redis")
    last = snapshot(server_pgid)
    quiet = 0
    while quiet < windows and time.perf_counter() - started < timeout:
        time.sleep(window)
        now = snapshot(server_pgid)
        spent = sum(now[p] - last[p] for p in busy_parts)
        quiet = quiet + 1 if spent < quiet_share * (now["wall"] - last["wall"]) else 0
        last = now
    return time.perf_counter() - started


class Meter:
    """``with Meter(server_pgid) as m: <a run>`` then ``m.per_request(requests)``."""

    def __init__(self, server_pgid: int | None):
        self.server_pgid = server_pgid
        self.before = self.after = None

    def __enter__(self):
        self.before = snapshot(self.server_pgid)
        return self

    def __exit__(self, *exc):
        self.after = snapshot(self.server_pgid)
        return False

    def per_request(self, requests: int) -> dict | None:
        return per_request(self.before, self.after, requests)
