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


def _seen(app_ms, db_ms, queries=4, ran_with=None):
    n = len(app_ms)
    return {"app_ms": app_ms, "db_ms": db_ms, "queries": [queries], "x_cache": {"MISS": n}, "status": [200],
            "ran_with": ran_with or {}}


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


TOGGLE_OK = {"none": [True] * 4, "on": [True] * 4, "off": [False] * 4}
WRK_ROWS = [
    # job list: round ratios on/off 0.9, 1.1, 0.95 (ABBA order); job detail equal in both rounds.
    _wrk("job_list", "on", 1, 90.0, 180, 180), _wrk("job_list", "off", 1, 100.0, 200, 200),
    _wrk("job_list", "off", 2, 100.0, 200, 199), _wrk("job_list", "on", 2, 110.0, 220, 220),
    _wrk("job_list", "on", 3, 95.0, 190, 190), _wrk("job_list", "off", 3, 100.0, 200, 200),
    _wrk("job_detail", "on", 1, 300.0, 600, 600), _wrk("job_detail", "off", 1, 300.0, 600, 600),
    _wrk("job_detail", "off", 2, 300.0, 600, 600), _wrk("job_detail", "on", 2, 300.0, 600, 600),
]


def _asked(app_ms, name):
    return {name: len(app_ms)}


def hook_results(*, list_on, list_off, detail_on=None, detail_off=None, state=None, toggle=None, ran_off=None,
                 wrk=None):
    detail_on = detail_on or [5.0] * 7
    detail_off = detail_off or [5.0] * 7
    return results({
        "slow_query_ms": {"on": 100, "off": 0},
        "state": state or {"on": {"slow_query_ms": 100, "installed": True},
                           "off": {"slow_query_ms": 0, "installed": False}},
        "toggle": toggle or TOGGLE_OK,
        "header": "X-Bench-Slow-Query-Hook",
        "pairs_per_endpoint": len(list_on), "warmup_pairs": 10,
        "same_process": {
            "job_list": {"on": _seen(list_on, [2.0] * len(list_on), ran_with=_asked(list_on, "on")),
                         "off": _seen(list_off, [2.0] * len(list_off),
                                      ran_with=ran_off or _asked(list_off, "off"))},
            "job_detail": {"on": _seen(detail_on, [1.0] * len(detail_on), 3, ran_with=_asked(detail_on, "on")),
                           "off": _seen(detail_off, [1.0] * len(detail_off), 3, ran_with=_asked(detail_off, "off"))},
        },
        "wrk": WRK_ROWS if wrk is None else wrk, "wrk_rounds": 3,
        "wrk_duration_s": 2.0,
        "in_process": {"alone": {"direct_ns": 150.0, "wrapped_ns": 650.0},
                       "select1": {"on_us": 101.0, "off_us": 100.0, "diff_us": 0.5, "blocks": 10, "per_block": 2000}},
        "elapsed_s": 25.0,
        "phases_s": {"in_process": 4.0, "server_start": 3.0, "same_process": 5.0, "two_servers": 13.0},
    })


def _hook_target(tgt):
    [row] = [t for t in tgt if t["target"].startswith("slow-query hook")]
    return row


def test_summary_pairs_the_same_process_requests_with_an_interval_relative_to_hook_off():
    res = hook_results(list_on=[10.2, 10.4, 10.1, 10.3, 10.2, 10.5, 10.2],
                       list_off=[10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0])
    [job_list, job_detail] = report.hook_summary(res)
    assert job_list["endpoint"] == "job_list" and job_list["n"] == 7
    assert job_list["on_ms"] == pytest.approx(10.2) and job_list["off_ms"] == pytest.approx(10.0)
    assert job_list["paired_ms"] == pytest.approx(0.2)
    assert job_list["paired_pct"] == pytest.approx(0.02)
    # Seven pairs: the 95% interval of the median runs from the 1st to the 7th value.
    assert (job_list["paired_low_ms"], job_list["paired_high_ms"]) == (pytest.approx(0.1), pytest.approx(0.5))
    assert (job_list["paired_low_pct"], job_list["paired_high_pct"]) == (pytest.approx(0.01), pytest.approx(0.05))
    assert job_list["ran_as_asked"] == {"on": 7, "off": 7}
    assert job_list["probe_requests"] == {"on": 7, "off": 7}
    assert job_list["queries"] == [4]
    assert job_detail["paired_ms"] == 0 and job_detail["paired_pct"] == 0 and job_detail["queries"] == [3]


def test_summary_pairs_the_wrk_rounds_and_gives_a_t_interval_of_their_relative_differences():
    [job_list, job_detail] = report.hook_summary(hook_results(list_on=[10.0] * 7, list_off=[10.0] * 7))
    assert job_list["rps_on"] == pytest.approx(295.0 / 3) and job_list["rps_off"] == pytest.approx(100.0)
    assert job_list["rounds"] == 3
    # Round differences -10%, +10%, -5%: mean -1.67%, sd 10.41%, t(2) = 4.303.
    assert job_list["rps_pct"] == pytest.approx(-0.05 / 3)
    half = 4.303 * 0.1040833 / 3 ** 0.5
    assert job_list["rps_low_pct"] == pytest.approx(-0.05 / 3 - half, abs=1e-5)
    assert job_list["rps_high_pct"] == pytest.approx(-0.05 / 3 + half, abs=1e-5)
    assert job_list["wrk_misses"] == {"on": 590, "off": 599}
    assert job_list["wrk_requests"] == {"on": 590, "off": 600}
    assert job_detail["rps_pct"] == 0 and job_detail["rps_low_pct"] == 0 and job_detail["rps_high_pct"] == 0


def test_a_round_without_its_other_server_is_left_out_of_the_pairs():
    wrk = [*WRK_ROWS, _wrk("job_list", "off", 4, 50.0, 100, 100)]
    [job_list, _] = report.hook_summary(hook_results(list_on=[10.0] * 7, list_off=[10.0] * 7, wrk=wrk))
    assert job_list["rounds"] == 3 and job_list["rps_pct"] == pytest.approx(-0.05 / 3)
    assert job_list["rps_off"] == pytest.approx(350.0 / 4)  # the mean req/s still counts every run


def test_mean_t_interval():
    assert report._mean_t_ci([]) == (None, None, None)
    assert report._mean_t_ci([0.3]) == (0.3, None, None)
    mean, low, high = report._mean_t_ci([1.0, 3.0])
    assert mean == 2.0 and (low, high) == (pytest.approx(2 - 12.706), pytest.approx(2 + 12.706))
    mean, low, high = report._mean_t_ci([float(v) for v in range(40)])  # above 30 degrees of freedom: 1.96
    assert (low, high) == (pytest.approx(19.5 - 1.96 * 11.69045 / 40 ** 0.5, abs=1e-4),
                           pytest.approx(19.5 + 1.96 * 11.69045 / 40 ** 0.5, abs=1e-4))


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
    assert row["measured"] == "+2.0% (95% interval +2.0% to +2.0%)"
    assert ("job list +0.20 ms (+2.0%) of 10.00 ms, median of 7 same-process pairs "
            "(95% interval +0.20 to +0.20 ms, +2.0% to +2.0%)") in row["detail"]
    assert "the 95% intervals' upper ends are within 2%" in row["detail"]
    assert "in process +500 ns per statement" in row["detail"]
    assert ("two servers, job list req/s -1.7% (95% interval -27.5% to +24.2%, process-to-process variation "
            "included)") in row["detail"]

    missed = _hook_target(report.targets(hook_results(list_on=[10.0] * 7, list_off=[10.0] * 7,
                                                      detail_on=[5.2] * 7, detail_off=[5.0] * 7)))
    assert missed["met"] is False
    assert missed["measured"] == "+4.0% (95% interval +4.0% to +4.0%)"

    faster = _hook_target(report.targets(hook_results(list_on=[9.0] * 7, list_off=[10.0] * 7)))
    assert faster["met"] is True and faster["measured"].startswith("+0.0%")  # the higher of -10% and 0%


def test_the_verdict_is_on_the_median_and_the_detail_says_when_the_interval_is_not_settled():
    on = [9.9, 10.0, 10.1, 10.1, 10.1, 10.1, 10.5]  # median +0.1 (1%), the interval's top +0.5 (5%)
    row = _hook_target(report.targets(hook_results(list_on=on, list_off=[10.0] * 7)))
    assert row["met"] is True
    assert row["measured"] == "+1.0% (95% interval -1.0% to +5.0%)"
    assert "an interval reaches above 2%, so this run does not settle it" in row["detail"]


def test_target_is_missed_when_the_toggle_was_not_verified():
    res = hook_results(list_on=[10.0] * 7, list_off=[10.0] * 7,
                       toggle={"none": [True] * 4, "on": [True] * 4, "off": [False, True, False, False]})
    row = _hook_target(report.targets(res))
    assert row["met"] is False
    assert "the hook was not verified off / on as asked in the same process" in row["detail"]
    assert any("**not all as asked, so the comparison below is void**" in line for line in report.hook_section(res))

    # The view was right, but one measured request ran with the hook on when it asked for off.
    res = hook_results(list_on=[10.0] * 7, list_off=[10.0] * 7, ran_off={"off": 6, "on": 1})
    assert report.hook_toggle_ok(res) is False
    assert _hook_target(report.targets(res))["met"] is False
    assert report.hook_toggle_ok(hook_results(list_on=[10.0] * 7, list_off=[10.0] * 7)) is True


def test_two_servers_not_as_started_void_only_the_throughput_comparison():
    res = hook_results(list_on=[10.0] * 7, list_off=[10.0] * 7,
                       state={"on": {"slow_query_ms": 100, "installed": True},
                              "off": {"slow_query_ms": 0, "installed": True}})
    assert report.hook_state_ok(res) is False
    assert _hook_target(report.targets(res))["met"] is True  # the target is the same-process measure
    assert any("(**not as started, so this comparison is void**)" in line for line in report.hook_section(res))


def test_without_the_comparison_the_target_says_so_and_the_report_has_no_table():
    row = _hook_target(report.targets(results()))
    assert row == {"target": row["target"], "measured": "n/a", "met": False, "detail": "not measured in this run"}
    assert report.hook_section(results()) == []


def test_report_tables_show_both_methods_and_the_in_process_cost():
    res = hook_results(list_on=[10.2] * 7, list_off=[10.0] * 7)
    text = "\n".join(report.hook_section(res))
    assert ("| job list | 10.20 (2.00) | 10.00 (2.00) | +0.20 ms | +0.20 to +0.20 ms | +2.0% (+2.0% to +2.0%) "
            "| 7 | 7 of 7 / 7 of 7 | 7 / 7 |") in text
    assert "| job detail | 5.00 (1.00) | 5.00 (1.00) | +0.00 ms |" in text
    assert "`X-Bench-Slow-Query-Hook: off`" in text
    assert ("no header: on the connection 4 of 4 times; `on`: on the connection 4 of 4 times; `off`: on the "
            "connection 0 of 4 times") in text
    assert "| job list | 98.3 | 100.0 | -1.7% | -27.5% to +24.2% | 3 | 590 of 590 / 599 of 600 | 0 / 0 |" in text
    assert "| job detail | 300.0 | 300.0 | +0.0% | +0.0% to +0.0% | 2 |" in text
    assert "includes that process-to-process variation" in text
    assert "**+500 ns per statement**" in text
    assert "job list 4 statements × 500 ns = 2.0 µs, 0.020% of its hook-off server time" in text
    assert "`SLOW_QUERY_MS=100`, hook on the connection; off `SLOW_QUERY_MS=0`, hook not on the connection." in text
    assert ("(The comparison took 25 s of the run: in process 4 s, server start 3 s, same process 5 s, "
            "two servers 13 s.)") in text


def test_without_wrk_the_report_has_only_the_same_process_table():
    text = "\n".join(report.hook_section(hook_results(list_on=[10.0] * 7, list_off=[10.0] * 7, wrk=[])))
    assert "*Same process" in text and "*Two servers" not in text


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
    bench/settings.py."""
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


def test_the_bench_asks_with_the_header_the_middleware_and_the_view_read():
    from bench import middleware, views

    assert run.HOOK_HEADER == middleware.SLOW_QUERY_HOOK_HEADER == views.SLOW_QUERY_HOOK_HEADER


def test_bench_settings_alone_have_the_toggle_outermost():
    config = (report.ROOT / "config").rglob("*.py")
    assert not [p for p in config if "SlowQueryHookToggle" in p.read_text()]
    bench_settings = (report.ROOT / "bench" / "settings.py").read_text()
    assert bench_settings.index('"bench.middleware.SlowQueryHookToggleMiddleware"') < bench_settings.index(
        '"bench.middleware.CacheBookkeepingHeaderMiddleware"')


def test_same_process_pairs_give_every_page_both_orders_whatever_the_page_count(monkeypatch):
    """The job list has 5 pages (odd): with the order flipped by pair and by pass,
    each page still comes ``on`` first in half its pairs, and ``off`` first in the
    other half; so do the 50 job details."""
    from collections import Counter, defaultdict

    from bench import load

    calls = []

    class FakeProbe:
        def __init__(self, *args):
            pass

        def request(self, method, path, headers=None):
            calls.append((re.sub(r"[?&]_b=.*", "", path), headers[run.HOOK_HEADER]))
            return {"app_ms": 1.0, "db_ms": 0.5, "queries": 3, "status": 200, "x_cache": "MISS",
                    "hook": headers[run.HOOK_HEADER]}

        def close(self):
            pass

    monkeypatch.setattr(load, "Probe", FakeProbe)
    run.same_process_pairs(1, {"jobs": list(range(1, 51))}, 400)
    first = defaultdict(Counter)
    for k in range(0, len(calls), 2):
        page, name = calls[k]
        assert calls[k + 1][0] == page and calls[k + 1][1] != name  # a pair: the same page, the other state
        first[page][name] += 1
    pages = [p for p in first if "page=" in p]
    assert len(pages) == 5
    for page, counts in first.items():
        assert abs(counts["on"] - counts["off"]) <= 1, (page, counts)
