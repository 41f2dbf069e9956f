"""``pg2iceberg --demo``: a throwaway PostgreSQL, a demo workload, and single mode over it.

Everything lives in a demo folder (``./pg2iceberg-demo`` by default): the generated
``config.yaml``, the SQLite catalog ``catalog.db`` and the local ``warehouse`` (with the
staged stream under ``warehouse/_stream``). Each demo starts fresh: catalog and warehouse of
a previous run are removed first. The PostgreSQL server and the writer are stopped on exit.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
from pathlib import Path

from pg2iceberg.demo.local_postgres import LocalPostgres
from pg2iceberg.demo.workload import DemoWorkload, create_schema

DEMO_FOLDER = "pg2iceberg-demo"
DEMO_TABLES = ("shop.customers", "shop.orders")
_STALE = ("catalog.db", "warehouse", "_stream")


def write_demo_config(root: Path, url: str) -> Path:
    """Write the demo's ``config.yaml`` into ``root`` (created, old demo state removed).

    Args:
        root: the demo folder.
        url: libpq URL of the demo database (no password: the server trusts local users).

    Returns:
        The path of the config file.
    """
    root.mkdir(parents=True, exist_ok=True)
    for name in _STALE:
        stale = root / name
        if stale.is_dir():
            shutil.rmtree(stale)
        elif stale.exists():
            stale.unlink()
    tables = "".join(f"  - name: {name}\n" for name in DEMO_TABLES)
    path = root / "config.yaml"
    path.write_text(
        "# Written by pg2iceberg --demo; rewritten on every demo start.\n"
        f"source:\n  postgres:\n    url: {url}\n"
        "sink:\n"
        "  catalog_type: sql\n"
        "  catalog_uri: sqlite:///catalog.db\n"
        "  warehouse: warehouse\n"
        "  flush_interval: 1s\n"
        "  materializer_interval: 1s\n"
        f"tables:\n{tables}"
    )
    return path


def _banner(server: LocalPostgres, root: Path) -> None:
    sys.stderr.write(
        "pg2iceberg demo\n"
        f"  PostgreSQL: {server.url()} (port {server.port}; tables {', '.join(DEMO_TABLES)})\n"
        f"  demo folder: {root} (config.yaml, catalog.db, warehouse/)\n"
        "  stop with Ctrl-C: everything the demo started is stopped\n"
    )
    sys.stderr.flush()


def _interrupt_self() -> None:
    """Send this process SIGINT: the supervisor's graceful-stop handler takes it."""
    os.kill(os.getpid(), signal.SIGINT)


def run_demo(*, headless: bool, root: Path | None = None, duration_s: float | None = None) -> int:
    """Run the demo until stopped; return the exit code of the supervised run.

    Args:
        headless: JSON lines on stdout instead of the console.
        root: the demo folder; ``./pg2iceberg-demo`` when None.
        duration_s: stop gracefully after this many seconds (for tests); None runs until
            SIGINT/SIGTERM.

    Returns:
        The exit code of :func:`pg2iceberg.cli.run_supervised` (0 after a clean stop).
    """
    from pg2iceberg.cli import HARD_EXIT_HOOKS, run_supervised
    from pg2iceberg.config import load_config

    root = (root if root is not None else Path.cwd() / DEMO_FOLDER).resolve()
    server = LocalPostgres()
    workload: DemoWorkload | None = None
    timer: threading.Timer | None = None
    HARD_EXIT_HOOKS.append(server.stop)  # a second Ctrl-C must not leave the server behind
    try:
        server.start()
        url = server.url("postgres")
        create_schema(url)
        config_path = write_demo_config(root, url)
        _banner(server, root)
        workload = DemoWorkload(url).start()
        config = load_config(config_path)
        if duration_s is not None:
            timer = threading.Timer(duration_s, _interrupt_self)
            timer.daemon = True
            timer.start()
        return run_supervised(config, "single", headless=headless)
    finally:
        if timer is not None:
            timer.cancel()
        if workload is not None:
            workload.stop()
        server.stop()
        sys.stderr.write(f"pg2iceberg demo: stopped; its catalog and warehouse are in {root}\n")
        sys.stderr.flush()
