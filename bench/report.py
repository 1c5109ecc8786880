"""The report of one bench run: CSV beside the raw JSON, PNG plots (matplotlib, Agg),
report.md with tables, ratios computed within the run and the targets' verdicts,
and the README's Performance section (between its bench markers), all from the
run's own results.json."""
from __future__ import annotations

import csv
import json
import math
import re
import statistics
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
README_START = "<!-- bench:start (written by `make bench` from the latest report; do not edit by hand) -->"
README_END = "<!-- bench:end -->"

VARIANT_LABELS = {
    ("shiftboard", "hit"): "Shiftboard (cache hit)",
    ("shiftboard", "cold"): "Shiftboard (cache miss)",
    ("shiftboard", "revalidate"): "Shiftboard (304 revalidation)",
    ("naive", "warm"): "(a) naive DRF",
    ("tuned", "warm"): "(b) DRF + select_related",
    ("cachalot", "warm"): "(c) naive DRF + cachalot",
    ("floor", "floor"): "floor (fixed bytes)",
    ("floor", "round_trip"): "floor after one bare Redis round trip",
}
SHORT_LABELS = {
    ("shiftboard", "hit"): "Shiftboard\nhit", ("shiftboard", "cold"): "Shiftboard\nmiss",
    ("shiftboard", "revalidate"): "Shiftboard\n304",
    ("naive", "warm"): "(a) naive", ("tuned", "warm"): "(b) tuned", ("cachalot", "warm"): "(c) cachalot",
    ("floor", "floor"): "floor",
    ("floor", "round_trip"): "floor +\nRedis trip",
}
MIX_SHORT = {"shiftboard": "Shiftboard", "naive": "(a) naive", "tuned": "(b) tuned", "cachalot": "(c) cachalot",
             "driver_ceiling": "driver vs\nfloor"}
MIX_LABELS = {"shiftboard": "Shiftboard", "naive": "(a) naive DRF", "tuned": "(b) DRF + select_related",
              "cachalot": "(c) naive DRF + cachalot", "driver_ceiling": "driver against the floor"}
ENDPOINT_LABELS = {
    "job_list": "job list", "job_detail": "job detail", "profile": "public profile",
    "reviews": "reviews of a user", "payments": "a user's payments", "saved": "saved jobs", "floor": "floor",
}
COLORS = {"shiftboard": "#1b7837", "naive": "#d6604d", "tuned": "#4393c3", "cachalot": "#b2abd2",
          "floor": "#555555"}


def _fmt(value, digits=1):
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _ratio(a, b):
    return (a / b) if a is not None and b else None


def rps_ratio(a: dict | None, b: dict | None) -> float | None:
    """Requests/s of case ``a`` ÷ case ``b``. Both run in the same interleaved
    rounds (the main size): the median over the rounds of each round's ratio, so
    a round the machine ran slow for both cancels out instead of moving one side
    of a ratio of two medians; on this 2-core VM whole rounds drift by up to 30%
    (bench/results/2026-12-01-037f636: the floor's rounds ran 1,309-1,829 req/s). Rows
    without rounds (one run, the mix), or fewer than two shared rounds: the ratio
    of their requests/s."""
    if not (a and b):
        return None
    pairs = round_ratios(a, b)
    if len(pairs) >= 2:
        return statistics.median(pairs)
    return _ratio(a["rps"], b["rps"])


def mix_total(m: dict, key: str):
    """A mix count over all of a variant's rounds (``all_rounds``, bench/run.py
    median_mix), or the one run's where the mix ran once."""
    return (m.get("all_rounds") or m)[key]


def round_ratios(a: dict, b: dict) -> list[float]:
    """Each round's requests/s of ``a`` ÷ ``b``, in round order, over the rounds both ran."""
    ra, rb = a.get("rounds_rps") or [], b.get("rounds_rps") or []
    by_round = dict(zip(b.get("rounds") or range(1, len(rb) + 1), rb))
    return [x / by_round[n] for n, x in zip(a.get("rounds") or range(1, len(ra) + 1), ra) if by_round.get(n)]


def _per_round(a: dict | None, b: dict | None) -> str:
    """'; rounds 0.80/0.62/...' (each round's ratio) when the two shared two rounds or more."""
    pairs = round_ratios(a, b) if a and b else []
    return f"; rounds {'/'.join(f'{p:.2f}' for p in pairs)}" if len(pairs) >= 2 else ""


def _x(value):
    return "n/a" if value is None else f"{value:.2f}×"


def _wrk(results, size, layout: str = "shared"):
    """The per-endpoint wrk rows of ``size``: ``shared`` (every process on every
    CPU) or ``pinned`` (the server alone on a core; bench/affinity.py)."""
    return results["sizes"][str(size)].get("wrk" if layout == "shared" else "wrk_pinned", [])


PINNED = " — server alone on a core"
SHARED = " — every process on the same cores (reported, not judged)"


def verdict(target: dict, missed: str = "**missed**") -> str:
    """A target's verdict cell: met, missed, or reported (measured in a layout
    that does not judge it)."""
    return "reported" if target["met"] is None else "met" if target["met"] else missed


def pinned_workers(results, size) -> int:
    """The gunicorn workers of the pinned layout's server (bench/run.py records them
    in the layout); a report of an earlier run, which reused the shared table's
    two-worker server, has none recorded."""
    return results["sizes"][str(size)].get("pinned_layout", {}).get("server_workers", 2)


def _find(rows, endpoint, variant, mode):
    for r in rows:
        if r["endpoint"] == endpoint and r["variant"] == variant and r["mode"] == mode:
            return r
    return None


def _sizes(results):
    return [int(s) for s in results["sizes"]]


# --- CSV -------------------------------------------------------------------------

def _flat(row: dict) -> dict:
    """A wrk row with its CPU reading as ``cpu_<part>_ms`` columns."""
    out = {k: v for k, v in row.items() if k != "cpu"}
    out.update({f"cpu_{k}": v for k, v in (row.get("cpu") or {}).items()})
    return out


def write_csvs(results, out: Path):
    raw = out / "raw"
    for layout, name in (("shared", "wrk.csv"), ("pinned", "wrk_pinned.csv")):
        rows = [_flat(r) for s in _sizes(results) for r in _wrk(results, s, layout)]
        if rows:
            with open(raw / name, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
                w.writeheader()
                w.writerows(rows)
    with open(raw / "queries.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["size", "endpoint", "variant", "status", "queries_first", "queries_repeat", "app_ms_first",
                    "app_ms_repeat", "bytes"])
        for s in _sizes(results):
            for p in results["sizes"][str(s)].get("probes", []):
                w.writerow([s, p["endpoint"], p["variant"], "/".join(map(str, p["status"])),
                            max(p["queries_first"], default=None), max(p["queries_repeat"], default=None),
                            p["app_ms_first"], p["app_ms_repeat"], p["bytes"]])
    mixes = results.get("mix") or {}
    if mixes:
        with open(raw / "mix.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["variant", "rps", "p50_ms", "p95_ms", "p99_ms", "requests", "writes", "errors",
                        "write_failed", "hit_ratio", "stale", "checked", "rounds_rps"])
            for v, m in mixes.items():
                w.writerow([v, m["rps"], m["p50_ms"], m["p95_ms"], m["p99_ms"], m["requests"], m["writes"],
                            mix_total(m, "errors"), mix_total(m, "write_failed"), m["hit_ratio"],
                            mix_total(m, "stale"), mix_total(m, "checked"),
                            "/".join(f"{r:.1f}" for r in m.get("rounds_rps") or [])])


# --- plots -------------------------------------------------------------------------

def _pyplot():
    """matplotlib (a bench-only package) on the Agg backend, imported only to draw:
    the tables and targets are computed (and tested) without it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_throughput(results, out: Path) -> str:
    plt = _pyplot()
    main = results["meta"]["main_size"]
    rows = _wrk(results, main)
    endpoints = [e for e in ENDPOINT_LABELS if e != "floor" and any(r["endpoint"] == e for r in rows)]
    cases = [k for k in VARIANT_LABELS if k[0] != "floor"]
    fig, ax = plt.subplots(figsize=(11, 5))
    width = 0.8 / len(cases)
    for i, (variant, mode) in enumerate(cases):
        values = [(_find(rows, e, variant, mode) or {}).get("rps", 0) for e in endpoints]
        color = COLORS[variant]
        ax.bar([x + i * width for x in range(len(endpoints))], values, width, label=VARIANT_LABELS[(variant, mode)],
               color=color, alpha=0.55 if mode == "cold" else 1.0, hatch="//" if mode == "cold" else None)
    floor = _find(rows, "floor", "floor", "floor")
    if floor:
        ax.axhline(floor["rps"], color=COLORS["floor"], linestyle="--", label=f"floor ({floor['rps']:.0f} req/s)")
    ax.set_xticks([x + width * (len(cases) - 1) / 2 for x in range(len(endpoints))])
    ax.set_xticklabels([ENDPOINT_LABELS[e] for e in endpoints])
    ax.set_ylabel("requests/s (wrk, higher is better)")
    ax.set_title(f"Throughput per endpoint and variant, {main:,} jobs")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "throughput.png", dpi=80)
    plt.close(fig)
    return "throughput.png"


def plot_latency(results, out: Path) -> str:
    plt = _pyplot()
    main = results["meta"]["main_size"]
    rows = _wrk(results, main)
    cases = [k for k in VARIANT_LABELS]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    ax = axes[0]
    labels, p50, p95, p99 = [], [], [], []
    for variant, mode in cases:
        endpoint = "floor" if variant == "floor" else "job_list"
        r = _find(rows, endpoint, variant, mode)
        if r:
            labels.append(SHORT_LABELS[(variant, mode)])
            p50.append(r["p50_ms"] or 0)
            p95.append(r["p95_ms"] or 0)
            p99.append(r["p99_ms"] or 0)
    xs = range(len(labels))
    for j, (vals, name) in enumerate(((p50, "p50"), (p95, "p95"), (p99, "p99"))):
        ax.bar([x + j * 0.27 for x in xs], vals, 0.27, label=name)
    ax.set_xticks([x + 0.27 for x in xs])
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("ms (log scale, lower is better)")
    ax.set_title(f"Job list latency under wrk load, {main:,} jobs")
    ax.legend()
    ax = axes[1]
    mixes = {k: v for k, v in (results.get("mix") or {}).items()}
    if mixes:
        names = list(mixes)
        for j, key in enumerate(("p50_ms", "p95_ms", "p99_ms")):
            ax.bar([x + j * 0.27 for x in range(len(names))], [mixes[n][key] or 0 for n in names], 0.27,
                   label=key[:3])
        ax.set_xticks([x + 0.27 for x in range(len(names))])
        ax.set_xticklabels([MIX_SHORT[n] for n in names], fontsize=8)
        ax.set_yscale("log")
        ax.set_title("The mix (95% reads, 5% writes): latency")
        ax.legend()
    fig.tight_layout()
    fig.savefig(out / "latency.png", dpi=80)
    plt.close(fig)
    return "latency.png"


def plot_queries(results, out: Path) -> str:
    plt = _pyplot()
    sizes = _sizes(results)
    endpoints = [e for e in ENDPOINT_LABELS if e != "floor"]
    fig, axes = plt.subplots(2, 3, figsize=(12, 6.5), sharex=True)
    for ax, endpoint in zip(axes.flat, endpoints):
        lines = [("naive", "queries_first", "(a) naive", "-", "o", 1.5),
                 ("cachalot", "queries_first", "(c) cachalot, first sight", "-", "s", 1.5),
                 ("cachalot", "queries_repeat", "(c) cachalot, repeated", ":", "s", 1.5),
                 ("tuned", "queries_first", "(b) tuned", "-", "^", 4),
                 ("shiftboard", "queries_first", "Shiftboard, miss", "-", "o", 2),
                 ("shiftboard", "queries_repeat", "Shiftboard, hit", "--", "o", 2)]
        for variant, key, label, style, marker, width in lines:
            ys = []
            for s in sizes:
                probe = next((p for p in results["sizes"][str(s)].get("probes", [])
                              if p["endpoint"] == endpoint and p["variant"] == variant), None)
                ys.append(max(probe[key]) if probe and probe[key] and None not in probe[key] else None)
            ax.plot(sizes, ys, marker=marker, label=label, color=COLORS[variant], linestyle=style,
                    linewidth=width, alpha=0.6 if variant == "tuned" else 1.0)
        ax.set_xscale("log")
        ax.set_title(ENDPOINT_LABELS[endpoint])
        ax.set_ylabel("queries per request")
    axes.flat[0].legend(fontsize=7)
    for ax in axes[1]:
        ax.set_xlabel("jobs in the database")
    fig.suptitle("Queries per request against data size")
    fig.tight_layout()
    fig.savefig(out / "queries.png", dpi=80)
    plt.close(fig)
    return "queries.png"


def plot_latency_vs_size(results, out: Path) -> str:
    plt = _pyplot()
    sizes = _sizes(results)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for (variant, mode), label in VARIANT_LABELS.items():
        endpoint = "floor" if variant == "floor" else "job_list"
        ys = [(_find(_wrk(results, s), endpoint, variant, mode) or {}).get("p50_ms") for s in sizes]
        ax.plot(sizes, ys, marker="o", label=label, color=COLORS[variant], linestyle="--" if mode == "cold" else "-")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("jobs in the database")
    ax.set_ylabel("p50 latency, ms (wrk, log scale)")
    ax.set_title("Job list p50 latency against data size")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "latency_vs_size.png", dpi=80)
    plt.close(fig)
    return "latency_vs_size.png"


def plot_mix(results, out: Path) -> str | None:
    plt = _pyplot()
    mixes = results.get("mix") or {}
    if not mixes:
        return None
    names = list(mixes)
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.bar([MIX_SHORT[n] for n in names], [mixes[n]["rps"] for n in names],
           color=[COLORS.get(n, "#555555") for n in names])
    ax.set_ylabel("requests/s")
    ax.set_title("The mix: 95% reads, 5% writes (Python driver, 8 processes)")
    plt.xticks(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "mix.png", dpi=80)
    plt.close(fig)
    return "mix.png"


# --- the slow-query hook, on and off -------------------------------------------------

def _median_ci(values: list[float]) -> tuple[float | None, float | None]:
    """A distribution-free 95% confidence interval of the median (order statistics
    of the sorted values, normal approximation of the binomial); None, None under
    six values."""
    xs = sorted(values)
    n = len(xs)
    if n < 6:
        return None, None
    half = 1.96 * math.sqrt(n) / 2
    low, high = math.floor(n / 2 - half), math.ceil(1 + n / 2 + half)  # ranks, counted from 1
    return xs[max(low, 1) - 1], xs[min(high, n) - 1]


def _pct(part, whole):
    return None if part is None or not whole else part / whole


def _signed(value, digits=2, unit=""):
    return "n/a" if value is None else f"{value:+.{digits}f}{unit}"


def _signed_pct(value):
    return "n/a" if value is None else f"{value:+.1%}"


# Two-sided 95% quantiles of Student's t by degrees of freedom (1..30); 1.96 above.
_T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def _mean_t_ci(values: list[float]) -> tuple[float | None, float | None, float | None]:
    """Mean and its 95% t-interval (mean, low, high); the interval is None, None
    under two values."""
    xs = [v for v in values if v is not None]
    if not xs:
        return None, None, None
    mean = statistics.fmean(xs)
    if len(xs) < 2:
        return mean, None, None
    df = len(xs) - 1
    half = (_T95[df - 1] if df <= len(_T95) else 1.96) * statistics.stdev(xs) / math.sqrt(len(xs))
    return mean, mean - half, mean + half


def _wrk_pairs(rows: list[dict], endpoint: str) -> list[tuple[float, float]]:
    """(on, off) req/s of each round that has both servers, in round order."""
    by_round: dict[int, dict[str, float]] = {}
    for r in rows:
        if r["endpoint"] == endpoint:
            by_round.setdefault(r["round"], {})[r["hook"]] = r["rps"]
    return [(v["on"], v["off"]) for _, v in sorted(by_round.items()) if "on" in v and "off" in v]


def hook_summary(results) -> list[dict]:
    """Per endpoint of the hook comparison (bench/run.py, slow_query_hook_cost).

    Same process (the primary measure): both states' median server time, the median
    of the on − off pair differences with its 95% interval, in ms and relative to
    the hook-off median, and how many responses ran with the state they asked for.
    Two servers: mean requests/s per server over the wrk rounds and the mean of the
    rounds' relative differences (on ÷ off − 1) with its 95% t-interval."""
    hook = results.get("slow_query_hook") or {}
    same = hook.get("same_process") or {}
    wrk = hook.get("wrk") or []
    endpoints = list(same) + [e for e in dict.fromkeys(r["endpoint"] for r in wrk) if e not in same]
    out = []
    for endpoint in endpoints:
        empty = {"app_ms": [], "db_ms": [], "queries": [], "x_cache": {}, "ran_with": {}}
        on, off = (same.get(endpoint) or {}).get("on", empty), (same.get(endpoint) or {}).get("off", empty)
        on_ms, off_ms = _median(on["app_ms"]), _median(off["app_ms"])
        pairs = [a - b for a, b in zip(on["app_ms"], off["app_ms"]) if a is not None and b is not None]
        paired = _median(pairs)
        low, high = _median_ci(pairs)
        rounds = _wrk_pairs(wrk, endpoint)
        rps_pct, rps_low, rps_high = _mean_t_ci([a / b - 1 for a, b in rounds if b])
        mine = {name: [r for r in wrk if r["endpoint"] == endpoint and r["hook"] == name] for name in ("on", "off")}
        runs = {name: [r["rps"] for r in mine[name]] for name in ("on", "off")}
        out.append({
            "endpoint": endpoint, "n": len(pairs),
            "on_ms": on_ms, "off_ms": off_ms, "on_db_ms": _median(on["db_ms"]), "off_db_ms": _median(off["db_ms"]),
            "paired_ms": paired, "paired_low_ms": low, "paired_high_ms": high,
            "paired_pct": _pct(paired, off_ms), "paired_low_pct": _pct(low, off_ms),
            "paired_high_pct": _pct(high, off_ms),
            "queries": sorted(set(on["queries"]) | set(off["queries"])),
            "probe_misses": {"on": on["x_cache"].get("MISS", 0), "off": off["x_cache"].get("MISS", 0)},
            "probe_requests": {"on": sum(on["x_cache"].values()), "off": sum(off["x_cache"].values())},
            # Responses that ran with the state they asked for (bench/middleware.py's answer).
            "ran_as_asked": {"on": on["ran_with"].get("on", 0), "off": off["ran_with"].get("off", 0)},
            "rps_on": statistics.fmean(runs["on"]) if runs["on"] else None,
            "rps_off": statistics.fmean(runs["off"]) if runs["off"] else None,
            "rounds": len(rounds), "rps_pct": rps_pct, "rps_low_pct": rps_low, "rps_high_pct": rps_high,
            **{f"wrk_{key}": {name: sum(r[key] for r in mine[name]) for name in ("on", "off")}
               for key in ("misses", "requests", "errors")},
        })
    return out


def _median(values):
    xs = [v for v in values if v is not None]
    return statistics.median(xs) if xs else None


def hook_state_ok(results) -> bool:
    """The two servers reported what they were started for: the hook on the
    connections of the one with SLOW_QUERY_MS=100, not on the other's."""
    state = (results.get("slow_query_hook") or {}).get("state") or {}
    return (state.get("on", {}).get("installed") is True and state.get("off", {}).get("installed") is False)


def hook_toggle_ok(results) -> bool:
    """The same-process comparison measured what it says: on the hook-on server,
    /bench/slow-query-hook/ found the wrapper on the connection without the header
    and with ``on``, and not with ``off`` (every check), and every measured response
    reported that it ran with the state it asked for."""
    hook = results.get("slow_query_hook") or {}
    toggle = hook.get("toggle") or {}
    checks = (all(toggle.get("none") or [False]) and all(toggle.get("on") or [False])
              and toggle.get("off") and not any(toggle["off"]))
    rows = [h for h in hook_summary(results) if h["n"]]
    ran = rows and all(h["ran_as_asked"][name] == h["probe_requests"][name] > 0 for h in rows for name in ("on", "off"))
    return bool(checks and ran)


def hook_per_statement_ns(results) -> float | None:
    alone = ((results.get("slow_query_hook") or {}).get("in_process") or {}).get("alone")
    return alone["wrapped_ns"] - alone["direct_ns"] if alone else None


# --- targets -----------------------------------------------------------------------

def throughput_targets(rows: list[dict], main: int, suffix: str = "", judged: bool = True) -> list[dict]:
    """The targets read from one per-endpoint table (one layout); ``met`` is None
    where that layout only reports them."""
    out = []

    def add(name, measured, ok, detail):
        out.append({"target": name + suffix, "measured": measured, "met": ok if judged else None, "detail": detail})

    hit = _find(rows, "job_list", "shiftboard", "hit")
    floor = _find(rows, "floor", "floor", "floor")
    r = rps_ratio(hit, floor)
    spent = f"; CPU per request: hit {cpu_text(hit)}, floor {cpu_text(floor)}" if cpu_text(hit) else ""
    add("cached public GET ≥ 0.8× the floor's throughput (job list, cache hit)", _x(r),
        r is not None and r >= 0.8,
        f"{_fmt(hit and hit['rps'])} vs {_fmt(floor and floor['rps'])} req/s at {main:,} jobs"
        f"{_per_round(hit, floor)}{spent}" + round_trip_bound(rows, hit, floor))

    def worst(endpoints, variant, mode, over):
        """The lowest ratio over ``endpoints`` (None if any is missing) and its detail."""
        ratios, parts = [], []
        for e in endpoints:
            a, b = _find(rows, e, variant, mode), over(e)
            ratios.append(rps_ratio(a, b))
            parts.append(f"{ENDPOINT_LABELS[e]} {_x(ratios[-1])} ({_fmt(a and a['rps'])} vs {_fmt(b and b['rps'])} "
                         f"req/s{_per_round(a, b)})")
        low = None if None in ratios or not ratios else min(ratios)
        return low, "; ".join(parts)

    signed_in = ("payments", "saved")
    low, detail = worst(signed_in, "shiftboard", "hit", lambda e: floor)
    add("signed-in cached GET ≥ 0.6× the floor (a user's payments, saved jobs; the lower)", _x(low),
        low is not None and low >= 0.6, detail)

    low, detail = worst(("job_list", "payments"), "shiftboard", "revalidate",
                        lambda e: _find(rows, e, "shiftboard", "hit"))
    add("304 revalidation ≥ 1× the cache hit (job list, a user's payments; the lower)", _x(low),
        low is not None and low >= 1, detail + "; " + ", ".join(
            f"{ENDPOINT_LABELS[e]} {(_find(rows, e, 'shiftboard', 'revalidate') or {}).get('not_modified', 'n/a')} "
            "answers 304" for e in ("job_list", "payments")))

    cold = _find(rows, "job_list", "shiftboard", "cold")
    tuned = _find(rows, "job_list", "tuned", "warm")
    r = rps_ratio(cold, tuned)
    spent = f"; CPU per request: miss {cpu_text(cold)}, (b) {cpu_text(tuned)}" if cpu_text(cold) else ""
    add("cold job list ≥ 3× baseline (b)", _x(r), r is not None and r >= 3,
        f"{_fmt(cold and cold['rps'])} (every request a miss) vs {_fmt(tuned and tuned['rps'])} req/s"
        f"{_per_round(cold, tuned)}{spent}")

    low, detail = worst(("job_detail", "profile", "reviews", "payments"), "shiftboard", "cold",
                        lambda e: _find(rows, e, "tuned", "warm"))
    add("cold detail / profile / reviews / payments ≥ 1.5× baseline (b) (the lowest)", _x(low),
        low is not None and low >= 1.5, detail)
    return out


def bound_ratios(rows: list[dict], hit: dict | None, floor: dict | None) -> tuple[dict, str, str] | None:
    """What bounds the hit ÷ floor figure: the floor after one round trip to Redis
    with a script that only reads the clock (every hit is validated in Redis, so
    no hit can cost less): (its row, its ratio to the floor, the hit's ratio to
    it), or None when the run did not measure it."""
    bound = _find(rows, "floor", "floor", "round_trip")
    if not (bound and hit and floor):
        return None
    return bound, _x(rps_ratio(bound, floor)), _x(rps_ratio(hit, bound))


def round_trip_bound(rows: list[dict], hit: dict | None, floor: dict | None) -> str:
    """``bound_ratios`` as the public-hit target's detail says it ('' without it)."""
    found = bound_ratios(rows, hit, floor)
    if found is None:
        return ""
    bound, of_floor, of_bound = found
    return (f"; bound: the floor after one bare Redis round trip runs at {of_floor} "
            f"the floor ({_fmt(bound['rps'])} req/s), and the hit at {of_bound} of that")


def targets(results) -> list[dict]:
    main = results["meta"]["main_size"]
    sizes = _sizes(results)
    # With the pinned table, the throughput targets are judged there: the layout of
    # a deployment (bench/affinity.py), where a hit's Redis work is not taken from
    # the server's cores as it is in the shared one, whose figures are reported.
    pinned = _wrk(results, main, "pinned")
    if pinned:
        out = throughput_targets(pinned, main, PINNED)
        out += throughput_targets(_wrk(results, main), main, SHARED, judged=False)
    else:
        out = throughput_targets(_wrk(results, main), main)

    def add(name, measured, ok, detail):
        out.append({"target": name, "measured": measured, "met": ok, "detail": detail})

    mixes = results.get("mix") or {}
    sb, naive, cach = mixes.get("shiftboard"), mixes.get("naive"), mixes.get("cachalot")
    r = rps_ratio(sb, naive)
    add("mix ≥ 10× baseline (a)", _x(r), r is not None and r >= 10,
        f"{_fmt(sb and sb['rps'])} vs {_fmt(naive and naive['rps'])} req/s" + _per_round(sb, naive))
    r = rps_ratio(sb, cach)
    add("mix ≥ 12× baseline (c)", _x(r), r is not None and r >= 12,
        f"{_fmt(sb and sb['rps'])} vs {_fmt(cach and cach['rps'])} req/s" + _per_round(sb, cach))
    hr = sb and sb["hit_ratio"]
    add("mix hit ratio ≥ 90%", "n/a" if hr is None else f"{hr:.1%}", hr is not None and hr >= 0.9,
        f"{sb['hits'] if sb else 0} hits, {sb['misses'] if sb else 0} misses (X-Cache)")
    runs = [m for k, m in mixes.items() if k != "driver_ceiling"]
    stale = sum(mix_total(m, "stale") for m in runs) if mixes else None
    checked = sum(mix_total(m, "checked") for m in runs) if mixes else 0
    rounds = max((len(m.get("rounds_rps") or [1]) for m in runs), default=1)
    add("0 stale reads in the mix",
        "n/a" if stale is None else f"{stale} of {checked} read-backs (all four variants"
        + (f", all {rounds} rounds)" if rounds > 1 else ")"),
        stale == 0 and checked > 0 and sb is not None and mix_total(sb, "stale") == 0,
        f"Shiftboard: {mix_total(sb, 'stale') if sb else 'n/a'} of {mix_total(sb, 'checked') if sb else 0}")

    flat, detail = True, []
    for endpoint in ENDPOINT_LABELS:
        if endpoint == "floor":
            continue
        counts = []
        for s in sizes:
            p = next((p for p in results["sizes"][str(s)].get("probes", [])
                      if p["endpoint"] == endpoint and p["variant"] == "shiftboard"), None)
            counts.append(max(p["queries_first"]) if p and p["queries_first"] else None)
        ok = len(set(counts)) == 1 and counts[0] is not None
        flat &= ok
        detail.append(f"{ENDPOINT_LABELS[endpoint]} {'/'.join(_fmt(c) for c in counts)}")
    add("queries per request flat across data sizes (Shiftboard, miss)", "flat" if flat else "not flat", flat,
        "; ".join(detail))

    hooks = [h for h in hook_summary(results) if h["n"]]
    pcts = [h["paired_pct"] for h in hooks]
    worst_pct = None if not hooks or None in pcts else max(pcts)
    toggle_ok = hook_toggle_ok(results)
    measured = _signed_pct(worst_pct)
    parts = []
    if worst_pct is not None:
        top = max(hooks, key=lambda h: h["paired_pct"])
        if top["paired_high_pct"] is not None:
            measured += f" (95% interval {_signed_pct(top['paired_low_pct'])} to {_signed_pct(top['paired_high_pct'])})"
    for h in hooks:
        parts.append(f"{ENDPOINT_LABELS[h['endpoint']]} {_signed(h['paired_ms'])} ms ({_signed_pct(h['paired_pct'])}) "
                     f"of {_fmt(h['off_ms'], 2)} ms, median of {h['n']} same-process pairs"
                     + ("" if h["paired_low_ms"] is None else
                        f" (95% interval {_signed(h['paired_low_ms'])} to {_signed(h['paired_high_ms'])} ms, "
                        f"{_signed_pct(h['paired_low_pct'])} to {_signed_pct(h['paired_high_pct'])})"))
    highs = [h["paired_high_pct"] for h in hooks]
    if hooks and None not in highs:
        parts.append("the 95% intervals' upper ends are within 2%" if max(highs) <= 0.02 else
                     "an interval reaches above 2%, so this run does not settle it")
    per_statement = hook_per_statement_ns(results)
    if per_statement is not None:
        parts.append(f"in process {per_statement:+.0f} ns per statement")
    for h in hook_summary(results):
        if h["rps_pct"] is not None:
            parts.append(f"two servers, {ENDPOINT_LABELS[h['endpoint']]} req/s {_signed_pct(h['rps_pct'])}"
                         + ("" if h["rps_low_pct"] is None else
                            f" (95% interval {_signed_pct(h['rps_low_pct'])} to {_signed_pct(h['rps_high_pct'])}, "
                            "process-to-process variation included)"))
    if hooks and not toggle_ok:
        parts.append("the hook was not verified off / on as asked in the same process")
    add("slow-query hook costs ≤ 2% of a miss's server time (job list, job detail; the higher; median of "
        "same-process on/off pairs)", measured, worst_pct is not None and worst_pct <= 0.02 and toggle_ok,
        "; ".join(parts) if parts else "not measured in this run")

    small, large = min(sizes), 100_000 if 100_000 in sizes else max(sizes)
    a = _find(_wrk(results, small), "job_list", "shiftboard", "cold")
    b = _find(_wrk(results, large), "job_list", "shiftboard", "cold")
    r = _ratio(b and b["p50_ms"], a and a["p50_ms"])
    ha = _find(_wrk(results, small), "job_list", "shiftboard", "hit")
    hb = _find(_wrk(results, large), "job_list", "shiftboard", "hit")
    add(f"job list p50 at {large:,} ≤ 1.5× p50 at {small:,} (cache miss)", _x(r), r is not None and r <= 1.5,
        f"miss {_fmt(a and a['p50_ms'], 2)} → {_fmt(b and b['p50_ms'], 2)} ms; "
        f"hit {_fmt(ha and ha['p50_ms'], 2)} → {_fmt(hb and hb['p50_ms'], 2)} ms")
    return out


def diagnostics(results) -> list[str]:
    """Facts from the run that bear on a missed target (computed, not written by hand)."""
    notes = []
    mixes = results.get("mix") or {}
    sb, ceiling = mixes.get("shiftboard"), mixes.get("driver_ceiling")
    if sb and ceiling and ceiling["rps"]:
        share = sb["rps"] / ceiling["rps"]
        notes.append(
            f"The mix driver (Python, {results['meta']['mix_processes']} processes on the same "
            f"{results['meta']['cpus']} cores as the server) reaches {ceiling['rps']:.0f} req/s against the floor; "
            f"Shiftboard's mix ran at {share:.0%} of that ceiling"
            + (", so the driver, not the server, bounds the mix figure." if share > 0.7 else ".")
        )
    if sb:
        kinds = sb["by_kind"]
        parts = [f"{k} {v['n']} × {v['mean_ms']:.1f} ms" for k, v in sorted(kinds.items()) if v["mean_ms"]]
        notes.append("Shiftboard mix, requests by kind (count × mean latency): " + ", ".join(parts) + ".")
        parts = [f"{k} {v.get('hits', 0)}/{v.get('hits', 0) + v.get('misses', 0)}"
                 for k, v in sorted(kinds.items()) if v.get("hits", 0) + v.get("misses", 0)]
        if parts:
            notes.append("Shiftboard mix, cache hits per read kind (hits/lookups; read-backs after writes "
                         "included): " + ", ".join(parts) + ".")
    if sb and sb.get("scope_bumps"):
        bumps = ", ".join(f"{k} ×{v}" for k, v in list(sb["scope_bumps"].items())[:10])
        notes.append(f"Cache invalidations during Shiftboard's mix ({sb['writes']} writes), by scope: {bumps}. "
                     "A bump of a global scope (`jobs`, `reviews`) retires every cached list that "
                     "depends on it.")
    main = results["meta"]["main_size"]
    probes = results["sizes"][str(main)].get("probes", [])
    sbp = next((p for p in probes if p["endpoint"] == "job_list" and p["variant"] == "shiftboard"), None)
    tp = next((p for p in probes if p["endpoint"] == "job_list" and p["variant"] == "tuned"), None)
    fp = next((p for p in probes if p["endpoint"] == "floor"), None)
    if sbp and tp and sbp.get("db_ms_first") is not None:
        notes.append(
            f"Job list at {main:,} jobs, server time of one request (Server-Timing, no load): Shiftboard miss "
            f"{sbp['app_ms_first']:.1f} ms of which {sbp['db_ms_first']:.1f} ms in the database; (b) "
            f"{tp['app_ms_first']:.1f} ms of which {tp['db_ms_first']:.1f} ms in the database; Shiftboard hit "
            f"{sbp['app_ms_repeat']:.1f} ms"
            + (f"; the floor {fp['app_ms_first']:.1f} ms." if fp and fp["app_ms_first"] is not None else ".")
        )
    for v, m in mixes.items():
        if mix_total(m, "pool_exhausted"):
            notes.append(f"{MIX_LABELS[v]}: {mix_total(m, 'pool_exhausted')} writes (all rounds) found their pool "
                         "empty and were replaced by reads (raise --mix-per-slice).")
    if sb and mix_total(sb, "write_failed"):
        notes.append(f"Shiftboard mix: {mix_total(sb, 'write_failed')} writes failed (all rounds): "
                     + "; ".join(f"{k} {s}: {t[:80]}" for k, s, t in mix_total(sb, "write_fail_detail")[:3]))
    for v, m in mixes.items():
        if mix_total(m, "stale_detail"):
            notes.append(f"Stale reads in {MIX_LABELS[v]}: "
                         + "; ".join(f"{k}: {w}" for k, w in mix_total(m, "stale_detail")[:3]))
    return notes


# --- report.md ---------------------------------------------------------------------

CPU_PARTS = (("server", "server"), ("postgres", "PostgreSQL"), ("redis", "Redis"), ("driver", "load driver"))


def cpu_text(row: dict | None) -> str:
    """``2.41 ms (server 1.90, PostgreSQL 0.00, Redis 0.23, load driver 0.28)``: a
    row's CPU per request (bench/cpu.py), or '' for a run without that reading."""
    cpu = (row or {}).get("cpu")
    if not cpu:
        return ""
    parts = ", ".join(f"{label} {cpu[part + '_ms']:.2f}" for part, label in CPU_PARTS)
    return f"{cpu['total_ms']:.2f} ms ({parts})"


def cpu_table(rows: list[dict]) -> list[str]:
    """Where each run's CPU went, per request (bench/cpu.py); none for results
    recorded before the bench read it."""
    measured = [r for r in rows if r.get("cpu")]
    if not measured:
        return []
    L = ["\nCPU per answered request, ms (user + system, this machine, during each run: the server's "
         "process group, every local PostgreSQL and Redis process, the load driver; *busy*: all of it ÷ "
         "(the run's wall time × the CPUs), so near 100% the run was CPU-bound and a ratio of requests/s is "
         "the inverse ratio of these totals; bench/cpu.py):\n",
         "| endpoint | variant | server | PostgreSQL | Redis | load driver | total | busy |",
         "|---|---|---|---|---|---|---|---|"]
    for r in measured:
        cpu = r["cpu"]
        busy = "n/a" if cpu.get("busy") is None else f"{cpu['busy']:.0%}"
        L.append(f"| {ENDPOINT_LABELS[r['endpoint']]} | {VARIANT_LABELS[(r['variant'], r['mode'])]} | "
                 + " | ".join(f"{cpu[part + '_ms']:.2f}" for part, _ in CPU_PARTS)
                 + f" | {cpu['total_ms']:.2f} | {busy} |")
    return L


def endpoint_tables(rows: list[dict]) -> list[str]:
    """The per-endpoint table of one layout, and its ratios."""
    L = []
    L.append("| endpoint | variant | req/s | p50 ms | p95 ms | p99 ms | errors | X-Cache hits/misses |")
    L.append("|---|---|---|---|---|---|---|---|")
    for r in rows:
        hm = f"{r['hits']}/{r['misses']}" if r["variant"] == "shiftboard" else ""
        if r["mode"] == "revalidate":
            hm += f" ({r.get('not_modified')} × 304)"
        L.append(f"| {ENDPOINT_LABELS[r['endpoint']]} | {VARIANT_LABELS[(r['variant'], r['mode'])]} | "
                 f"{r['rps']:,.1f} | {_fmt(r['p50_ms'], 2)} | {_fmt(r['p95_ms'], 2)} | {_fmt(r['p99_ms'], 2)} | "
                 f"{r['errors']} | {hm} |")
    L += cpu_table(rows)
    L.append("\nRatios (requests/s, within this run):\n")
    L.append("| endpoint | hit ÷ (a) | hit ÷ (b) | hit ÷ (c) | miss ÷ (a) | miss ÷ (b) | miss ÷ (c) | hit ÷ floor "
             "| miss ÷ floor | 304 ÷ floor | 304 ÷ hit |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|")
    floor = _find(rows, "floor", "floor", "floor")
    for endpoint in ENDPOINT_LABELS:
        hit = _find(rows, endpoint, "shiftboard", "hit")
        if not hit:
            continue
        cold = _find(rows, endpoint, "shiftboard", "cold")
        base = {v: _find(rows, endpoint, v, "warm") for v in ("naive", "tuned", "cachalot")}
        cells = [_x(rps_ratio(hit, base[v])) for v in base]
        cells += [_x(rps_ratio(cold, base[v])) for v in base]
        cells.append(_x(rps_ratio(hit, floor)))
        cells.append(_x(rps_ratio(cold, floor)))
        reval = _find(rows, endpoint, "shiftboard", "revalidate")
        cells.append(_x(rps_ratio(reval, floor)))
        cells.append(_x(rps_ratio(reval, hit)))
        L.append(f"| {ENDPOINT_LABELS[endpoint]} | " + " | ".join(cells) + " |")
    return L


def write_markdown(results, out: Path, plots: dict, tgt: list[dict]) -> str:
    meta = results["meta"]
    main = meta["main_size"]
    rows = _wrk(results, main)
    L = []
    L.append(f"# Shiftboard benchmark — {out.name}\n")
    L.append(
        f"Run by `make bench` (`python -m bench.run`) at {meta['started']} on commit `{meta['commit']}`: "
        f"{meta['cpus']} CPUs ({meta['cpu']}), Python {meta['python']}, {meta['wrk'] or 'no wrk'}. "
        + (f"**The work tree had uncommitted changes in {len(meta['uncommitted'])} files** "
           f"({', '.join(meta['uncommitted'][:8])}{' …' if len(meta['uncommitted']) > 8 else ''}). "
           if meta.get("uncommitted") else ("The work tree was clean. " if "uncommitted" in meta else ""))
        + f"Whole run: {meta['elapsed_s']:.0f} s. Load average before the run: "
        f"{', '.join(f'{x:.2f}' for x in meta['load_before'])}.\n"
    )
    L.append(
        f"Server: gunicorn (`config/gunicorn.py`), {meta.get('gunicorn_workers', 2)} gthread workers × "
        f"{meta.get('gunicorn_threads', 8)} threads, `DEBUG=0`, `PERF_HEADERS=1`, "
        + ("`DATABASE_POOL=1` (as `make serve`), " if meta.get("database_pool") else "")
        + "PostgreSQL "
        f"(`{meta['database']}`), Redis (db {meta['redis_db'].lstrip('/')}), bench settings `bench.settings` "
        "(Shiftboard's settings + django-cachalot, active only under /bench/cachalot/; its raw-SQL write "
        "detector off, which taxed only Shiftboard's prepared reads). "
        + (f"Load: wrk, {meta['threads']} threads, {meta['connections']} connections, "
           if meta.get("load_driver", "wrk") == "wrk" else
           f"Load: **wrk was missing: the bench's Python driver** ({meta['connections']} processes), ")
        + f"{meta['duration_s']:.0f} s a run, loopback"
        + (", each run started once the server, PostgreSQL and Redis were idle (the previous case's requests "
           "still in flight finished first)" if meta.get("settled") else "")
        + (f", at the largest size every case run in each of {meta['rounds']} interleaved rounds and reported at its median run "
           "(requests/s, latencies and CPU of that run), and a ratio of two cases is the median over the rounds of "
           "that round's ratio (a round the machine ran slow for both cancels out)" if meta.get("rounds", 1) > 1 else "")
        + "; the mix: the bench's Python driver, "
        f"{meta['mix_processes']} processes, {meta['mix_duration_s']:.0f} s per variant"
        + (f" in each of {meta['mix_rounds']} interleaved rounds (each variant at its median run, a ratio the "
           "median of the rounds' ratios)" if meta.get("mix_rounds", 1) > 1 else "") + ". "
        "Every number below was measured in this run; ratios are within the run.\n"
    )
    if meta.get("reuse_data"):
        L.append("**Development run: the data was not re-seeded (`--reuse-data`).**\n")
    L.append("## Targets\n")
    if _wrk(results, results["meta"]["main_size"], "pinned"):
        L.append("The throughput targets are judged with the server alone on a core (the layout of a deployment, "
                 "where PostgreSQL, Redis and the clients are other machines: bench/affinity.py); the same targets "
                 "with every process on the same cores are reported beside them, not judged.\n")
    L.append("| target | measured | verdict | detail |\n|---|---|---|---|")
    for t in tgt:
        L.append(f"| {t['target']} | {t['measured']} | {verdict(t, '**MISSED**')} | {t['detail']} |")
    notes = diagnostics(results)
    if notes:
        L.append("\n" + "\n".join(f"- {n}" for n in notes))
    L.append("\n## Data\n")
    L.append("| jobs (requested) | jobs | users | applications | payments | reviews | saved jobs | seed time |")
    L.append("|---|---|---|---|---|---|---|---|")
    for s in _sizes(results):
        e = results["sizes"][str(s)]
        c = e.get("counts", {})
        seed = "reused" if e.get("seed_s") is None else f"{e['seed_s']:.1f} s"
        if e.get("vacuum_analyze_s") is not None:
            seed += f" + VACUUM ANALYZE {e['vacuum_analyze_s']:.1f} s"
        L.append(f"| {s:,} | {_fmt(c.get('jobs'))} | {_fmt(c.get('users'))} | {_fmt(c.get('applications'))} | "
                 f"{_fmt(c.get('payments'))} | {_fmt(c.get('reviews'))} | {_fmt(c.get('saved_jobs'))} | {seed} |")
    if results["sizes"][str(main)].get("counts", {}).get("jobs_after_mix_fixtures"):
        L.append(f"\nBefore the mix, {results['sizes'][str(main)]['counts']['jobs_after_mix_fixtures'] - results['sizes'][str(main)]['counts']['jobs']:,} "
                 f"jobs (with their applications) were added at {main:,} for the mix's writes (bench/prepare.py).")

    L.append(f"\n## Throughput and latency per endpoint ({main:,} jobs)\n")
    L.append(f"![throughput]({plots['throughput']})\n")
    L += endpoint_tables(rows)
    L.append(f"\nThe floor returns {results['sizes'][str(main)].get('job_list_bytes', 0):,} fixed bytes, the size of "
             "Shiftboard's job list page; (a), (b), (c) are measured after one warm-up pass over their URLs.\n")
    L.append(f"![latency]({plots['latency']})\n")
    pinned = _wrk(results, main, "pinned")
    if pinned:
        layout = results["sizes"][str(main)].get("pinned_layout", {})
        L.append(f"### The same, with the server alone on a core ({main:,} jobs)\n")
        L.append(
            f"gunicorn (master, workers, threads) on CPU {layout.get('server_cpus')}; the bench, wrk and "
            f"{layout.get('services_confined', 0)} local PostgreSQL and Redis processes on CPU "
            f"{layout.get('other_cpus')} (bench/affinity.py), as in a deployment where clients, the database "
            "and the cache are other machines. A server of its own, sized for that one core "
            f"({pinned_workers(results, main)} gunicorn worker(s) of "
            f"{results['meta'].get('gunicorn_threads', 8)} threads), after the table above"
            + (f", in {results['meta']['pinned_rounds']} interleaved rounds (each case its median run)"
               if results["meta"].get("pinned_rounds", 1) > 1 else "") + ".\n")
        L += endpoint_tables(pinned)
        L.append("")

    mixes = results.get("mix") or {}
    if mixes:
        L.append(f"## The mix ({main:,} jobs)\n")
        L.append("95% reads over the six endpoints (job list pages 1-3 and the same 50 ids per endpoint as above, "
                 "popular ones first; tokens on private reads and on "
                 "half of the public ones), 5% writes through Shiftboard's write endpoints for every variant "
                 "(apply, accept, pay, review, edit job, in turn). After each write the affected resource is read "
                 "back on another connection through the variant's own read endpoint; a read that does not show "
                 "the write is a stale read.\n")
        if plots.get("mix"):
            L.append(f"![mix]({plots['mix']})\n")
        rounds = results["meta"].get("mix_rounds", 1)
        if rounds > 1:
            L.append(f"Every variant ran once in each of {rounds} interleaved rounds (each round starting one "
                     "variant further along, each on its own share of the write pools). A variant's row is its "
                     "median run (requests/s, latencies, hit ratio of that run); *rounds req/s* lists every "
                     "round's; errors, failed writes and stale reads count all its rounds.\n")
        L.append("| variant | req/s | p50 ms | p95 ms | p99 ms | requests | writes | errors | failed writes | "
                 "hit ratio | stale reads |" + (" rounds req/s |" if rounds > 1 else ""))
        L.append("|---|---|---|---|---|---|---|---|---|---|---|" + ("---|" if rounds > 1 else ""))
        for v, m in mixes.items():
            hr = "n/a" if m["hit_ratio"] is None else f"{m['hit_ratio']:.1%}"
            stale = "n/a" if v == "driver_ceiling" else f"{mix_total(m, 'stale')} of {mix_total(m, 'checked')}"
            per_round = ("/".join(f"{r:.1f}" for r in m["rounds_rps"]) if m.get("rounds_rps") else "one run")
            L.append(f"| {MIX_LABELS[v]} | {m['rps']:,.1f} | {_fmt(m['p50_ms'], 2)} | {_fmt(m['p95_ms'], 2)} | "
                     f"{_fmt(m['p99_ms'], 2)} | {m['requests']:,} | {m['writes']:,} | {mix_total(m, 'errors')} | "
                     f"{mix_total(m, 'write_failed')} | {hr} | {stale} |" + (f" {per_round} |" if rounds > 1 else ""))
        sb = mixes.get("shiftboard")
        if sb:
            L.append("\nRatios" + (" (the median of the rounds' ratios)" if rounds > 1 else "") + ": " + ", ".join(
                f"Shiftboard ÷ {MIX_LABELS[v]} {_x(rps_ratio(sb, mixes[v]))}"
                for v in ("naive", "tuned", "cachalot") if v in mixes) + ".\n")

    L.append("## Queries per request and server-side time\n")
    L.append(f"![queries]({plots['queries']})\n")
    L.append("From each response's `Server-Timing` header (every variant goes through the same middleware). "
             "*first*: Shiftboard a cache miss (a unique query string), cachalot its first sight of the queries; "
             "*repeat*: the same request again (Shiftboard a hit). Server time is `app;dur`, median of 5.\n")
    for s in _sizes(results):
        L.append(f"**{s:,} jobs**\n")
        L.append("| endpoint | variant | queries first | queries repeat | server ms first (db ms) | "
                 "server ms repeat (db ms) | status |")
        L.append("|---|---|---|---|---|---|---|")
        for p in results["sizes"][str(s)].get("probes", []):
            qf = max(p["queries_first"], default=None)
            qr = max(p["queries_repeat"], default=None)
            L.append(f"| {ENDPOINT_LABELS[p['endpoint']]} | {p['variant']} | {_fmt(qf)} | {_fmt(qr)} | "
                     f"{_fmt(p['app_ms_first'], 2)} ({_fmt(p.get('db_ms_first'), 2)}) | "
                     f"{_fmt(p['app_ms_repeat'], 2)} ({_fmt(p.get('db_ms_repeat'), 2)}) | "
                     f"{'/'.join(map(str, p['status']))} |")
        L.append("")
    main_probes = [p for p in results["sizes"][str(main)].get("probes", [])
                   if p["variant"] == "shiftboard" and p.get("bookkeeping_first")]
    if main_probes:
        steps = ["lookup", "ids", "rows", "store"]
        L.append(f"**The cache's own work on a miss ({main:,} jobs)**: milliseconds per step, median of the "
                 "probes above (`X-Cache-Bookkeeping`, bench settings only): the one-round-trip lookup "
                 "(versions, key, validated GET, rebuild lock), the ids query of the rows shown, the read of "
                 "their versions, the store. Everything else in *server ms first* is the build.\n")
        L.append("| endpoint | " + " | ".join(steps) + " | total | server ms first |")
        L.append("|---|" + "---|" * (len(steps) + 2))
        for p in main_probes:
            b = p["bookkeeping_first"]
            total = sum(v for v in b.values() if v is not None)
            L.append(f"| {ENDPOINT_LABELS[p['endpoint']]} | "
                     + " | ".join(_fmt(b.get(step), 2) for step in steps)
                     + f" | {total:.2f} | {_fmt(p['app_ms_first'], 2)} |")
        L.append("")
    L.extend(hook_section(results))
    L.append("## Latency against data size\n")
    L.append(f"![latency vs size]({plots['latency_vs_size']})\n")
    L.append("| jobs | " + " | ".join(VARIANT_LABELS.values()) + " |")
    L.append("|---|" + "---|" * len(VARIANT_LABELS))
    for s in _sizes(results):
        cells = []
        for (variant, mode) in VARIANT_LABELS:
            r = _find(_wrk(results, s), "floor" if variant == "floor" else "job_list", variant, mode)
            cells.append("n/a" if not r else f"{_fmt(r['p50_ms'], 2)} ms / {r['rps']:,.0f} req/s")
        L.append(f"| {s:,} | " + " | ".join(cells) + " |")
    L.append("\n(job list, p50 / requests/s under wrk)\n")

    L.append("## Fairness checks\n")
    shapes = results.get("shapes") or []
    if shapes:
        same = [s for s in shapes if s["same"]]
        L.append(f"Same fields as Shiftboard (first item of each endpoint, top level and one nested level): "
                 f"{len(same)} of {len(shapes)} endpoint × baseline pairs.")
        for s in shapes:
            if not s["same"]:
                L.append(f"- {ENDPOINT_LABELS[s['endpoint']]} / {s['variant']}: missing {s['missing']}, "
                         f"extra {s['extra']}")
        L.append("")
    iso = results.get("isolation") or []
    if iso:
        ok = all(r["same"] for r in iso)
        L.append("Cachalot switched off outside /bench/cachalot/: Shiftboard's queries (miss, hit) on the bench "
                 "server and on a server with plain `config.settings.base`: "
                 + ("identical for every endpoint" if ok else "**different**") + " — "
                 + "; ".join(f"{ENDPOINT_LABELS[r['endpoint']]} {r['bench']} vs {r['plain']}" for r in iso) + ".\n")
    L.append("Writes go through Shiftboard's write endpoints in every variant; since cachalot is installed "
             "process-wide, every write also pays cachalot's table invalidation (a few Redis commands), in every "
             "variant alike.\n")
    L.append("The mix's writers are a few hundred users writing fast, so the bench raises the per-user write "
             "throttles (`THROTTLE_APPLICATIONS`, `THROTTLE_PAYMENTS`, `THROTTLE_REVIEWS`) for its server; the "
             "throttle checks still run. Raw data: [raw/results.json](raw/results.json), "
             "[raw/wrk.csv](raw/wrk.csv), [raw/queries.csv](raw/queries.csv)"
             + (", [raw/mix.csv](raw/mix.csv)" if mixes else "") + ".\n")
    text = "\n".join(L)
    (out / "report.md").write_text(text)
    return text


def hook_section(results) -> list[str]:
    """The slow-query hook on and off, in the server-time section of report.md."""
    hook = results.get("slow_query_hook")
    if not hook:
        return []
    main = results["meta"]["main_size"]
    rows = hook_summary(results)
    same = [h for h in rows if h["n"]]
    L = [f"**The slow-query hook on and off ({main:,} jobs)**, measured two ways after the runs above; every "
         "request a cache miss (a unique query parameter).\n"]
    if same:
        toggle = hook.get("toggle") or {}
        checks = "; ".join(f"{'no header' if asked == 'none' else f'`{asked}`'}: on the connection "
                           f"{sum(1 for v in seen if v)} of {len(seen)} times"
                           for asked, seen in toggle.items())
        L.append(f"*Same process (the measure of the target).* One server, `SLOW_QUERY_MS="
                 f"{hook['slow_query_ms']['on']}` (the default: the hook on every statement). A bench-only middleware "
                 f"takes the hook off the thread's database connection for a request that carries "
                 f"`{hook.get('header', 'X-Bench-Slow-Query-Hook')}: off` and puts it back when the request ends; a "
                 "request carrying `on` goes through the same middleware and keeps it. So the two states differ "
                 "only by the hook: same process, thread, connection and page. Per endpoint "
                 f"{hook.get('pairs_per_endpoint')} pairs of requests (after {hook.get('warmup_pairs', 0)} pairs of "
                 "warm-up), on first in every other pair; a pair's difference is on − off (`Server-Timing` `app`). "
                 "The table gives the median of those differences, its 95% interval (order statistics, no "
                 "assumption about the distribution), and both relative to the hook-off median. Checked first, "
                 "`/bench/slow-query-hook/` on that server: " + (checks or "not checked") + "; and every measured "
                 "response says the state it ran with"
                 + (" (all as asked)." if hook_toggle_ok(results) else
                    ": **not all as asked, so the comparison below is void**.") + "\n")
        L.append("| endpoint | server ms, hook on (db ms) | server ms, hook off (db ms) | median of pairs on − off | "
                 "95% interval | relative to hook off (95% interval) | pairs | misses (X-Cache) on / off | "
                 "ran as asked on / off |")
        L.append("|---|---|---|---|---|---|---|---|---|")
        for h in same:
            interval = ("n/a" if h["paired_low_ms"] is None else
                        f"{_signed(h['paired_low_ms'])} to {_signed(h['paired_high_ms'])} ms")
            rel = _signed_pct(h["paired_pct"]) + ("" if h["paired_low_pct"] is None else
                                                 f" ({_signed_pct(h['paired_low_pct'])} to "
                                                 f"{_signed_pct(h['paired_high_pct'])})")
            misses = " / ".join(f"{h['probe_misses'][n]:,} of {h['probe_requests'][n]:,}" for n in ("on", "off"))
            ran = " / ".join(f"{h['ran_as_asked'][n]:,}" for n in ("on", "off"))
            L.append(f"| {ENDPOINT_LABELS[h['endpoint']]} | {_fmt(h['on_ms'], 2)} ({_fmt(h['on_db_ms'], 2)}) | "
                     f"{_fmt(h['off_ms'], 2)} ({_fmt(h['off_db_ms'], 2)}) | {_signed(h['paired_ms'])} ms | "
                     f"{interval} | {rel} | {h['n']:,} | {misses} | {ran} |")
        L.append("")
    throughput = [h for h in rows if h["rounds"]]
    if throughput:
        state = hook.get("state") or {}
        L.append("*Two servers (throughput).* Two fresh servers of this build side by side, `SLOW_QUERY_MS="
                 f"{hook['slow_query_ms']['on']}` and `SLOW_QUERY_MS={hook['slow_query_ms']['off']}` (no hook); "
                 "they reported: "
                 + "; ".join(f"{name} `SLOW_QUERY_MS={state.get(name, {}).get('slow_query_ms')}`, hook "
                             f"{'on' if state.get(name, {}).get('installed') else 'not on'} the connection"
                             for name in ("on", "off"))
                 + ("" if hook_state_ok(results) else " (**not as started, so this comparison is void**)")
                 + f". wrk ({results['meta']['threads']} threads, {results['meta']['connections']} connections, "
                 f"{hook.get('wrk_duration_s', 0):g} s a run), {hook.get('wrk_rounds', 0)} rounds per endpoint and "
                 "server, on then off in odd rounds and off then on in even ones. Per round the relative "
                 "difference on ÷ off − 1; the table gives each server's mean requests/s and the mean of the "
                 "rounds' differences with its 95% t-interval. Two processes differ in more than the hook "
                 "(memory layout, hash seed, the core they run on, what else the machine runs at that moment), "
                 "so this interval includes that process-to-process variation: it bounds what the hook could "
                 "cost in throughput, it does not isolate it.\n")
        L.append("| endpoint | req/s hook on | req/s hook off | on ÷ off − 1, mean of rounds | 95% interval | "
                 "rounds | misses (X-Cache) on / off | errors on / off |")
        L.append("|---|---|---|---|---|---|---|---|")
        for h in throughput:
            interval = ("n/a" if h["rps_low_pct"] is None else
                        f"{_signed_pct(h['rps_low_pct'])} to {_signed_pct(h['rps_high_pct'])}")
            misses = " / ".join(f"{h['wrk_misses'][n]:,} of {h['wrk_requests'][n]:,}" for n in ("on", "off"))
            L.append(f"| {ENDPOINT_LABELS[h['endpoint']]} | {_fmt(h['rps_on'])} | {_fmt(h['rps_off'])} | "
                     f"{_signed_pct(h['rps_pct'])} | {interval} | {h['rounds']} | {misses} | "
                     f"{h['wrk_errors']['on']} / {h['wrk_errors']['off']} |")
        L.append("")
    inproc = hook.get("in_process") or {}
    alone, select1 = inproc.get("alone"), inproc.get("select1")
    if alone and select1:
        per = alone["wrapped_ns"] - alone["direct_ns"]
        expect = []
        for h in same:
            if h["queries"] and h["off_ms"]:
                q = max(h["queries"])
                expect.append(f"{ENDPOINT_LABELS[h['endpoint']]} {q} statements × {per:.0f} ns = "
                              f"{q * per / 1000:.1f} µs, {q * per / 1e6 / h['off_ms']:.3%} of its hook-off server time")
        L.append(f"In process, by the code of `make ops-cost` (bench/ops_cost.py), in this run: the hook around a "
                 f"no-op execute {alone['direct_ns']:.0f} → {alone['wrapped_ns']:.0f} ns, **{per:+.0f} ns per "
                 f"statement** (best of 7 × 200,000); `SELECT 1` through Django's cursor on the bench database, "
                 f"{select1['blocks']} alternating blocks of {select1['per_block']:,}: hook on "
                 f"{select1['on_us']:.1f} µs, off {select1['off_us']:.1f} µs per statement (median of the paired "
                 f"block differences {select1['diff_us']:+.2f} µs)."
                 + (" What the per-statement cost adds to a miss: " + "; ".join(expect) + "." if expect else ""))
    phases = hook.get("phases_s") or {}
    L.append(f"\n(The comparison took {hook.get('elapsed_s', 0):.0f} s of the run"
             + (": " + ", ".join(f"{name.replace('_', ' ')} {sec:.0f} s" for name, sec in phases.items())
                if phases else "") + ".)\n")
    return L


def readme_section(results, out: Path, tgt: list[dict]) -> str:
    rel = out.relative_to(ROOT)
    main = results["meta"]["main_size"]
    rows = _wrk(results, main)
    mixes = results.get("mix") or {}
    L = [README_START, "", "`make bench` measures Shiftboard against three baselines a team would otherwise "
         "ship — (a) naive DRF, (b) DRF with `select_related`/`prefetch_related`, (c) naive DRF with "
         "django-cachalot — and a floor (a bare Django view), on the same data, server and load "
         "(code in `bench/`; `make bench BENCH_FLAGS=--huge` adds 1,000,000 jobs).", "",
         f"From the latest report, [{rel}/report.md]({rel}/report.md) "
         f"({results['meta']['cpus']} cores, gunicorn 2 workers, PostgreSQL + Redis, {main:,} jobs; "
         + ("ratios of requests/s measured within that run, each the median over its "
            f"{results['meta']['rounds']} interleaved rounds of that round's ratio):"
            if results["meta"].get("rounds", 1) > 1 else "ratios of requests/s measured within that run):"), ""]
    hit, cold = _find(rows, "job_list", "shiftboard", "hit"), _find(rows, "job_list", "shiftboard", "cold")
    floor = _find(rows, "floor", "floor", "floor")
    pinned = _wrk(results, main, "pinned")
    pfloor = _find(pinned, "floor", "floor", "floor")
    if pinned:
        L += ["Every process shares the machine's cores in the first columns; the last column is the ratio "
              "measured again with a server sized for one core "
              f"({pinned_workers(results, main)} worker) alone on a core and the load driver, "
              "PostgreSQL and Redis on the other (bench/affinity.py), as when they are other machines "
              "(a hit's Redis work is then not taken from the server's cores). The throughput targets are judged in "
              "that second layout, the one of a deployment; the first layout's figures are reported beside them. "
              "There the floor has the cores to itself while every hit also spends Redis's CPU on them, which "
              "bounds any hit at the floor after one bare Redis round trip (below).", ""]
    L.append("| Shiftboard's requests/s ÷ | (a) naive DRF | (b) DRF + select_related | (c) naive DRF + cachalot "
             "| floor |" + (" floor, server alone on a core |" if pinned else ""))
    L.append("|---|---|---|---|---|" + ("---|" if pinned else ""))
    cases = (("job list, cache hit", "job_list", hit), ("job list, cache miss", "job_list", cold),
             ("job list, 304 revalidation", "job_list", _find(rows, "job_list", "shiftboard", "revalidate")),
             ("job detail, cache miss", "job_detail", _find(rows, "job_detail", "shiftboard", "cold")),
             ("a user's payments, cache hit (signed in)", "payments", _find(rows, "payments", "shiftboard", "hit")),
             ("a user's payments, cache miss (signed in)", "payments", _find(rows, "payments", "shiftboard", "cold")))
    for label, endpoint, r in cases:
        if r:
            cells = [_x(rps_ratio(r, _find(rows, endpoint, v, "warm"))) for v in ("naive", "tuned", "cachalot")]
            cells.append(_x(rps_ratio(r, floor)))
            if pinned:
                p = _find(pinned, r["endpoint"], r["variant"], r["mode"])
                cells.append(_x(rps_ratio(p, pfloor)))
            L.append(f"| {label} | " + " | ".join(cells) + " |")
    if mixes.get("shiftboard"):
        sb = mixes["shiftboard"]
        cells = [_x(rps_ratio(sb, mixes[v])) if v in mixes else "n/a" for v in ("naive", "tuned", "cachalot")]
        L.append("| the mix (95% reads, 5% writes) | " + " | ".join(cells) + " | |" + (" |" if pinned else ""))
        hr = "n/a" if sb["hit_ratio"] is None else f"{sb['hit_ratio']:.1%}"
        L.append("")
        L.append(f"In the mix: Shiftboard's cache hit ratio {hr}, {mix_total(sb, 'stale')} stale reads in its "
                 f"{mix_total(sb, 'checked')} "
                 "read-backs after writes (the stale-read target below counts the read-backs of all four variants).")
    L.append("")
    L.append("| target | measured | verdict |")
    L.append("|---|---|---|")
    for t in tgt:
        L.append(f"| {t['target']} | {t['measured']} | {verdict(t)} |")
    found = bound_ratios(rows, hit, floor)
    if found is not None:
        _, of_floor, of_bound = found
        L.append("")
        pbound = bound_ratios(pinned, _find(pinned, "job_list", "shiftboard", "hit"), pfloor) if pinned else None
        L.append(f"What bounds a hit: every hit is checked against the version counters in Redis (no stale read "
                 f"after a write), so it costs at least one round trip to Redis. With every process on the same "
                 f"cores, the floor after one bare round trip (a script that only reads the clock) ran at "
                 f"{of_floor} the floor, and the job list hit at {of_bound} of that"
                 + (f"; with the server alone on a core, {pbound[1]} and {pbound[2]}." if pbound else "."))
    L.append("")
    L.append(" ".join(f"![{name}]({rel}/{name}.png)" for name in
                      ("throughput", "latency", "queries", "latency_vs_size")))
    L.append("")
    L.append(README_END)
    return "\n".join(L)


def rewrite_readme(section: str) -> None:
    text = README.read_text()
    pattern = re.compile(re.escape(README_START) + r".*?" + re.escape(README_END), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda m: section, text)
    else:
        text = text.rstrip("\n") + "\n\n## Performance\n\n" + section + "\n"
    README.write_text(text)


def write(results: dict, out: Path, update_readme: bool = True) -> None:
    write_csvs(results, out)
    plots = {
        "throughput": plot_throughput(results, out),
        "latency": plot_latency(results, out),
        "queries": plot_queries(results, out),
        "latency_vs_size": plot_latency_vs_size(results, out),
        "mix": plot_mix(results, out),
    }
    tgt = targets(results)
    results["targets"] = tgt
    (out / "raw" / "results.json").write_text(json.dumps(results, indent=1, default=str))
    write_markdown(results, out, plots, tgt)
    if update_readme:
        rewrite_readme(readme_section(results, out, tgt))


if __name__ == "__main__":
    import sys

    directory = Path(sys.argv[1])
    write(json.loads((directory / "raw" / "results.json").read_text()), directory,
          update_readme="--no-readme" not in sys.argv)
