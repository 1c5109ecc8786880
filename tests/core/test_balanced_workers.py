"""config/workers.py: gunicorn's gthread workers share kept-alive connections out
evenly (issue 14). With the stock worker, whichever worker woke first kept every
connection it accepted (8/0 and 7/1 splits of 8 clients over 2 workers), so one
worker served them all on one core while the other idled."""
import http.client
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from config.workers import SLOTS, least_loaded
from tests.cache.servers import free_port

ROOT = Path(__file__).resolve().parents[2]


def table(*slots):
    """(pid, connections, heartbeat ms) per slot, the rest empty."""
    flat = [0] * (3 * SLOTS)
    for i, slot in enumerate(slots):
        flat[3 * i : 3 * i + 3] = slot
    return tuple(flat)


def test_least_loaded_accepts_unless_a_live_sibling_holds_fewer():
    now = 100_000
    # Slot 0 is "me"; slot 1 a sibling.
    assert least_loaded(table((10, 2, now), (11, 2, now)), 0, 2, now) is True  # a tie: both accept
    assert least_loaded(table((10, 3, now), (11, 2, now)), 0, 3, now) is False  # the sibling has fewer
    assert least_loaded(table((10, 2, now), (11, 3, now)), 0, 2, now) is True
    assert least_loaded(table((10, 0, now), (11, 0, now)), 0, 0, now) is True  # no connection: always
    # A sibling whose heartbeat is stale (stuck or gone), or an empty slot, is ignored.
    assert least_loaded(table((10, 3, now), (11, 0, now - 5_000)), 0, 3, now) is True
    assert least_loaded(table((10, 3, now), (0, 0, now)), 0, 3, now) is True


def _workers(master: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == master:
                out.append(int(entry))
    return out


def _owner_of_client_ports(workers: list[int], server_port: int) -> dict[int, int]:
    """client port -> worker pid, for the server side of each established connection."""
    inode_pid = {}
    for pid in workers:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                inode_pid[link[8:-1]] = pid
    owners = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].split(":")[1], 16)
        remote_port = int(fields[2].split(":")[1], 16)
        if local_port == server_port and fields[9] in inode_pid:
            owners[remote_port] = inode_pid[fields[9]]
    return owners


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's /proc")
def test_eight_kept_alive_connections_are_shared_four_and_four(tmp_path):
    port = free_port()
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.base",
        SECRET_KEY="balanced-workers-test-" + "k" * 50,
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="0",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        LOG_LEVEL="WARNING",
        # Two workers on a per-process cache are refused with DEBUG off (core/checks.py).
        DEBUG="1",
        DEBUG_TOOLBAR="0",
    )
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "config.wsgi", "-c", str(ROOT / "config" / "gunicorn.py"),
         "--workers", "2", "--bind", f"127.0.0.1:{port}", "--keep-alive", "30", "--no-control-socket"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    conns = []
    try:
        deadline = time.monotonic() + 30
        while len(_workers(proc.pid)) < 2 or not _answers(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail("gunicorn did not start: " + proc.stderr.read().decode(errors="replace")[-2000:])
            time.sleep(0.2)
        time.sleep(3)  # the probe connections above are closed and reaped
        for _ in range(8):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", "/api/v1/health/", headers={"Host": "127.0.0.1"})
            response = conn.getresponse()
            response.read()
            assert response.status == 200
            assert response.getheader("Connection", "").lower() != "close"
            conns.append(conn)
        owners = _owner_of_client_ports(_workers(proc.pid), port)
        held = [owners[conn.sock.getsockname()[1]] for conn in conns]
        assert sorted(held.count(pid) for pid in set(held)) == [4, 4], held
    finally:
        for conn in conns:
            conn.close()
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _answers(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/api/v1/health/", headers={"Host": "127.0.0.1"})
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()
