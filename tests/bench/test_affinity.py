"""The bench's pinned layout (bench/affinity.py): every thread of the server's
process group on the server's CPU, the bench (and so its drivers) on the others,
everything put back afterwards; and the report's second table and targets for that
layout (bench/report.py), from a synthetic results dict (nothing is timed here)."""
import os
import subprocess
import sys
import time

import pytest

from bench import affinity, report
from tests.prerequisites import needs

# The two pinning tests only; the report's tests below need nothing of the machine.
needs_two_cpus = needs(affinity.available(), "needs 2+ CPUs and sched_setaffinity")

THREADED = "import threading, time\n[threading.Thread(target=time.sleep, args=(60,)).start() for _ in range(3)]\ntime.sleep(60)"


def _threads(pid):
    return [int(t) for t in os.listdir(f"/proc/{pid}/task")]


@pytest.fixture
def server():
    # A stand-in for gunicorn: a session leader with a forked child, each with threads.
    proc = subprocess.Popen(
        [sys.executable, "-c", f"import os, subprocess, sys\nsubprocess.Popen([sys.executable, '-c', {THREADED!r}])\n"
         + THREADED],
        start_new_session=True,
    )
    deadline = time.time() + 10
    while time.time() < deadline and (len(affinity.process_group(proc.pid)) < 2 or len(_threads(proc.pid)) < 4):
        time.sleep(0.05)
    yield proc
    os.killpg(proc.pid, 9)
    proc.wait()


@needs_two_cpus
def test_the_server_gets_its_own_cpu_and_everything_is_put_back(server):
    server_cpus, other_cpus = affinity.split()
    before_me = os.sched_getaffinity(0)
    group = affinity.process_group(server.pid)
    assert len(group) == 2
    before = {tid: os.sched_getaffinity(tid) for pid in group for tid in _threads(pid)}
    service_tids = [tid for pid in affinity.services() for tid in _threads(pid)]
    with affinity.pinned(server.pid) as layout:
        assert layout["server_cpus"] == sorted(server_cpus)
        assert layout["other_cpus"] == sorted(other_cpus)
        for tid in before:
            assert os.sched_getaffinity(tid) == server_cpus
        assert os.sched_getaffinity(0) == other_cpus
        # A process the bench starts now (wrk, the Python driver) inherits the others.
        out = subprocess.run([sys.executable, "-c", "import os; print(sorted(os.sched_getaffinity(0)))"],
                             capture_output=True, text=True, check=True).stdout
        assert out.strip() == str(sorted(other_cpus))
        for tid in service_tids:
            if os.path.exists(f"/proc/{tid}"):
                assert os.sched_getaffinity(tid) == other_cpus
    assert os.sched_getaffinity(0) == before_me
    for tid, cpus in before.items():
        assert os.sched_getaffinity(tid) == cpus
    for tid in service_tids:
        if os.path.exists(f"/proc/{tid}"):
            assert os.sched_getaffinity(tid) == before_me


@needs_two_cpus
def test_an_error_inside_still_puts_everything_back(server):
    before = {tid: os.sched_getaffinity(tid) for tid in _threads(server.pid)}
    with pytest.raises(RuntimeError), affinity.pinned(server.pid):
        raise RuntimeError("a wrk run failed")
    for tid, cpus in before.items():
        assert os.sched_getaffinity(tid) == cpus


def _row(endpoint, variant, mode, rps):
    return {"endpoint": endpoint, "variant": variant, "mode": mode, "rps": rps, "p50_ms": 1.0, "p95_ms": 2.0,
            "p99_ms": 3.0, "requests": 100, "errors": 0, "hits": 0, "misses": 0, "not_modified": None}


def _table(hit_rps):
    return [_row("floor", "floor", "floor", 1000.0), _row("job_list", "shiftboard", "hit", hit_rps),
            _row("job_list", "shiftboard", "cold", 200.0), _row("job_list", "tuned", "warm", 100.0)]


PUBLIC_HIT = "cached public GET ≥ 0.8× the floor's throughput (job list, cache hit)"


@pytest.mark.parametrize("pinned_hit, met", [(850.0, True), (700.0, False)])
def test_with_a_pinned_table_the_throughput_targets_are_judged_there(pinned_hit, met):
    """The pinned layout (a deployment's) judges; the shared one is reported
    beside it, whatever it measured, and says so in the README and the report."""
    results = {"meta": {"main_size": 1000}, "sizes": {"1000": {
        "wrk": _table(600.0), "wrk_pinned": _table(pinned_hit), "probes": [],
        "pinned_layout": {"server_cpus": [1], "other_cpus": [0], "services_confined": 3}}}}
    tgt = {t["target"]: t for t in report.targets(results)}
    shared = tgt[PUBLIC_HIT + report.SHARED]
    pinned = tgt[PUBLIC_HIT + report.PINNED]
    assert (shared["measured"], shared["met"]) == ("0.60×", None)
    assert (pinned["measured"], pinned["met"]) == (f"{pinned_hit / 1000:.2f}×", met)
    assert tgt["cold job list ≥ 3× baseline (b)" + report.PINNED]["measured"] == "2.00×"
    assert PUBLIC_HIT not in tgt  # no third, unlabelled verdict
    assert report.verdict(shared) == "reported" and report.verdict(pinned) == ("met" if met else "**missed**")


def test_without_a_pinned_table_the_shared_one_judges():
    results = {"meta": {"main_size": 1000}, "sizes": {"1000": {"wrk": _table(600.0), "probes": []}}}
    tgt = {t["target"]: t for t in report.targets(results)}
    assert not [t for t in tgt if t.endswith(report.PINNED) or t.endswith(report.SHARED)]
    assert (tgt[PUBLIC_HIT]["measured"], tgt[PUBLIC_HIT]["met"]) == ("0.60×", False)


def test_the_pinned_table_has_a_server_of_its_own_sized_for_one_core(monkeypatch, tmp_path):
    """bench/run.py's pinned_table: a server started for that table with
    ``--pinned-workers`` workers (not the shared table's two-worker one), pinned,
    measured in ``--pinned-rounds`` rounds, and stopped afterwards."""
    import contextlib
    from types import SimpleNamespace

    from bench import run

    started, pinned_pids, tables = [], [], []

    class FakeServer:
        def __init__(self, env, port, logfile, workers=2, wait=True):
            self.workers, self.stopped = workers, False
            self.proc = SimpleNamespace(pid=4242)
            started.append(self)

        def stop(self):
            self.stopped = True

    @contextlib.contextmanager
    def fake_pinned(pid):
        pinned_pids.append(pid)
        yield {"server_cpus": [1], "other_cpus": [0], "services_confined": 0}

    def fake_table(port, size, endpoints, floor, targets, args, pgid=None, rounds=1):
        tables.append({"pgid": pgid, "rounds": rounds})
        return [{"endpoint": "floor", "variant": "floor", "mode": "floor", "rps": 1.0}]

    monkeypatch.setattr(run, "Server", FakeServer)
    monkeypatch.setattr(run.affinity, "pinned", fake_pinned)
    monkeypatch.setattr(run, "endpoint_table", fake_table)
    args = SimpleNamespace(port=18950, pinned_workers=1, pinned_rounds=3)
    (tmp_path / "raw").mkdir()
    rows, layout = run.pinned_table({}, 100, ["job_list"], [], {}, args, tmp_path)
    assert [s.workers for s in started] == [1] and started[0].stopped
    assert pinned_pids == [4242] and tables == [{"pgid": 4242, "rounds": 3}]
    assert layout["server_workers"] == 1 and rows[0]["rps"] == 1.0
