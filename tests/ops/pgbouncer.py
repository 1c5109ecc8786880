"""A private PgBouncer (transaction pooling) in front of the shared PostgreSQL, on a
free port, for tests/ops/test_pgbouncer.py. Needs the Debian package pgbouncer."""
from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.cache.servers import free_port


def binary() -> str | None:
    return shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if os.path.exists("/usr/sbin/pgbouncer") else None
    )


class PgBouncer:
    """``pgbouncer`` with pool_mode=transaction, forwarding every database name to
    ``host:port`` as ``user`` (auth_type=any: the shared server trusts loopback).
    PgBouncer refuses to run as root, so as root it is started with ``-u nobody``."""

    def __init__(self, host: str, port: int, user: str, password: str = "", pool_size: int = 4):
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="sb-pgbouncer-"))
        self.dir.chmod(0o777)
        self.ini = self.dir / "pgbouncer.ini"
        self.log = self.dir / "pgbouncer.log"
        password_part = f" password={password}" if password else ""
        self.ini.write_text(
            "[databases]\n"
            f"* = host={host} port={port} user={user}{password_part}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            f"unix_socket_dir = {self.dir}\n"
            "auth_type = any\n"
            "pool_mode = transaction\n"
            f"default_pool_size = {pool_size}\n"
            "max_client_conn = 200\n"
            "server_reset_query =\n"
            "ignore_startup_parameters = extra_float_digits,options\n"
            f"logfile = {self.log}\n"
            f"pidfile = {self.dir / 'pgbouncer.pid'}\n"
        )
        self.ini.chmod(0o644)
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        cmd = [binary(), str(self.ini)]
        if os.geteuid() == 0:
            pwd.getpwnam("nobody")
            cmd[1:1] = ["-u", "nobody"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"pgbouncer exited: {self.proc.stderr.read().decode()} {self.log_tail()}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"pgbouncer did not listen on :{self.port}: {self.log_tail()}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # immediate shutdown
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, user: str, database: str) -> str:
        return f"postgres://{user}@127.0.0.1:{self.port}/{database}"
