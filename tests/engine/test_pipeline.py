"""Single mode end to end: snapshot, then stream; whole tables compared three ways."""

from __future__ import annotations

from pathlib import Path

import psycopg

from harness import Run, assert_same, write_config

SCHEMA = """
CREATE TABLE public.orders (
  id bigint PRIMARY KEY, customer text, amount numeric(12,2), paid boolean,
  placed_at timestamptz, due date, tags text[], doc jsonb, score double precision);
CREATE TABLE public.items (order_id bigint, line int, sku text, qty int, PRIMARY KEY (order_id, line));
"""


def _seed(conn: psycopg.Connection, first: int, last: int) -> None:
    conn.execute(
        "INSERT INTO orders SELECT g, 'cust ' || (g %% 97), g * 1.25, g %% 2 = 0, "
        "timestamptz '2024-03-31 00:30:00+01' + g * interval '17 minutes', date '2024-01-01' + (g %% 400)::int, "
        "ARRAY['t' || (g %% 5), NULL], jsonb_build_object('n', g, 'u', 'é☃'), g / 7.0 "
        "FROM generate_series(%s::bigint, %s::bigint) g", (first, last))
    conn.execute("INSERT INTO items SELECT g, l, 'sku-' || l, l FROM generate_series(%s::bigint, %s::bigint) g, "
                 "generate_series(1, 3) l", (first, last))


def _compare(url: str, folder: Path) -> None:
    assert_same(url, folder, "public.orders", "orders", "id")
    assert_same(url, folder, "public.items", "items", "order_id, line")


def test_snapshot_then_changes_keep_tables_equal(pg_url: str, tmp_path: Path) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(SCHEMA)
        _seed(conn, 1, 3000)
        conn.execute("UPDATE orders SET customer = NULL, amount = NULL, tags = NULL, doc = NULL WHERE id % 10 = 0")
    config = write_config(tmp_path, pg_url, ["public.orders", "public.items"])
    run = Run(config)
    try:
        run.wait_caught_up(pg_url)
        assert [e["table"] for e in run.events("snapshot_completed")] != []
        _compare(pg_url, tmp_path)
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("UPDATE orders SET paid = NOT paid, tags = '{}' WHERE id % 3 = 0")
            conn.execute("DELETE FROM orders WHERE id BETWEEN 100 AND 200")
            conn.execute("UPDATE orders SET id = id + 100000 WHERE id BETWEEN 300 AND 310")  # PK change
            conn.execute("UPDATE items SET line = line + 10 WHERE order_id = 5")  # composite PK change
            _seed(conn, 5001, 6000)
            with conn.transaction():  # one transaction over two tables, insert+update+delete of a key
                conn.execute("INSERT INTO orders (id, customer) VALUES (900001, 'tx')")
                conn.execute("UPDATE orders SET customer = 'tx2' WHERE id = 900001")
                conn.execute("DELETE FROM items WHERE order_id = 7")
                conn.execute("INSERT INTO items VALUES (900001, 1, 'x', 1)")
                conn.execute("DELETE FROM orders WHERE id = 900001")
                conn.execute("INSERT INTO orders (id, customer) VALUES (900001, 'again')")
        run.wait_caught_up(pg_url)
        _compare(pg_url, tmp_path)
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("TRUNCATE items")
            conn.execute("INSERT INTO items VALUES (1, 1, 'after truncate', 2)")
            with conn.transaction():
                conn.execute("INSERT INTO orders (id) VALUES (-1)")
                conn.execute("TRUNCATE orders")
                conn.execute("INSERT INTO orders (id, customer) VALUES (42, 'only')")
        run.wait_caught_up(pg_url)
        _compare(pg_url, tmp_path)
    finally:
        assert run.stop() == 0, run.stderr()[-3000:]
    assert run.events("batch_committed")


def test_big_transactions(pg_url: str, tmp_path: Path) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(SCHEMA)
        _seed(conn, 1, 10)
    run = Run(write_config(tmp_path, pg_url, ["public.orders", "public.items"], "  flush_bytes: 4MiB\n"))
    try:
        run.wait_caught_up(pg_url)
        with psycopg.connect(pg_url, autocommit=True) as conn:
            with conn.transaction():
                _seed(conn, 100, 200_099)  # 200k orders + 600k items in one transaction
            conn.execute("UPDATE orders SET amount = amount + 1 WHERE id % 2 = 0")  # 100k-row update
        run.wait_caught_up(pg_url, timeout_s=300)
        _compare(pg_url, tmp_path)
    finally:
        assert run.stop() == 0, run.stderr()[-3000:]


def test_restart_resumes_without_duplicates(pg_url: str, tmp_path: Path) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(SCHEMA)
        _seed(conn, 1, 500)
    config = write_config(tmp_path, pg_url, ["public.orders", "public.items"])
    run = Run(config)
    run.wait_caught_up(pg_url)
    assert run.stop() == 0
    with psycopg.connect(pg_url, autocommit=True) as conn:  # changes while stopped
        conn.execute("UPDATE orders SET customer = 'while stopped' WHERE id < 50")
        _seed(conn, 1000, 1100)
    run = Run(config)
    try:
        run.wait_caught_up(pg_url)
        _compare(pg_url, tmp_path)
        assert run.events("snapshot_started") == []  # resumed from the slot, no new copy
    finally:
        assert run.stop() == 0
