#!/usr/bin/env python3
"""A scaled-out Shiftboard topology on this machine, without containers.

    python3 scripts/topology.py start [--apply-delay-ms 500] [--only pg,sentinel,cluster]
    python3 scripts/topology.py env        # the variables to run Shiftboard against it
    python3 scripts/topology.py status     # what runs, replica lag, sentinel's master
    python3 scripts/topology.py stop       # stops everything and removes the run directory

What it starts, each on its own free ports and data directories under the run
directory (``--dir`` or TOPOLOGY_DIR; default /tmp/shiftboard-topology-<hash of this
checkout>, so two checkouts never share one):

- PostgreSQL 15 primary + one streaming replica (``pg_basebackup -R``), run as the
  ``postgres`` user (``runuser``) from /usr/lib/postgresql/15/bin (PG_BIN overrides).
  The replica applies WAL ``--apply-delay-ms`` late (``recovery_min_apply_delay``), so
  replica lag is visible. A database ``shiftboard`` is created on the primary.
- Redis: a master, one replica and three sentinels (quorum 2, master name
  ``shiftboard``, down-after 1000 ms) - for REDIS_SENTINELS.
- Redis Cluster: three masters, no replicas, all 16384 slots - for REDIS_CLUSTER_NODES.

Nothing here touches the machine's own PostgreSQL (5432) or Redis (6379). Everything
it starts is recorded in ``<dir>/state.json`` (ports, pids, data directories), which
the scale tests (tests/scale/) read. Standard library only.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
PG_USER = "postgres"
SENTINEL_MASTER = "shiftboard"
DATABASE_NAME = "shiftboard"
COMPONENTS = ("pg", "sentinel", "cluster")


def default_dir() -> Path:
    tag = hashlib.sha1(str(ROOT).encode()).hexdigest()[:8]
    return Path(os.environ.get("TOPOLOGY_DIR", f"/tmp/shiftboard-topology-{tag}"))


_taken: set[int] = set()


def free_port(bus_offset: int = 0) -> int:
    """A free port on 127.0.0.1 (and ``port + bus_offset`` free too: the cluster bus)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port in _taken or (bus_offset and (port + bus_offset > 65535 or not _is_free(port + bus_offset))):
            continue
        _taken.add(port)
        return port


def _is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def run(cmd: list[str], *, as_pg: bool = False, check: bool = True, timeout: float = 120) -> str:
    if as_pg and os.geteuid() == 0:
        cmd = ["runuser", "-u", PG_USER, "--", *cmd]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{result.stdout}\n{result.stderr}")
    return result.stdout.strip()


def wait_for(what: str, ok, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if ok():
                return
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(0.1)
    raise SystemExit(f"timed out waiting for {what}")


def redis_cli(port: int, *args: str, check: bool = False) -> str:
    return run(["redis-cli", "-h", "127.0.0.1", "-p", str(port), *args], check=check, timeout=10)


def psql(port: int, sql: str, db: str = "postgres") -> str:
    return run([str(PG_BIN / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", PG_USER, "-d", db,
                "-XAtq", "-c", sql], timeout=30)


# --- PostgreSQL ------------------------------------------------------------------

def start_pg(base: Path, apply_delay_ms: int) -> dict:
    pg_dir = base / "pg"
    pg_dir.mkdir()
    shutil.chown(pg_dir, PG_USER, PG_USER) if os.geteuid() == 0 else None
    primary, replica, sock = pg_dir / "primary", pg_dir / "replica", pg_dir / "sock"
    sock.mkdir()
    if os.geteuid() == 0:
        shutil.chown(sock, PG_USER, PG_USER)
    p_port, r_port = free_port(), free_port()
    run([str(PG_BIN / "initdb"), "-D", str(primary), "-U", PG_USER, "--auth=trust", "-E", "UTF8",
         "--no-sync", "--no-instructions"], as_pg=True)
    common = (
        "listen_addresses = '127.0.0.1'\n"
        f"unix_socket_directories = '{sock}'\n"
        "wal_level = replica\nmax_wal_senders = 5\nhot_standby = on\nhot_standby_feedback = on\n"
        "shared_buffers = 64MB\nmax_connections = 200\nfsync = off\nfull_page_writes = off\n"
        "wal_keep_size = 256MB\n"
    )
    conf = primary / "postgresql.conf"
    run(["bash", "-c", f"cat >> {conf} <<'EOF'\n{common}port = {p_port}\nEOF"], as_pg=True)
    hba = primary / "pg_hba.conf"
    run(["bash", "-c", f"cat >> {hba} <<'EOF'\nhost all all 127.0.0.1/32 trust\n"
                       "host replication all 127.0.0.1/32 trust\nEOF"], as_pg=True)
    run([str(PG_BIN / "pg_ctl"), "-D", str(primary), "-l", str(pg_dir / "primary.log"), "-w", "start"], as_pg=True)
    psql(p_port, f"CREATE DATABASE {DATABASE_NAME}")
    run([str(PG_BIN / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(p_port), "-U", PG_USER,
         "-D", str(replica), "-R", "-X", "stream", "-c", "fast", "--no-sync"], as_pg=True)
    rconf = replica / "postgresql.conf"
    run(["bash", "-c", f"cat >> {rconf} <<'EOF'\nport = {r_port}\n"
                       f"recovery_min_apply_delay = '{apply_delay_ms}ms'\nEOF"], as_pg=True)
    run([str(PG_BIN / "pg_ctl"), "-D", str(replica), "-l", str(pg_dir / "replica.log"), "-w", "start"], as_pg=True)
    wait_for("the replica to stream", lambda: psql(p_port, "SELECT count(*) FROM pg_stat_replication "
                                                           "WHERE state = 'streaming'") == "1")
    return {"primary": {"port": p_port, "data": str(primary)}, "replica": {"port": r_port, "data": str(replica)},
            "apply_delay_ms": apply_delay_ms, "database": DATABASE_NAME}


def stop_pg(state: dict) -> None:
    for role in ("replica", "primary"):
        data = state[role]["data"]
        if Path(data).exists():
            run([str(PG_BIN / "pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop"], as_pg=True, check=False)


# --- Redis -------------------------------------------------------------------------

def redis_server(base: Path, name: str, port: int, *extra: str, sentinel: bool = False) -> dict:
    """A daemonized redis-server (no persistence) with its own directory and pidfile."""
    d = base / name
    d.mkdir(parents=True)
    pidfile = d / "redis.pid"
    conf = d / "redis.conf"
    lines = [f"port {port}", "bind 127.0.0.1", "protected-mode no", f"dir {d}", "daemonize yes",
             f"pidfile {pidfile}", f"logfile {d / 'redis.log'}", "save \"\"", "appendonly no", *extra]
    conf.write_text("\n".join(lines) + "\n")
    cmd = ["redis-server", str(conf)] + (["--sentinel"] if sentinel else [])
    run(cmd)
    wait_for(f"redis {name} on :{port}", lambda: redis_cli(port, "PING") == "PONG")
    wait_for(f"redis {name} pidfile", lambda: pidfile.exists() and pidfile.read_text().strip())
    return {"port": port, "dir": str(d), "pid": int(pidfile.read_text())}


def start_sentinel(base: Path) -> dict:
    m_port, r_port = free_port(), free_port()
    master = redis_server(base, "sentinel/master", m_port)
    replica = redis_server(base, "sentinel/replica", r_port, f"replicaof 127.0.0.1 {m_port}")
    wait_for("the redis replica to sync",
             lambda: "master_link_status:up" in redis_cli(r_port, "INFO", "replication"))
    sentinels = []
    for i in range(3):
        port = free_port()
        sentinels.append(redis_server(
            base, f"sentinel/s{i}", port,
            f"sentinel monitor {SENTINEL_MASTER} 127.0.0.1 {m_port} 2",
            f"sentinel down-after-milliseconds {SENTINEL_MASTER} 1000",
            f"sentinel failover-timeout {SENTINEL_MASTER} 5000",
            f"sentinel parallel-syncs {SENTINEL_MASTER} 1",
            sentinel=True,
        ))
    # Every sentinel knows the replica and the other sentinels before anyone relies on them.
    wait_for("sentinels to discover each other", lambda: all(
        _sentinel_field(s["port"], "num-other-sentinels") == "2" and _sentinel_field(s["port"], "num-slaves") == "1"
        for s in sentinels))
    return {"master_name": SENTINEL_MASTER, "master": master, "replica": replica, "sentinels": sentinels}


def _sentinel_field(port: int, field: str) -> str:
    out = redis_cli(port, "SENTINEL", "MASTER", SENTINEL_MASTER).splitlines()
    return dict(zip(out[::2], out[1::2])).get(field, "")


def start_cluster(base: Path) -> dict:
    nodes = []
    for i in range(3):
        port = free_port(bus_offset=10000)
        nodes.append(redis_server(base, f"cluster/n{i}", port, "cluster-enabled yes",
                                  f"cluster-config-file nodes-{port}.conf", "cluster-node-timeout 2000"))
    run(["redis-cli", "--cluster", "create", *[f"127.0.0.1:{n['port']}" for n in nodes],
         "--cluster-replicas", "0", "--cluster-yes"])
    wait_for("cluster_state:ok", lambda: all(
        "cluster_state:ok" in redis_cli(n["port"], "CLUSTER", "INFO") for n in nodes))
    return {"nodes": nodes}


def stop_redis(entry: dict) -> None:
    # The pidfile first: a server restarted after a test killed it has a new pid.
    pidfile = Path(entry["dir"]) / "redis.pid"
    pid = int(pidfile.read_text()) if pidfile.exists() and pidfile.read_text().strip() else entry.get("pid")
    if pid:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# --- commands ------------------------------------------------------------------------

def load_state(base: Path) -> dict:
    path = base / "state.json"
    return json.loads(path.read_text()) if path.exists() else {}


def env_lines(state: dict) -> list[str]:
    out = []
    if "pg" in state:
        pg = state["pg"]
        out.append(f"DATABASE_URL=postgres://{PG_USER}@127.0.0.1:{pg['primary']['port']}/{pg['database']}")
        out.append(f"DATABASE_REPLICA_URLS=postgres://{PG_USER}@127.0.0.1:{pg['replica']['port']}/{pg['database']}")
    if "sentinel" in state:
        s = state["sentinel"]
        out.append("REDIS_SENTINELS=" + ",".join(f"127.0.0.1:{x['port']}" for x in s["sentinels"]))
        out.append(f"REDIS_SENTINEL_MASTER={s['master_name']}")
    if "cluster" in state:
        out.append("REDIS_CLUSTER_NODES=" + ",".join(f"127.0.0.1:{n['port']}" for n in state["cluster"]["nodes"]))
    return out


def cmd_start(args) -> None:
    base: Path = args.dir
    if (base / "state.json").exists():
        raise SystemExit(f"already started ({base}); run stop first")
    only = set(args.only.split(",")) if args.only else set(COMPONENTS)
    if unknown := only - set(COMPONENTS):
        raise SystemExit(f"unknown component(s): {', '.join(sorted(unknown))}")
    base.mkdir(parents=True, exist_ok=True)
    os.chmod(base, 0o755)
    state: dict = {"dir": str(base)}
    try:
        if "pg" in only:
            state["pg"] = start_pg(base, args.apply_delay_ms)
            _save(base, state)
        if "sentinel" in only:
            state["sentinel"] = start_sentinel(base)
            _save(base, state)
        if "cluster" in only:
            state["cluster"] = start_cluster(base)
            _save(base, state)
    except BaseException:
        _stop(state)
        shutil.rmtree(base, ignore_errors=True)
        raise
    print(f"# topology started in {base}; run Shiftboard against it with:")
    for line in env_lines(state):
        print(f"export {line}")


def _save(base: Path, state: dict) -> None:
    (base / "state.json").write_text(json.dumps(state, indent=2))


def _stop(state: dict) -> None:
    if "pg" in state:
        stop_pg(state["pg"])
    if "sentinel" in state:
        s = state["sentinel"]
        for entry in [*s["sentinels"], s["master"], s["replica"]]:
            stop_redis(entry)
    if "cluster" in state:
        for node in state["cluster"]["nodes"]:
            stop_redis(node)


def cmd_stop(args) -> None:
    state = load_state(args.dir)
    _stop(state)
    shutil.rmtree(args.dir, ignore_errors=True)
    print(f"stopped; removed {args.dir}")


def cmd_env(args) -> None:
    state = load_state(args.dir)
    if not state:
        raise SystemExit("not started")
    for line in env_lines(state):
        print(f"export {line}")


def cmd_status(args) -> None:
    state = load_state(args.dir)
    if not state:
        print("not started")
        return
    if "pg" in state:
        pg = state["pg"]
        for role in ("primary", "replica"):
            port = pg[role]["port"]
            try:
                if role == "primary":
                    info = psql(port, "SELECT 'up, wal ' || pg_current_wal_lsn()")
                else:
                    info = psql(port, "SELECT 'up, replayed ' || pg_last_wal_replay_lsn() || ', lag '"
                                      " || coalesce(round(extract(epoch FROM now() - pg_last_xact_replay_timestamp())"
                                      "::numeric, 3)::text, '?') || ' s'")
            except SystemExit:
                info = "down"
            print(f"postgres {role:8} :{port}  {info}")
        print(f"postgres apply delay {pg['apply_delay_ms']} ms")
    if "sentinel" in state:
        s = state["sentinel"]
        for role in ("master", "replica"):
            port = s[role]["port"]
            role_now = redis_cli(port, "ROLE").splitlines()[:1]
            print(f"redis {role:8} :{port}  {role_now[0] if role_now else 'down'} (as started)")
        for x in s["sentinels"]:
            addr = redis_cli(x["port"], "SENTINEL", "GET-MASTER-ADDR-BY-NAME", s["master_name"]).splitlines()
            print(f"sentinel :{x['port']}  master is {':'.join(addr) if addr else 'unknown (down?)'}")
    if "cluster" in state:
        for n in state["cluster"]["nodes"]:
            info = redis_cli(n["port"], "CLUSTER", "INFO").splitlines()[:1]
            keys = redis_cli(n["port"], "DBSIZE")
            print(f"cluster node :{n['port']}  {info[0] if info else 'down'}, {keys or '?'} keys")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=default_dir(), help="run directory (TOPOLOGY_DIR)")
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start")
    start.add_argument("--apply-delay-ms", type=int, default=int(os.environ.get("TOPOLOGY_APPLY_DELAY_MS", 500)),
                       help="the replica's recovery_min_apply_delay (default 500)")
    start.add_argument("--only", default="", help="comma-separated subset of pg,sentinel,cluster")
    sub.add_parser("stop")
    sub.add_parser("env")
    sub.add_parser("status")
    args = parser.parse_args(argv)
    {"start": cmd_start, "stop": cmd_stop, "env": cmd_env, "status": cmd_status}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
