"""Tables added to or removed from the config between runs."""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg

from harness import Run, assert_same, catalog, write_config


def _writer(url: str, stop: threading.Event) -> None:
    """Changes to both tables until stopped."""
    with psycopg.connect(url, autocommit=True) as conn:
        i = 0
        while not stop.is_set():
            i += 1
            conn.execute("UPDATE a SET n = n + 1 WHERE id = %s", (i % 300 + 1,))
            conn.execute("INSERT INTO b VALUES (%s, 'live') ON CONFLICT (id) DO UPDATE SET v = 'again'",
                         (100_000 + i % 500,))
            conn.execute("DELETE FROM b WHERE id = %s", (i * 7 % 20_000 + 1,))


def test_an_added_table_is_copied_while_the_others_stream_and_a_removed_one_is_left(
        pg_url: str, tmp_path: Path) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE a (id int PRIMARY KEY, n int)")
        conn.execute("INSERT INTO a SELECT g, 0 FROM generate_series(1, 300) g")
        conn.execute("CREATE TABLE b (id int PRIMARY KEY, v text)")
        conn.execute("INSERT INTO b SELECT g, repeat('x', 50) FROM generate_series(1, 20000) g")
    run = Run(write_config(tmp_path, pg_url, ["public.a"]))
    run.wait_caught_up(pg_url)
    assert run.stop() == 0

    stop = threading.Event()
    writer = threading.Thread(target=_writer, args=(pg_url, stop))
    writer.start()
    try:
        run = Run(write_config(tmp_path, pg_url, ["public.a", "public.b"]))
        try:
            run.wait_caught_up(pg_url, timeout_s=120)
            # streaming (of a, too) started before b's copy: a is never held up by it
            names = [e["event"] for e in run.lines() if e.get("event") in (
                "streaming_started", "snapshot_started", "snapshot_completed")]
            assert names == ["streaming_started", "snapshot_started", "snapshot_completed"]
            assert [e["table"] for e in run.events("snapshot_completed")] == ["public.b"]
        finally:
            stop.set()
            writer.join()
        run.wait_caught_up(pg_url)
        assert_same(pg_url, tmp_path, "public.a", "a", "id")
        assert_same(pg_url, tmp_path, "public.b", "b", "id")
    finally:
        stop.set()
        assert run.stop() == 0

    a_before = catalog(tmp_path).load_table(("pg2iceberg", "a")).current_snapshot().snapshot_id
    run = Run(write_config(tmp_path, pg_url, ["public.b"]))
    try:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("UPDATE a SET n = -1")
            conn.execute("UPDATE b SET v = 'third run' WHERE id < 100")
        run.wait_caught_up(pg_url)
        assert_same(pg_url, tmp_path, "public.b", "b", "id")
    finally:
        assert run.stop() == 0
    assert catalog(tmp_path).load_table(("pg2iceberg", "a")).current_snapshot().snapshot_id == a_before
