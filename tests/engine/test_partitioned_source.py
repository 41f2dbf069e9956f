"""Declaratively partitioned source tables: one Iceberg table, moves between partitions, and
the partition changes PostgreSQL sends no row changes for (attach, detach, truncate one)."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg

from harness import Run, assert_same, write_config

SCHEMA = """
CREATE TABLE m (id int, region text, v text, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
CREATE TABLE m_eu PARTITION OF m FOR VALUES IN ('eu');
CREATE TABLE m_us PARTITION OF m FOR VALUES IN ('us');
INSERT INTO m SELECT g, CASE WHEN g % 2 = 0 THEN 'eu' ELSE 'us' END, 'v' || g FROM generate_series(1, 400) g;
CREATE TABLE m_ap (LIKE m INCLUDING ALL);
INSERT INTO m_ap SELECT g, 'ap', 'ap' || g FROM generate_series(1000, 1099) g;
"""


def _resynced(run: Run, count: int, timeout_s: float = 60) -> dict:
    """Wait for the ``count``-th partitions_changed event and the re-copy it caused."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        changes = run.events("partitions_changed")
        copies = [e for e in run.events("command_finished") if e["command"] == "snapshot"]
        if len(changes) >= count and len(copies) >= count:
            assert copies[count - 1]["ok"], copies[count - 1]
            return changes[count - 1]
        assert run.proc.poll() is None, run.stderr()[-2000:]
        time.sleep(0.2)
    raise AssertionError(f"no re-copy #{count}: {run.lines()[-3:]}")


def test_partition_changes_without_row_changes_are_resynchronised(pg_url: str, tmp_path: Path) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(SCHEMA)
    run = Run(write_config(tmp_path, pg_url, ["public.m"]))
    try:
        run.wait_caught_up(pg_url)
        assert_same(pg_url, tmp_path, "public.m", "m", "id, region")
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("UPDATE m SET region = 'us' WHERE id % 10 = 0")  # rows move between partitions
            conn.execute("UPDATE m SET v = 'changed' WHERE id % 7 = 0")
        run.wait_caught_up(pg_url)
        assert_same(pg_url, tmp_path, "public.m", "m", "id, region")

        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("ALTER TABLE m ATTACH PARTITION m_ap FOR VALUES IN ('ap')")
        assert _resynced(run, 1)["attached"] == ["m_ap"]
        run.wait_caught_up(pg_url)
        assert_same(pg_url, tmp_path, "public.m", "m", "id, region")

        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("INSERT INTO m VALUES (5000, 'eu', 'before truncate')")
            conn.execute("TRUNCATE m_eu")
            conn.execute("INSERT INTO m VALUES (5001, 'eu', 'after truncate')")
        assert _resynced(run, 2)["truncated"] == ["m_eu"]
        run.wait_caught_up(pg_url)
        assert_same(pg_url, tmp_path, "public.m", "m", "id, region")

        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("ALTER TABLE m DETACH PARTITION m_us")
        assert _resynced(run, 3)["detached"] == ["m_us"]
        run.wait_caught_up(pg_url)
        assert_same(pg_url, tmp_path, "public.m", "m", "id, region")
    finally:
        assert run.stop() == 0, run.stderr()[-3000:]


def test_a_partition_change_while_stopped_is_caught_at_the_next_start(pg_url: str, tmp_path: Path) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(SCHEMA)
    config = write_config(tmp_path, pg_url, ["public.m"])
    run = Run(config)
    run.wait_caught_up(pg_url)
    assert run.stop() == 0
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE m ATTACH PARTITION m_ap FOR VALUES IN ('ap')")
    run = Run(config)
    try:
        assert _resynced(run, 1)["attached"] == ["m_ap"]
        run.wait_caught_up(pg_url)
        assert_same(pg_url, tmp_path, "public.m", "m", "id, region")
    finally:
        assert run.stop() == 0, run.stderr()[-3000:]
