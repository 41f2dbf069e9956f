"""A throwaway local PostgreSQL server for the demo and the test suite.

It runs Debian's PostgreSQL binaries (``/usr/lib/postgresql/<v>/bin``) from a temporary data
directory on a free loopback port, with ``wal_level=logical``. PostgreSQL refuses to run as
root, so when we are root the server runs as the ``postgres`` system user. Everything it
started is stopped and removed by :meth:`LocalPostgres.stop`.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from pg2iceberg.errors import TerminalError

SUPERUSER = "postgres"


def find_bin_dir() -> Path:
    """Return the newest PostgreSQL ``bin`` folder that has ``initdb`` and ``pg_ctl``."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name)
    )
    for path in reversed(candidates):
        if os.path.exists(os.path.join(path, "initdb")):
            return Path(path)
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    raise TerminalError(
        "no PostgreSQL server binaries found (looked in /usr/lib/postgresql/*/bin and PATH); "
        "install them with: apt-get install -y postgresql-15"
    )


def free_port() -> int:
    """Ask the kernel for a free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalPostgres:
    """One PostgreSQL server in a temporary folder, owned by this process."""

    def __init__(self, *, max_replication_slots: int = 20, extra_settings: dict[str, str] | None = None):
        self.bin_dir = find_bin_dir()
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="pg2iceberg-pg-"))
        self.data_dir = self.root / "data"
        self.settings = {
            "wal_level": "logical",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_replication_slots": str(max_replication_slots),
            "max_wal_senders": str(max_replication_slots),
            "max_connections": "200",
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.root),
            **(extra_settings or {}),
        }
        self._as_postgres = os.geteuid() == 0

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> "LocalPostgres":
        """Create the cluster and start the server; returns self once it accepts connections."""
        if self._as_postgres:
            shutil.chown(self.root, user="postgres", group="postgres")
        self._run("initdb", "-D", str(self.data_dir), "-U", SUPERUSER, "--auth=trust",
                  "-E", "UTF8", "--locale=C.UTF-8")
        options = " ".join(f"-c {k}={v}" for k, v in self.settings.items())
        self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(self.root / "server.log"),
                  "-o", options, "-w", "-t", "60", "start")
        self._wait_ready()
        return self

    def stop(self) -> None:
        """Stop the server immediately and remove its folder."""
        if self.data_dir.exists():
            subprocess.run(
                [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate",
                 "-w", "stop"],
                user="postgres" if self._as_postgres else None,
                capture_output=True, check=False,
            )
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "LocalPostgres":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- addresses -----------------------------------------------------------------------

    def url(self, database: str = "postgres") -> str:
        """A libpq URL for the superuser on this server."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create a database and return its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    # -- internals -----------------------------------------------------------------------

    def _run(self, tool: str, *args: str) -> None:
        result = subprocess.run(
            [str(self.bin_dir / tool), *args],
            user="postgres" if self._as_postgres else None,
            capture_output=True, text=True, check=False, cwd=str(self.root),
        )
        if result.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise TerminalError(
                f"local PostgreSQL: {tool} failed ({result.returncode}): "
                f"{result.stderr.strip() or result.stdout.strip()}\n{tail}"
            )

    def _wait_ready(self, timeout_s: float = 30.0) -> None:
        import psycopg

        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with psycopg.connect(self.url(), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
