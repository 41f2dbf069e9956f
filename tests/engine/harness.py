"""Drive pg2iceberg from outside, as an operator would, and compare whole tables.

Runs the real CLI in a subprocess with ``--headless``, reads its JSON lines, and compares
PostgreSQL with the Iceberg table read twice: by pyiceberg and by DuckDB's Iceberg reader.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import psycopg
from psycopg.types.string import TextLoader
from pyiceberg.catalog import load_catalog

from pg2iceberg.lsn import parse_lsn

ROOT = Path(__file__).resolve().parents[2]


def write_config(folder: Path, url: str, tables: list[str], extra_sink: str = "") -> Path:
    """A config for ``tables`` with fast flushing, catalog and warehouse in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    table_lines = "\n".join(f"  - name: '{t}'" for t in tables)
    path = folder / "config.yaml"
    path.write_text(
        f"source:\n  postgres:\n    url: {url}\n"
        f"  logical:\n    slot_name: slot_{url.rsplit('/', 1)[1].lower()}\n"
        f"sink:\n  flush_interval: 300ms\n  materializer_interval: 500ms\n{extra_sink}"
        f"tables:\n{table_lines}\n")
    return path


def current_wal_lsn(url: str) -> int:
    """The source's current WAL position."""
    with psycopg.connect(url, autocommit=True) as conn:
        # The insert position: with synchronous_commit=off the write position
        # (pg_current_wal_lsn) may still lie before the last commit's record.
        return parse_lsn(conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()[0])


class Run:
    """One ``pg2iceberg --headless`` process and its output."""

    def __init__(self, config: Path, *args: str):
        self.out_path = config.parent / f"out-{time.monotonic_ns()}.jsonl"
        self.err_path = self.out_path.with_suffix(".err")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pg2iceberg", "--config", str(config), "--headless", *args],
            stdout=self.out_path.open("w"), stderr=self.err_path.open("w"), cwd=ROOT,
            env={**os.environ, "PYTHONWARNINGS": "ignore"})

    def lines(self) -> list[dict[str, Any]]:
        """Every JSON line printed so far."""
        text = self.out_path.read_text()
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def events(self, name: str) -> list[dict[str, Any]]:
        """The events called ``name``."""
        return [r for r in self.lines() if r.get("type") == "event" and r.get("event") == name]

    def stderr(self) -> str:
        """What the process wrote to stderr."""
        return self.err_path.read_text()

    def wait_caught_up(self, url: str, timeout_s: float = 60, *, target: int | None = None) -> None:
        """Wait until every table's materialized_lsn reaches ``target`` (default: the source's
        current WAL position)."""
        target = current_wal_lsn(url) if target is None else target
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"pg2iceberg exited {self.proc.returncode}: {self.stderr()[-3000:]}")
            statuses = [r for r in self.lines() if r.get("type") == "status"]
            if statuses and statuses[-1]["tables"] and all(
                    t["materialized_lsn"] and parse_lsn(t["materialized_lsn"]) >= target
                    for t in statuses[-1]["tables"]):
                return
            time.sleep(0.1)
        raise AssertionError(f"not caught up with {target} in {timeout_s}s: {self.lines()[-1:]}")

    def peak_rss_kib(self) -> int:
        """The process's peak resident set size (VmHWM) in KiB; 0 once it is gone."""
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        except OSError:
            pass
        return 0

    def stop(self, timeout_s: float = 60) -> int:
        """SIGTERM and wait; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout_s)

    def kill(self) -> None:
        """kill -9."""
        self.proc.kill()
        self.proc.wait(30)


def catalog(folder: Path):  # noqa: ANN201 - pyiceberg Catalog
    """The SQL catalog the config in ``folder`` uses."""
    return load_catalog("default", type="sql", uri=f"sqlite:///{folder}/catalog.db",
                        warehouse=f"file://{folder}/warehouse")


def _norm(value: Any) -> Any:
    if isinstance(value, Decimal):
        return value.normalize() if value.is_finite() else value
    if isinstance(value, list):
        return tuple(_norm(v) for v in value)
    if isinstance(value, bytes):
        return value.hex()
    if hasattr(value, "hex") and type(value).__name__ == "UUID":
        return value.bytes.hex()
    return value


def source_rows(url: str, table_sql: str, key: str) -> list[tuple]:
    """Every row of a source table, ordered by ``key``."""
    with psycopg.connect(url, options="-c TimeZone=UTC") as conn:
        for json_type in ("json", "jsonb"):  # compare JSON as the text PostgreSQL prints
            conn.adapters.register_loader(json_type, TextLoader)
        rows = conn.execute(f"SELECT * FROM {table_sql} ORDER BY {key}").fetchall()
    return [tuple(_norm(v) for v in r) for r in rows]


def iceberg_rows(folder: Path, name: str, key: str) -> list[tuple]:
    """Every row of the Iceberg table ``pg2iceberg.<name>`` by pyiceberg, ordered by ``key``."""
    data = catalog(folder).load_table(("pg2iceberg", name)).scan().to_arrow()
    data = data.sort_by([(k.strip().strip('"'), "ascending") for k in key.split(",")])
    return [tuple(_norm(v) for v in row.values()) for row in data.to_pylist()]


def duckdb_rows(folder: Path, name: str, key: str) -> list[tuple]:
    """Every row of the same table read by DuckDB's Iceberg reader (an independent reader)."""
    import duckdb_extension_avro
    import duckdb_extension_iceberg

    table = catalog(folder).load_table(("pg2iceberg", name))
    con = duckdb.connect()
    for module, ext in ((duckdb_extension_avro, "avro"), (duckdb_extension_iceberg, "iceberg")):
        path = next(Path(module.__file__).parent.glob(f"extensions/*/{ext}.duckdb_extension"))
        con.execute(f"LOAD '{path}'")
    con.execute("SET TimeZone = 'UTC'")
    rows = con.execute(f"SELECT * FROM iceberg_scan('{table.metadata_location}') ORDER BY {key}").fetchall()
    return [tuple(_norm(v) for v in r) for r in rows]


def assert_same(url: str, folder: Path, table_sql: str, name: str, key: str) -> int:
    """Source == pyiceberg scan == DuckDB scan, whole tables; returns the row count."""
    expected = source_rows(url, table_sql, key)
    got = iceberg_rows(folder, name, key)
    assert got == expected, _diff(expected, got)
    assert duckdb_rows(folder, name, key) == expected
    return len(expected)


def _diff(expected: list[tuple], got: list[tuple]) -> str:
    exp, have = set(expected), set(got)
    return (f"{len(expected)} source rows vs {len(got)} Iceberg rows; missing {sorted(exp - have)[:5]}; "
            f"extra {sorted(have - exp)[:5]}")


class Workload(threading.Thread):
    """Random inserts, updates (some moving the key) and deletes, in small transactions, over
    tables shaped ``(id bigint PRIMARY KEY, v text, n double precision)`` with keys 1..2000."""

    def __init__(self, url: str, tables: list[str], seed: int, *, max_changes: int = 20,
                 first_new_id: int = 1_000_000):
        super().__init__(daemon=True)
        self.url, self.tables, self.rng = url, tables, random.Random(seed)
        self.max_changes, self.next_id = max_changes, first_new_id
        self.stop_flag = threading.Event()
        self.transactions = 0

    def run(self) -> None:
        rng = self.rng
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stop_flag.is_set():
                with conn.transaction():
                    for _ in range(rng.randint(1, self.max_changes)):
                        table, key, pick = rng.choice(self.tables), rng.randint(1, 2000), rng.random()
                        self.next_id += 1
                        if pick < 0.4:
                            conn.execute(f"INSERT INTO {table} (id, v, n) VALUES (%s, %s, %s)",
                                         (self.next_id, f"v{self.next_id}", pick))
                        elif pick < 0.8:
                            conn.execute(f"UPDATE {table} SET v = v || 'u', n = %s WHERE id = %s", (pick, key))
                        elif pick < 0.9:
                            conn.execute(f"UPDATE {table} SET id = %s WHERE id = %s", (self.next_id, key))
                        else:
                            conn.execute(f"DELETE FROM {table} WHERE id = %s", (key,))
                self.transactions += 1
                time.sleep(0.005)

    def finish(self) -> None:
        """Stop after the transaction in progress."""
        self.stop_flag.set()
        self.join()
