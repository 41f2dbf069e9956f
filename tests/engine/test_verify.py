"""--verify from outside (equal, tampered, behind, missing table) and in-process in small chunks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import psycopg
import pyarrow as pa
import pytest
from pyiceberg.expressions import EqualTo

from harness import ROOT, Run, catalog, write_config
from pg2iceberg.config import load_config
from pg2iceberg.runtime import commands as c
from pg2iceberg.runtime.supervisor import Supervisor
from pg2iceberg.verify import table as verify_table

SCHEMA = """
CREATE TABLE public.orders (id bigint PRIMARY KEY, customer text, amount numeric(12,2), score double precision,
                            tags text[], placed_at timestamptz);
CREATE TABLE public.items (order_id bigint, line int, sku text, PRIMARY KEY (order_id, line));
"""


def _seed(url: str, first: int, last: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO orders SELECT g, 'cust ' || g, g * 1.25, CASE WHEN g %% 100 = 0 THEN 'NaN'::float8 "
                     "ELSE g / 7.0 END, ARRAY['t' || (g %% 3), NULL], timestamptz '2024-01-01 00:00+02' + g * "
                     "interval '1 hour' FROM generate_series(%s::int, %s::int) g", (first, last))
        conn.execute("INSERT INTO items SELECT g, l, 'sku ' || l FROM generate_series(%s::int, %s::int) g, "
                     "generate_series(1, 2) l", (first, last))


def _source(url: str, folder: Path, rows: int, tables: tuple[str, ...] = ("public.orders", "public.items")) -> Path:
    """The orders/items schema with ``rows`` orders, and a config for ``tables``."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SCHEMA)
    _seed(url, 1, rows)
    return write_config(folder, url, list(tables))


def _verify(config: Path, *args: str) -> tuple[int, list[dict], str]:
    result = subprocess.run([sys.executable, "-m", "pg2iceberg", "--config", str(config), "--verify", "--headless",
                             *args], capture_output=True, text=True, cwd=ROOT, timeout=300,
                            env={**os.environ, "PYTHONWARNINGS": "ignore"})
    records = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    tables = [r for r in records if r.get("event") == "verify_table"]
    return result.returncode, tables, result.stderr


def _by_table(results: list[dict]) -> dict[str, dict]:
    return {r["table"]: r for r in results}


def _tamper(folder: Path) -> None:
    """Outside writes to the Iceberg table: one bogus row, one deleted row, one changed value."""
    table = catalog(folder).load_table(("pg2iceberg", "orders"))
    bogus = table.scan(row_filter=EqualTo("id", 7)).to_arrow()
    bogus = bogus.set_column(0, bogus.schema.field(0), pa.array([999_999], pa.int64()))
    table.append(bogus)
    table.delete(EqualTo("id", 10))
    changed = table.scan(row_filter=EqualTo("id", 20)).to_arrow()
    changed = changed.set_column(1, changed.schema.field(1), pa.array(["tampered"], changed.schema.field(1).type))
    table.overwrite(changed, overwrite_filter=EqualTo("id", 20))


def test_verify_equal_then_tampered_then_behind(pg_url: str, tmp_path: Path) -> None:
    config = _source(pg_url, tmp_path, 2000)
    run = Run(config)
    try:
        run.wait_caught_up(pg_url)
        with psycopg.connect(pg_url, autocommit=True) as conn:  # changes verify has to wait for
            conn.execute("UPDATE orders SET customer = 'late' WHERE id % 50 = 0")
            conn.execute("DELETE FROM items WHERE order_id < 30")
        code, results, err = _verify(config)
        assert code == 0, err
        assert {r["table"]: r["status"] for r in results} == {"public.orders": "equal", "public.items": "equal"}
        assert _by_table(results)["public.orders"]["source_rows"] == 2000
    finally:
        assert run.stop() == 0, run.stderr()[-3000:]

    _tamper(tmp_path)
    code, results, err = _verify(config)
    assert code == 3, err
    orders = _by_table(results)["public.orders"]
    assert (orders["status"], orders["missing"], orders["extra"], orders["different"]) == ("different", 1, 1, 1)
    assert orders["first_keys"] == ["id=10", "id=20", "id=999999"]
    assert _by_table(results)["public.items"]["status"] == "equal"
    assert "public.orders: different: 1 missing, 1 extra, 1 different" in err

    code, results, err = _verify(config, "--table", "public.items")
    assert code == 0, err
    assert [r["table"] for r in results] == ["public.items"]

    with psycopg.connect(pg_url, autocommit=True) as conn:  # a source change while nothing runs
        conn.execute("UPDATE items SET sku = 'changed' WHERE order_id = 40")
    code, results, err = _verify(config, "--table", "public.items")
    assert code == 3, err
    items = results[0]
    assert items["status"] == "behind" and items["behind_bytes"] > 0 and items["different"] == 2
    assert "no pipeline is running" in items["note"]


def test_verify_missing_iceberg_table_is_a_difference(pg_url: str, tmp_path: Path) -> None:
    code, results, err = _verify(_source(pg_url, tmp_path, 5, ("public.orders",)))
    assert code == 3, err
    assert results[0]["status"] == "missing_table" and results[0]["source_rows"] == 5


def test_verify_in_small_chunks_finds_differences_in_every_chunk(pg_url: str, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    config_path = _source(pg_url, tmp_path, 3000)
    run = Run(config_path)
    try:
        run.wait_caught_up(pg_url)
    finally:
        assert run.stop() == 0
    items = catalog(tmp_path).load_table(("pg2iceberg", "items"))
    items.delete(EqualTo("order_id", 5))  # two rows, first chunk
    items.delete(EqualTo("order_id", 2999))  # two rows, last chunk
    monkeypatch.setattr(verify_table, "CHUNK_ROWS", 250)
    sup = Supervisor(load_config(config_path), "verify")
    outcome = sup.execute(c.Verify(tables=("public.orders", "public.items")))
    assert (outcome.ok, outcome.exit_code) == (False, 3)
    found = {t["table"]: t for t in outcome.details["tables"]}
    assert found["public.orders"]["status"] == "equal" and found["public.orders"]["source_rows"] == 3000
    assert found["public.items"]["missing"] == 4 and found["public.items"]["extra"] == 0
    assert found["public.orders"]["chunks"] > 3000 // 250 and found["public.items"]["chunks"] > 6000 // 250
    assert list(found["public.items"]["first_keys"]) == ["order_id=5, line=1", "order_id=5, line=2",
                                                   "order_id=2999, line=1", "order_id=2999, line=2"]


def test_verify_under_a_steady_write_load_reports_equal(pg_url: str, tmp_path: Path) -> None:
    """Hot keys change all the time while verify reads: races are rechecked, never reported."""
    config = _source(pg_url, tmp_path, 2000)
    run = Run(config)
    stop = threading.Event()

    def write() -> None:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            i = 0
            while not stop.is_set():
                i += 1
                conn.execute("UPDATE orders SET amount = amount + 1 WHERE id = %s", (1 + i % 40,))
                conn.execute("UPDATE items SET sku = sku || '.' WHERE order_id = %s AND line = 1", (1 + i % 40,))
                stop.wait(0.01)

    writer = threading.Thread(target=write)
    try:
        run.wait_caught_up(pg_url)
        writer.start()
        code, results, err = _verify(config)
        assert code == 0, (results, err[-2000:])
        assert {r["table"]: r["status"] for r in results} == {"public.orders": "equal", "public.items": "equal"}
    finally:
        stop.set()
        if writer.is_alive():
            writer.join()
        assert run.stop() == 0
