"""config/workers.py: gunicorn's gthread workers share kept-alive connections out
evenly (issue 14). With the stock worker, whichever worker woke first kept every
connection it accepted (8/0 and 7/1 splits of 8 clients over 2 workers), so one
worker served them all on one core while the other idled."""
import http.client
import os
import time
from pathlib import Path

from config.workers import SLOTS, least_loaded
from tests.cache.servers import health_answers, sqlite_gunicorn
from tests.prerequisites import needs


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


@needs(Path("/proc/net/tcp").exists(), "reads Linux's /proc")
def test_eight_kept_alive_connections_are_shared_four_and_four(tmp_path):
    def two_workers_answer(proc, port):
        return len(_workers(proc.pid)) >= 2 and health_answers(port)

    with sqlite_gunicorn(
        tmp_path / "db.sqlite3",
        workers=2,
        args=("--keep-alive", "30"),
        ready=two_workers_answer,
        SECRET_KEY="balanced-workers-test-" + "k" * 50,
        # Two workers on a per-process cache are refused with DEBUG off (core/checks.py).
        DEBUG="1",
        DEBUG_TOOLBAR="0",
    ) as (proc, port):
        conns = []
        try:
            time.sleep(3)  # the start-up probe connections are closed and reaped
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
