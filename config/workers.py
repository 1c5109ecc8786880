"""``BalancedThreadWorker``: gunicorn's ``gthread`` worker that takes a new
connection only while it holds no more open connections than the least loaded
of its live siblings (config/gunicorn.py's ``worker_class``).

Why: every ``gthread`` worker polls the one listening socket, and a kept-alive
connection stays with the worker that accepted it. Whichever worker wakes first
takes a burst of new connections, so 8 keep-alive clients could all land on one
of 2 workers (seen: 8/0, 7/1, 5/3, 4/4 from run to run). Threads share one
interpreter lock, so that worker serves them on one core while the other idles:
half the throughput of a 4/4 split, for CPU-bound requests such as a cache miss
(issue 14: the bench's cold job list at 0.53x of baseline (b), one run after
1.02x). Sync workers never had this: they close the connection after each
response, so the next request goes to a free worker.

How: the workers publish (pid, open connections, heartbeat) in a small table of
shared memory, mapped in the master before it forks them. Before each wait for
events, a worker that holds more connections than a live sibling stops polling
the listening socket for a short while (``RECHECK_SECONDS``), leaving the next
connection to the sibling. A sibling whose heartbeat is older than
``STALE_SECONDS`` (stuck, or gone) is ignored, so a worker never waits on one
that cannot accept. Only the order of accepts changes: no connection is
refused, and ``worker_connections`` still bounds each worker."""
from __future__ import annotations

import mmap
import struct
import time

from gunicorn.workers.gthread import ThreadWorker

from core.middleware import server_request_scope

# Slot of a worker: its age (gunicorn numbers the workers it spawns) modulo SLOTS.
SLOTS = 16
_FIELDS = 3  # pid, open connections, heartbeat (ms of time.monotonic(), one clock for every process)
_TABLE = struct.Struct(f"{SLOTS * _FIELDS}q")
_SLOT = struct.Struct(f"{_FIELDS}q")
# Inherited by the workers: MAP_SHARED anonymous memory (mmap's default on Linux).
_shared = mmap.mmap(-1, _TABLE.size)

RECHECK_SECONDS = 0.005
STALE_SECONDS = 2.0


def _now_ms() -> int:
    return int(time.monotonic() * 1000)


def least_loaded(table: tuple, me: int, conns: int, now_ms: int) -> bool:
    """Whether the worker in slot ``me`` holding ``conns`` connections may accept:
    no live sibling (fresh heartbeat) holds fewer."""
    if conns == 0:
        return True
    stale = now_ms - STALE_SECONDS * 1000
    for slot, (pid, theirs, beat) in enumerate(zip(table[0::_FIELDS], table[1::_FIELDS], table[2::_FIELDS])):
        if theirs < conns and pid and beat >= stale and slot != me:
            return False
    return True


class BalancedThreadWorker(ThreadWorker):
    def init_process(self):
        self._slot = self.age % SLOTS
        self._publish(_now_ms())
        super().init_process()

    def handle(self, conn):
        # One scope per request handled (a thread of the pool): what gunicorn logs
        # after the application returned or raised finds the request's id
        # (core.middleware.server_request_var).
        with server_request_scope():
            return super().handle(conn)

    def _publish(self, now_ms: int) -> None:
        # self.pid: set by the arbiter in the forked worker (os.getpid() is a system call per loop).
        _SLOT.pack_into(_shared, self._slot * _SLOT.size, self.pid, self.nr_conns, now_ms)

    def wait_for_and_dispatch_events(self, timeout):
        now_ms = _now_ms()
        self._publish(now_ms)
        if self._accepting and self.nr_conns and not least_loaded(
            _TABLE.unpack_from(_shared), self._slot, self.nr_conns, now_ms
        ):
            # run() enables accepting again on its next turn; this decides again then.
            self.set_accept_enabled(False)
            timeout = min(timeout, RECHECK_SECONDS)
        super().wait_for_and_dispatch_events(timeout)

    def run(self):
        try:
            super().run()
        finally:
            _SLOT.pack_into(_shared, self._slot * _SLOT.size, 0, 0, 0)
