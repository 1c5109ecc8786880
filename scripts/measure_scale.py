#!/usr/bin/env python3
"""The base numbers of docs/scaling.md ("Scale on paper"), measured on the running
topology of scripts/topology.py (start it first; this adds a database ``pgbench``):

    python3 scripts/topology.py start && python3 scripts/measure_scale.py [--seconds 10]

- PostgreSQL: pgbench point reads (``-S``) on the primary and on the replica, and
  pgbench writes without the branch-table hot spot (``-N``) on the primary, with the
  replica's replay lag (bytes and the apply delay) right after the write run;
- Redis: redis-benchmark GET and INCR, and one Lua call shaped like a cache lookup
  (GET of 3 counters + GET of an entry), on the Sentinel set's master and on the
  Cluster (``--cluster``: the three masters together);
- the Cluster: which master holds each of the cache's hash-tag groups.

Every number is printed with the machine's load average: on a shared machine the
absolute values move with what else runs; the ratios are what docs/scaling.md uses.
Standard library only.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import time
from importlib.util import module_from_spec, spec_from_file_location
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_spec = spec_from_file_location("topology", ROOT / "scripts" / "topology.py")
topology = module_from_spec(_spec)
_spec.loader.exec_module(topology)

LOOKUP_LUA = (
    "local a = redis.call('GET', KEYS[1]); local b = redis.call('GET', KEYS[2]); "
    "local c = redis.call('GET', KEYS[3]); return redis.call('GET', KEYS[4])"
)


def sh(cmd: list[str], timeout: float = 300) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True).stdout


def pgbench(port: int, *args: str) -> float:
    out = sh(["pgbench", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", *args, "pgbench"])
    match = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", out)
    return float(match.group(1))


def redis_rps(args: list[str]) -> dict[str, float]:
    out = sh(["redis-benchmark", "-h", "127.0.0.1", *args, "-q"])
    rates = {}
    for line in out.replace("\r", "\n").splitlines():
        m = re.match(r"^(.*?): ([0-9.]+) requests per second", line.strip())
        if m:
            rates[m.group(1).strip()] = float(m.group(2))
    return rates


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--requests", type=int, default=100000)
    args = parser.parse_args()
    state = topology.load_state(topology.default_dir())
    if not state:
        raise SystemExit("the topology is not running: python3 scripts/topology.py start")
    t = str(args.seconds)
    print(f"# measured {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())} on {os.cpu_count()} cores")
    if "pg" in state:
        primary, replica = state["pg"]["primary"]["port"], state["pg"]["replica"]["port"]
        topology.psql(primary, "DROP DATABASE IF EXISTS pgbench")
        topology.psql(primary, "CREATE DATABASE pgbench")
        sh(["pgbench", "-h", "127.0.0.1", "-p", str(primary), "-U", "postgres", "-i", "-s", "10", "-q", "pgbench"])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the replica applies late: wait for the tables
            try:
                if topology.psql(replica, "SELECT count(*) FROM pgbench_branches", db="pgbench") == "10":
                    break
            except SystemExit:
                pass
            time.sleep(0.5)
        reads_primary = pgbench(primary, "-S", "-c", "4", "-j", "2", "-T", t)
        print(f"postgres primary  point reads (pgbench -S, 4 clients): {reads_primary:,.0f} tps  [load {load()}]")
        reads_replica = pgbench(replica, "-S", "-c", "4", "-j", "2", "-T", t)
        print(f"postgres replica  point reads (pgbench -S, 4 clients): {reads_replica:,.0f} tps  [load {load()}]")
        writes = pgbench(primary, "-N", "-c", "4", "-j", "2", "-T", t)
        lag = topology.psql(primary, "SELECT coalesce(max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)), 0) "
                                     "FROM pg_stat_replication")
        print(f"postgres primary  writes (pgbench -N, 4 clients, 3 UPDATE/INSERT each): {writes:,.0f} tps; "
              f"replica replay lag right after: {int(float(lag)):,} bytes "
              f"(apply delay {state['pg']['apply_delay_ms']} ms)  [load {load()}]")
    common = ["-n", str(args.requests), "-c", "20"]
    if "sentinel" in state:
        port = topology.redis_cli(state["sentinel"]["sentinels"][0]["port"], "SENTINEL",
                                  "GET-MASTER-ADDR-BY-NAME", state["sentinel"]["master_name"]).splitlines()[1]
        rates = redis_rps(["-p", port, *common, "-t", "get,incr"])
        lookup = redis_rps(["-p", port, *common, "EVAL", LOOKUP_LUA, "4", "{t}a", "{t}b", "{t}c", "{t}e"])
        print(f"redis (one master) GET {rates.get('GET', 0):,.0f}/s, INCR {rates.get('INCR', 0):,.0f}/s, "
              f"lookup-shaped EVAL {next(iter(lookup.values()), 0):,.0f}/s  [load {load()}]")
    if "cluster" in state:
        node = state["cluster"]["nodes"][0]["port"]
        rates = redis_rps(["-p", str(node), "--cluster", *common, "-t", "get,incr"])
        print(f"redis cluster (3 masters, same cores) GET {rates.get('GET', 0):,.0f}/s, "
              f"INCR {rates.get('INCR', 0):,.0f}/s  [load {load()}]")
        owners = {}
        for group in range(12):
            owners[group] = int(topology.redis_cli(node, "CLUSTER", "KEYSLOT", f"{{g{group}}}"))
        nodes = topology.redis_cli(node, "CLUSTER", "NODES").splitlines()
        ranges = []
        for line in nodes:
            parts = line.split()
            port = parts[1].split("@")[0].split(":")[1]
            for r in parts[8:]:
                lo, _, hi = r.partition("-")
                ranges.append((int(lo), int(hi or lo), port))
        per_port: dict[str, list[int]] = {}
        for group, slot in owners.items():
            port = next(p for lo, hi, p in ranges if lo <= slot <= hi)
            per_port.setdefault(port, []).append(group)
        print("cluster groups per master (CACHE_CLUSTER_GROUPS=12): "
              + "; ".join(f":{p} holds g{','.join(map(str, g))}" for p, g in sorted(per_port.items())))


if __name__ == "__main__":
    main()
