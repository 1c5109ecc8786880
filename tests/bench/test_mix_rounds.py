"""The mix in interleaved rounds (bench/run.py run_mixes, median_mix, round_pools)
and how the report judges it (bench/report.py): no server is started and no time
is measured here; the driver is replaced by a recorder."""
from types import SimpleNamespace

from bench import report, run


def _mix(rps, rnd, *, stale=0, checked=10, writes=5, pool_exhausted=0):
    return {"rps": rps, "round": rnd, "p50_ms": 1.0, "p95_ms": 2.0, "p99_ms": 3.0, "requests": int(rps * 8),
            "reads": int(rps * 8) - writes, "writes": writes, "errors": 0, "stale": stale, "checked": checked,
            "write_failed": 0, "pool_exhausted": pool_exhausted, "hit_ratio": 0.9, "hits": 9, "misses": 1,
            "by_kind": {}, "stale_detail": [["edit", f"round {rnd}"]] if stale else [], "write_fail_detail": []}


def test_each_round_takes_its_own_share_of_the_write_pools_and_the_edits_are_shared():
    pools = {"apply": list(range(10)), "accept": list(range(100, 107)), "edit": ["a", "b"]}
    shares = [run.round_pools(pools, i, 3) for i in range(3)]
    for kind in ("apply", "accept"):
        taken = [item for share in shares for item in share[kind]]
        assert sorted(taken) == pools[kind]  # every item once, in exactly one round
        assert all(share[kind] for share in shares)
    assert all(share["edit"] == ["a", "b"] for share in shares)
    assert run.round_pools(pools, 0, 1) == pools


def test_a_variant_is_its_median_run_and_its_counts_are_summed_over_every_round():
    runs = [_mix(300.0, 1), _mix(200.0, 2, stale=1), _mix(280.0, 3), _mix(320.0, 4, pool_exhausted=2)]
    row = run.median_mix(runs)
    assert row["rps"] == 280.0 and row["round"] == 3  # the lower middle of 200/280/300/320
    assert row["rounds_rps"] == [300.0, 200.0, 280.0, 320.0] and row["rounds"] == [1, 2, 3, 4]
    assert row["stale"] == 0  # the median run's own
    assert row["all_rounds"]["stale"] == 1 and row["all_rounds"]["checked"] == 40
    assert row["all_rounds"]["pool_exhausted"] == 2
    assert row["all_rounds"]["stale_detail"] == [["edit", "round 2"]]


def _results(mixes, rounds):
    return {"meta": {"main_size": 1000, "threads": 2, "connections": 8, "mix_processes": 8, "cpus": 2,
                     "mix_rounds": rounds},
            "sizes": {"1000": {"wrk": [], "probes": []}}, "mix": mixes}


def _target(tgt, prefix):
    [row] = [t for t in tgt if t["target"].startswith(prefix)]
    return row


def test_the_mix_ratios_are_the_median_of_the_rounds_ratios():
    # Round by round Shiftboard ÷ (c) is 13, 13, 6: a slow round for Shiftboard alone.
    # The ratio of the two medians would be 300 / 25 = 12.0; the rounds' median is 13.
    sb = run.median_mix([_mix(260.0, 1), _mix(325.0, 2), _mix(300.0, 3)])
    cach = run.median_mix([_mix(20.0, 1), _mix(25.0, 2), _mix(50.0, 3)])
    naive = run.median_mix([_mix(26.0, 1), _mix(32.5, 2), _mix(30.0, 3)])
    tgt = report.targets(_results({"shiftboard": sb, "naive": naive, "cachalot": cach}, 3))
    row = _target(tgt, "mix ≥ 12× baseline (c)")
    assert row["measured"] == "13.00×" and row["met"]
    assert "rounds 13.00/13.00/6.00" in row["detail"]
    assert _target(tgt, "mix ≥ 10× baseline (a)")["measured"] == "10.00×"


def test_a_stale_read_in_any_round_misses_the_stale_read_target():
    sb = run.median_mix([_mix(300.0, 1), _mix(100.0, 2, stale=1), _mix(310.0, 3)])
    assert sb["stale"] == 0  # the median run (round 1) had none
    cach = run.median_mix([_mix(20.0, r) for r in (1, 2, 3)])
    row = _target(report.targets(_results({"shiftboard": sb, "cachalot": cach}, 3)), "0 stale reads")
    assert not row["met"]
    assert row["measured"] == "1 of 60 read-backs (all four variants, all 3 rounds)"
    assert "Stale reads in Shiftboard: edit: round 2" in " ".join(
        report.diagnostics(_results({"shiftboard": sb, "cachalot": cach}, 3)))


def test_a_single_mix_run_is_still_read_as_before():
    sb, cach = _mix(300.0, 1), _mix(25.0, 1)
    tgt = report.targets(_results({"shiftboard": sb, "cachalot": cach}, 1))
    assert _target(tgt, "mix ≥ 12× baseline (c)")["measured"] == "12.00×"
    assert _target(tgt, "0 stale reads")["measured"] == "0 of 20 read-backs (all four variants)"


def test_each_round_starts_one_variant_further_along_on_its_own_pools(monkeypatch):
    calls = []

    def fake_run_mix(host, port, *, prefix, targets, pools, duration, processes, fixed=None, **kw):
        calls.append((prefix, pools, fixed))
        return _mix(10.0, 0)

    monkeypatch.setattr(run.mix, "run_mix", fake_run_mix)
    monkeypatch.setattr(run, "warm", lambda port, reqs: None)
    monkeypatch.setattr(run, "scope_versions", lambda url: {})
    monkeypatch.setattr(run, "log", lambda msg: None)
    slices = [{"accept": [f"{v}{i}" for i in range(4)], "edit": [v]} for v in run.VARIANTS]
    args = SimpleNamespace(mix_rounds=2, mix_duration=1.0, mix_processes=2)
    targets = {k: [1] for k in ("jobs", "profiles", "reviewed")} | {"payment_users": [], "saved_users": []}
    monkeypatch.setattr(run, "mix_read_requests", lambda prefix, targets: [])
    out = run.run_mixes(8000, targets, slices, "/bench/floor/", args, "redis://")

    prefixes = list(run.VARIANTS.values())
    assert [c[0] for c in calls[:4]] == prefixes
    assert [c[0] for c in calls[4:8]] == prefixes[1:] + prefixes[:1]
    assert calls[8][2] == [("/bench/floor/", None)]  # then the driver's ceiling, once
    shiftboard = [c[1]["accept"] for c in calls[:8] if c[0] == "/api/v1/"]
    assert shiftboard == [["shiftboard0", "shiftboard2"], ["shiftboard1", "shiftboard3"]]
    assert out["shiftboard"]["rounds"] == [1, 2] and set(out) == {*run.VARIANTS, "driver_ceiling"}
