"""Where a throughput run's CPU went (bench/cpu.py): the server's process group
and the load driver are charged what they spent during the run, per request; and
the report's CPU table and target details (bench/report.py). The processes here
burn a fixed amount of their own CPU time, so nothing depends on how busy the
machine is."""
import os
import subprocess
import sys
import time

import pytest

from bench import cpu, report
from tests.prerequisites import needs

needs_proc = needs(os.path.isdir("/proc/self/task"), "needs /proc")

# Waits for a line on stdin (when asked), spends SECONDS of CPU time from there, says
# so, then sleeps.
BURN = """import os, sys, time
if {wait}:
    sys.stdin.readline()
start = time.process_time()
while time.process_time() - start < {seconds}:
    pass
print("done", flush=True)
time.sleep({sleep})
"""


@needs_proc
def test_the_server_group_and_the_driver_are_charged_the_cpu_they_spent():
    server = subprocess.Popen([sys.executable, "-c", BURN.format(wait=True, seconds=0.4, sleep=30)],
                              start_new_session=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        with cpu.Meter(server.pid) as meter:
            server.stdin.write("go\n")
            server.stdin.flush()
            assert server.stdout.readline().strip() == "done"
            # A finished child of the bench, as wrk is: the driver's part.
            subprocess.run([sys.executable, "-c", BURN.format(wait=False, seconds=0.3, sleep=0)], check=True,
                           stdout=subprocess.DEVNULL)
        spent = meter.per_request(10)
    finally:
        os.killpg(server.pid, 9)
        server.wait()
    # Per request: 10 requests share what each part spent.
    assert spent["server_ms"] >= 0.4 * 1000 / 10 * 0.9
    assert spent["driver_ms"] >= 0.3 * 1000 / 10 * 0.9
    assert spent["total_ms"] == pytest.approx(sum(spent[f"{p}_ms"] for p in cpu.PARTS))
    assert 0 < spent["busy"] <= 1.05


def test_per_request_divides_by_requests_and_wall_time_and_cpus():
    before = {"server": 1.0, "postgres": 2.0, "redis": 3.0, "driver": 0.5, "wall": 100.0}
    after = {"server": 2.0, "postgres": 2.5, "redis": 3.25, "driver": 0.75, "wall": 101.0}
    got = cpu.per_request(before, after, 1000, cpus=2)
    assert got == pytest.approx({"server_ms": 1.0, "postgres_ms": 0.5, "redis_ms": 0.25, "driver_ms": 0.25,
                                 "total_ms": 2.0, "busy": 1.0})
    assert cpu.per_request(before, after, 0) is None


def test_a_command_name_with_spaces_and_parentheses_is_read_past():
    ticks = cpu.TICKS
    # utime 3 s, stime 1 s, and children it reaped: 0.5 s + 0.5 s.
    fields = ["S"] + ["0"] * 10 + [str(3 * ticks), str(ticks), str(ticks // 2), str(ticks // 2)] + ["0"] * 30
    assert cpu.stat_seconds(f"42 (a) b (c) {' '.join(fields)}") == pytest.approx(5.0)


def test_a_process_that_is_gone_counts_nothing():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    deadline = time.time() + 5
    while os.path.exists(f"/proc/{proc.pid}") and time.time() < deadline:
        time.sleep(0.05)
    assert cpu.process_seconds(proc.pid) == 0.0


def _row(endpoint, variant, mode, rps, total=None):
    row = {"endpoint": endpoint, "variant": variant, "mode": mode, "rps": rps, "p50_ms": 1.0, "p95_ms": 2.0,
           "p99_ms": 3.0, "errors": 0, "hits": 10, "misses": 0, "not_modified": None}
    if total is not None:
        row["cpu"] = {"server_ms": total - 0.5, "postgres_ms": 0.0, "redis_ms": 0.25, "driver_ms": 0.25,
                      "total_ms": total, "busy": 0.97}
    return row


def test_the_report_shows_where_the_cpu_went_and_the_hit_target_says_it():
    rows = [_row("floor", "floor", "floor", 1000.0, 1.5), _row("job_list", "shiftboard", "hit", 700.0, 2.25),
            _row("job_list", "shiftboard", "cold", 100.0, 9.0), _row("job_list", "tuned", "warm", 50.0, 20.0)]
    table = "\n".join(report.endpoint_tables(rows))
    assert "| job list | Shiftboard (cache hit) | 1.75 | 0.00 | 0.25 | 0.25 | 2.25 | 97% |" in table
    tgt = {t["target"]: t for t in report.throughput_targets(rows, 1000)}
    hit = tgt["cached public GET ≥ 0.8× the floor's throughput (job list, cache hit)"]["detail"]
    assert "hit 2.25 ms (server 1.75, PostgreSQL 0.00, Redis 0.25, load driver 0.25)" in hit
    assert "floor 1.50 ms" in hit
    assert "miss 9.00 ms" in tgt["cold job list ≥ 3× baseline (b)"]["detail"]


def test_the_hit_target_names_its_bound_the_floor_after_one_bare_redis_round_trip():
    rows = [_row("floor", "floor", "floor", 1000.0), _row("floor", "floor", "round_trip", 800.0),
            _row("job_list", "shiftboard", "hit", 600.0)]
    tgt = {t["target"]: t for t in report.throughput_targets(rows, 1000)}
    hit = tgt["cached public GET ≥ 0.8× the floor's throughput (job list, cache hit)"]
    assert (hit["measured"], hit["met"]) == ("0.60×", False)  # judged against the floor, as before
    assert "bare Redis round trip runs at 0.80× the floor (800.0 req/s), and the hit at 0.75× of that" in hit["detail"]
    table = "\n".join(report.endpoint_tables(rows))
    assert "floor after one bare Redis round trip" in table
    # Without the row (a report from before it was measured): no bound is claimed.
    tgt = report.throughput_targets([r for r in rows if r["mode"] != "round_trip"], 1000)
    assert "bound" not in tgt[0]["detail"]


def test_results_recorded_before_the_cpu_reading_have_no_cpu_table():
    rows = [_row("floor", "floor", "floor", 1000.0), _row("job_list", "shiftboard", "hit", 700.0)]
    assert "CPU per answered request" not in "\n".join(report.endpoint_tables(rows))
    tgt = report.throughput_targets(rows, 1000)
    assert "CPU per request" not in tgt[0]["detail"]


@needs_proc
def test_a_process_that_ends_during_the_run_is_counted_through_its_parent():
    # The server's leader starts a child that burns 0.3 s and exits (a PostgreSQL
    # backend that closes, a worker that restarts): its parent reaped it.
    child = BURN.format(wait=False, seconds=0.3, sleep=0)
    leader = ("import subprocess, sys, time\nsys.stdin.readline()\n"
              f"subprocess.run([sys.executable, '-c', {child!r}], stdout=subprocess.DEVNULL, check=True)\n"
              "print('done', flush=True)\ntime.sleep(30)\n")
    server = subprocess.Popen([sys.executable, "-c", leader], start_new_session=True, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        with cpu.Meter(server.pid) as meter:
            server.stdin.write("go\n")
            server.stdin.flush()
            assert server.stdout.readline().strip() == "done"
        spent = meter.per_request(1)
    finally:
        os.killpg(server.pid, 9)
        server.wait()
    assert spent["server_ms"] >= 300 * 0.9


def test_each_case_reports_its_median_round_whole():
    from bench.run import median_runs

    def row(endpoint, mode, rps, cpu):
        return {"endpoint": endpoint, "variant": "shiftboard", "mode": mode, "rps": rps, "cpu": cpu}

    rounds = [
        [row("floor", "floor", 100.0, 1), row("job_list", "hit", 50.0, 2)],
        [row("floor", "floor", 300.0, 3), row("job_list", "hit", 70.0, 4)],
        [row("floor", "floor", 200.0, 5), row("job_list", "hit", 60.0, 6)],
    ]
    out = median_runs(rounds)
    assert [(r["endpoint"], r["rps"], r["cpu"]) for r in out] == [("floor", 200.0, 5), ("job_list", 60.0, 6)]
    assert out[0]["rounds_rps"] == [100.0, 300.0, 200.0]
    # Two rounds: the lower of the two; a case missing from a round still reported.
    out = median_runs(rounds[:2] + [[row("floor", "floor", 50.0, 7)]])
    assert [(r["endpoint"], r["rps"]) for r in out] == [("floor", 100.0), ("job_list", 50.0)]


@needs_proc
def test_settle_waits_until_the_server_has_finished_what_it_was_doing():
    """A server still burning CPU (the requests a finished wrk run left in flight)
    is waited for: when settle returns, the burn is over."""
    import select

    server = subprocess.Popen([sys.executable, "-c", BURN.format(wait=False, seconds=0.6, sleep=30)],
                              start_new_session=True, stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.05)  # it has started burning
        waited = cpu.settle(server.pid, timeout=30)
        ready, _, _ = select.select([server.stdout], [], [], 0)
        assert ready, "settle returned while the server was still busy"
        assert server.stdout.readline().strip() == "done"
        assert waited < 30
    finally:
        os.killpg(server.pid, 9)
        server.wait()


@needs_proc
def test_settle_on_an_idle_server_returns_after_its_quiet_windows():
    server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True)
    try:
        time.sleep(0.2)
        waited = cpu.settle(server.pid, window=0.05, windows=2, timeout=30)
        assert 0.1 <= waited < 30
    finally:
        os.killpg(server.pid, 9)
        server.wait()


def test_a_ratio_of_two_cases_pairs_them_by_round():
    """report.rps_ratio: the median of each shared round's ratio. A round the
    machine ran slow for both cases cancels out (a ratio of the two medians
    would mix rounds); a round one case missed is left out; rows without rounds
    (one run, the mix) fall back to their requests/s."""
    from bench.report import rps_ratio
    from bench.run import median_runs

    def row(endpoint, rps):
        return {"endpoint": endpoint, "variant": "shiftboard", "mode": "hit", "rps": rps}

    rounds = [[row("floor", 2000.0), row("job_list", 1600.0)],
              [row("floor", 1300.0), row("job_list", 1040.0)],  # a slow round, for both
              [row("floor", 1900.0), row("job_list", 1520.0)]]
    floor, hit = median_runs(rounds)
    assert hit["rounds"] == [1, 2, 3]
    assert rps_ratio(hit, floor) == pytest.approx(0.8)
    assert hit["rps"] / floor["rps"] == pytest.approx(1520 / 1900)  # the same here: both medians from round 3
    floor, hit = median_runs([[row("floor", 2000.0), row("job_list", 1800.0)],
                              [row("floor", 1000.0), row("job_list", 900.0)],
                              [row("floor", 1500.0), row("job_list", 1500.0)]])
    assert rps_ratio(hit, floor) == pytest.approx(0.9)  # the median runs alone: 1500 / 1500
    # A round the hit missed: only the rounds both ran are paired.
    floor, hit = median_runs([[row("floor", 2000.0), row("job_list", 1000.0)],
                              [row("floor", 1000.0)],
                              [row("floor", 1800.0), row("job_list", 1800.0)]])
    assert hit["rounds"] == [1, 3] and rps_ratio(hit, floor) == pytest.approx((0.5 + 1.0) / 2)
    assert rps_ratio({"rps": 300.0}, {"rps": 100.0}) == 3.0 and rps_ratio(None, floor) is None
