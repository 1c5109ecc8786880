"""The bench report's slow-query hook comparison (bench/report.py): the summary,
the target and the tables, computed from a synthetic results dict (no timings are
measured here); the servers' SLOW_QUERY_MS (bench/run.py), the bench view that
reports the hook's state, and the bench middleware that takes the hook off the
connection for one request (bench/middleware.py)."""
import re

import pytest

from bench import report, run
from core.db_instrumentation import slow_query_wrapper
from tests.jobs.factories import JobFactory


def _seen(app_ms, db_ms, queries=4):
    n = len(app_ms)
    return {"app_ms": app_ms, "db_ms": db_ms, "queries": [queries], "x_cache": {"MISS": n}, "status": [200]}


def _wrk(endpoint, hook, rnd, rps, requests, misses):
    return {"endpoint": endpoint, "hook": hook, "round": rnd, "rps": rps, "p50_ms": 1.0, "p99_ms": 2.0,
            "requests": requests, "errors": 0, "hits": requests - misses, "misses": misses}


def results(hook=None):
    out = {
        "meta": {"main_size": 1000, "threads": 2, "connections": 8, "mix_processes": 8, "cpus": 2},
        "sizes": {"1000": {"wrk": [], "probes": []}},
    }
    if hook is not None:
        out["slow_query_hook"] = hook
    return out


def hook_results(*, list_on, list_off, detail_on=None, detail_off=None, state=None):
    detail_on = detail_on or [5.0] * 7
    detail_off = detail_off or [5.0] * 7
    return results({
        "slow_query_ms": {"on": 100, "off": 0},
        "state": state or {"on": {"slow_query_ms": 100, "installed": True},
                           "off": {"slow_query_ms": 0, "installed": False}},
        "probes_per_server": len(list_on),
        "server_time": {
            "job_list": {"on": _seen(list_on, [2.0] * len(list_on)), "off": _seen(list_off, [2.0] * len(list_off))},
            "job_detail": {"on": _seen(detail_on, [1.0] * len(detail_on), 3),
                           "off": _seen(detail_off, [1.0] * len(detail_off), 3)},
        },
        "wrk": [_wrk("job_list", "on", 1, 90.0, 180, 180), _wrk("job_list", "off", 1, 100.0, 200, 200),
                _wrk("job_list", "off", 2, 100.0, 200, 199), _wrk("job_list", "on", 2, 110.0, 220, 220),
                _wrk("job_detail", "on", 1, 300.0, 600, 600), _wrk("job_detail", "off", 1, 300.0, 600, 600)],
        "wrk_duration_s": 2.0,
        "in_process": {"alone": {"direct_ns": 150.0, "wrapped_ns": 650.0},
                       "select1": {"on_us": 101.0, "off_us": 100.0, "diff_us": 0.5, "blocks": 10, "per_block": 2000}},
        "elapsed_s": 25.0,
        "phases_s": {"in_process": 4.0, "server_start": 3.0, "server_time": 5.0, "wrk": 13.0},
    })


def _hook_target(tgt):
    [row] = [t for t in tgt if t["target"].startswith("slow-query hook")]
    return row


def test_summary_pairs_the_requests_and_averages_the_rounds():
    res = hook_results(list_on=[10.2, 10.4, 10.1, 10.3, 10.2, 10.5, 10.2],
                       list_off=[10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0])
    [job_list, job_detail] = report.hook_summary(res)
    assert job_list["endpoint"] == "job_list" and job_list["n"] == 7
    assert job_list["on_ms"] == pytest.approx(10.2) and job_list["off_ms"] == pytest.approx(10.0)
    assert job_list["diff_ms"] == pytest.approx(0.2)
    assert job_list["paired_ms"] == pytest.approx(0.2)
    assert job_list["paired_pct"] == pytest.approx(0.02)
    # Seven pairs: the 95% interval of the median runs from the 1st to the 7th value.
    assert (job_list["paired_low_ms"], job_list["paired_high_ms"]) == (pytest.approx(0.1), pytest.approx(0.5))
    assert job_list["rps_on"] == pytest.approx(100.0) and job_list["rps_off"] == pytest.approx(100.0)
    assert job_list["rps_pct"] == pytest.approx(0.0)
    assert job_list["wrk_misses"] == {"on": 400, "off": 399}
    assert job_list["queries"] == [4]
    assert job_detail["diff_ms"] == 0 and job_detail["rps_pct"] == 0 and job_detail["queries"] == [3]


def test_median_interval_needs_six_values_and_widens_with_fewer():
    assert report._median_ci([1.0, 2.0, 3.0, 4.0, 5.0]) == (None, None)
    values = [float(v) for v in range(100)]
    low, high = report._median_ci(values)
    assert low < 49.5 < high
    assert (low, high) == (39.0, 60.0)


def test_target_is_met_at_two_percent_and_missed_above_from_the_higher_endpoint():
    met = report.targets(hook_results(list_on=[10.2] * 7, list_off=[10.0] * 7))
    row = _hook_target(met)
    assert row["met"] is True
    assert row["measured"] == "+2.0%"
    assert "job list +0.20 ms (+2.0%) of 10.00 ms (95% interval +0.20 to +0.20 ms)" in row["detail"]
    assert "in process +500 ns per statement" in row["detail"]

    missed = _hook_target(report.targets(hook_results(list_on=[10.0] * 7, list_off=[10.0] * 7,
                                                      detail_on=[5.2] * 7, detail_off=[5.0] * 7)))
    assert missed["met"] is False
    assert missed["measured"] == "+4.0%"

    faster = _hook_target(report.targets(hook_results(list_on=[9.0] * 7, list_off=[10.0] * 7)))
    assert faster["met"] is True and faster["measured"] == "+0.0%"  # the higher of -10% and job detail's 0%


def test_target_is_missed_when_a_server_did_not_run_as_started():
    res = hook_results(list_on=[10.0] * 7, list_off=[10.0] * 7,
                       state={"on": {"slow_query_ms": 100, "installed": True},
                              "off": {"slow_query_ms": 0, "installed": True}})
    row = _hook_target(report.targets(res))
    assert row["met"] is False
    assert "did not report the hook on / off as started" in row["detail"]
    assert any("**not as started, so the comparison below is void**" in line for line in report.hook_section(res))


def test_without_the_comparison_the_target_says_so_and_the_report_has_no_table():
    row = _hook_target(report.targets(results()))
    assert row == {"target": row["target"], "measured": "n/a", "met": False, "detail": "not measured in this run"}
    assert report.hook_section(results()) == []


def test_report_table_shows_both_servers_the_difference_and_the_in_process_cost():
    res = hook_results(list_on=[10.2] * 7, list_off=[10.0] * 7)
    text = "\n".join(report.hook_section(res))
    assert ("| job list | 10.20 (2.00) | 10.00 (2.00) | +0.20 ms (+2.0%) | +0.20 ms (+2.0%) (+0.20 to +0.20) "
            "| 100.0 | 100.0 | +0.0% | 407 of 407 / 406 of 407 |") in text
    assert "| job detail | 5.00 (1.00) | 5.00 (1.00) | +0.00 ms (+0.0%) |" in text
    assert "**+500 ns per statement**" in text
    assert "job list 4 statements × 500 ns = 2.0 µs, 0.020% of its hook-off server time" in text
    assert "`SLOW_QUERY_MS=100`, hook on the connection; off `SLOW_QUERY_MS=0`, hook not on the connection." in text
    assert "(The comparison took 25 s of the run: in process 4 s, server start 3 s, server time 5 s, wrk 13 s.)" in text


def test_bench_servers_run_the_hook_at_its_default_unless_told_otherwise(monkeypatch):
    monkeypatch.setenv("SLOW_QUERY_MS", "5")  # the caller's environment does not leak in
    on = run.server_env("postgres://h/db", "redis://h/8")
    off = run.server_env("postgres://h/db", "redis://h/8", slow_query_ms=0)
    assert on["SLOW_QUERY_MS"] == "100"
    assert off["SLOW_QUERY_MS"] == "0"
    assert {k: v for k, v in on.items() if k != "SLOW_QUERY_MS"} == {k: v for k, v in off.items()
                                                                     if k != "SLOW_QUERY_MS"}


@pytest.mark.django_db
@pytest.mark.urls("bench.urls")
def test_bench_view_reports_whether_the_hook_is_on_the_connection(anon, settings):
    from django.db import connection

    settings.SLOW_QUERY_MS = 100
    body = anon.get("/bench/slow-query-hook/").json()
    assert body == {"slow_query_ms": 100, "installed": True, "asked": None}
    assert slow_query_wrapper in connection.execute_wrappers


@pytest.fixture
def toggle(settings):
    """The bench's hook toggle in front of the test settings' middleware, as in
    bench/settings.py (needs cachalot, which bench/middleware.py imports)."""
    pytest.importorskip("cachalot")
    settings.SLOW_QUERY_MS = 100
    settings.MIDDLEWARE = ["bench.middleware.SlowQueryHookToggleMiddleware", *settings.MIDDLEWARE]
    return "X-Bench-Slow-Query-Hook"


@pytest.mark.django_db
@pytest.mark.urls("bench.urls")
def test_the_toggle_takes_the_hook_off_for_one_request_and_puts_it_back_first(anon, toggle):
    from django.db import connection

    off = anon.get("/bench/slow-query-hook/", headers={toggle: "off"})
    assert off.json() == {"slow_query_ms": 100, "installed": False, "asked": "off"}
    assert off[toggle] == "off"
    assert connection.execute_wrappers[0] is slow_query_wrapper  # back, first in the list
    assert connection.execute_wrappers.count(slow_query_wrapper) == 1

    on = anon.get("/bench/slow-query-hook/", headers={toggle: "on"})
    assert on.json() == {"slow_query_ms": 100, "installed": True, "asked": "on"}
    assert on[toggle] == "on"
    plain = anon.get("/bench/slow-query-hook/")
    assert plain.json()["installed"] is True and toggle not in plain  # no header: left alone
    assert connection.execute_wrappers.count(slow_query_wrapper) == 1


@pytest.mark.django_db
@pytest.mark.urls("bench.urls")
def test_with_the_hook_toggled_off_a_real_miss_reports_no_statement(anon, toggle, settings, caplog):
    settings.PERF_HEADERS = True
    jobs = JobFactory.create_batch(2)
    settings.SLOW_QUERY_MS = 0.000001  # every statement is "slow": each one the hook sees is logged
    caplog.clear()
    with caplog.at_level("WARNING", logger="shiftboard.db.slow"):
        off = anon.get("/api/v1/jobs/", headers={toggle: "off"})
    assert off.status_code == 200 and off[toggle] == "off" and off["X-Cache"] == "MISS"
    assert [r for r in caplog.records if r.name == "shiftboard.db.slow"] == []
    # The Server-Timing counter, inside the toggle, still counted the statements.
    assert re.search(r'db;dur=[\d.]+;desc="[1-9]\d* queries"', off["Server-Timing"])

    with caplog.at_level("WARNING", logger="shiftboard.db.slow"):
        on = anon.get(f"/api/v1/jobs/{jobs[0].pk}/", headers={toggle: "on"})
    assert on.status_code == 200 and on[toggle] == "on" and on["X-Cache"] == "MISS"
    assert [r for r in caplog.records if r.name == "shiftboard.db.slow"]


@pytest.mark.django_db
def test_the_toggle_puts_the_hook_back_when_the_request_raises(rf, settings):
    pytest.importorskip("cachalot")
    from django.db import connection

    from bench.middleware import SlowQueryHookToggleMiddleware

    settings.SLOW_QUERY_MS = 100
    connection.ensure_connection()
    seen = []

    def boom(request):
        seen.append(slow_query_wrapper in connection.execute_wrappers)
        raise RuntimeError("view failed")

    with pytest.raises(RuntimeError):
        SlowQueryHookToggleMiddleware(boom)(rf.get("/", headers={"X-Bench-Slow-Query-Hook": "off"}))
    assert seen == [False]
    assert connection.execute_wrappers[0] is slow_query_wrapper
    assert connection.execute_wrappers.count(slow_query_wrapper) == 1


def test_bench_settings_alone_have_the_toggle_outermost():
    config = (report.ROOT / "config").rglob("*.py")
    assert not [p for p in config if "SlowQueryHookToggle" in p.read_text()]
    bench_settings = (report.ROOT / "bench" / "settings.py").read_text()
    assert bench_settings.index('"bench.middleware.SlowQueryHookToggleMiddleware"') < bench_settings.index(
        '"bench.middleware.CacheBookkeepingHeaderMiddleware"')
