"""The running topology of scripts/topology.py (its state.json), for the scale tests."""
from __future__ import annotations

import importlib.util
import subprocess
import time

from django.conf import settings

_spec = importlib.util.spec_from_file_location("topology_script", settings.BASE_DIR / "scripts" / "topology.py")
script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(script)


def state() -> dict:
    return script.load_state(script.default_dir())


def redis_cli(port: int, *args: str) -> str:
    result = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(port), *args],
                            capture_output=True, text=True, timeout=10)
    return result.stdout.strip()


def sentinel_master_port(sentinel: dict) -> int | None:
    """The master's port as the sentinels agree on it (None while they disagree)."""
    ports = set()
    for s in sentinel["sentinels"]:
        out = redis_cli(s["port"], "SENTINEL", "GET-MASTER-ADDR-BY-NAME", sentinel["master_name"]).splitlines()
        ports.add(int(out[1]) if len(out) == 2 else None)
    return ports.pop() if len(ports) == 1 else None


def restart_redis(entry: dict) -> None:
    """Start a killed redis-server of the topology again with its own config."""
    subprocess.run(["redis-server", f"{entry['dir']}/redis.conf"], check=True, capture_output=True, timeout=10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and redis_cli(entry["port"], "PING") != "PONG":
        time.sleep(0.05)
