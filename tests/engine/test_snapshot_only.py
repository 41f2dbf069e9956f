"""--snapshot-only: one-shot copy, no slot; idempotent; a later streaming run re-copies."""

from __future__ import annotations

from pathlib import Path

import psycopg

from harness import Run, assert_same, write_config


def test_snapshot_only_then_streaming_recopies(pg_url: str, tmp_path: Path) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
        conn.execute("INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 5000) g")
    config = write_config(tmp_path, pg_url, ["public.t"])
    first = Run(config, "--snapshot-only")
    assert first.proc.wait(120) == 0, first.stderr()
    assert [e["rows"] for e in first.events("snapshot_completed")] == [5000]
    assert_same(pg_url, tmp_path, "public.t", "t", "id")
    with psycopg.connect(pg_url, autocommit=True) as conn:
        slots = conn.execute("SELECT count(*) FROM pg_replication_slots WHERE database = current_database()"
                             ).fetchone()[0]
        conn.execute("UPDATE t SET v = 'changed after the copy' WHERE id <= 100")
    second = Run(config, "--snapshot-only")
    assert second.proc.wait(120) == 0
    assert second.events("snapshot_already_complete") and not second.events("snapshot_started")
    streaming = Run(config)
    try:
        streaming.wait_caught_up(pg_url)
        assert [e["table"] for e in streaming.events("snapshot_restarted")] == ["public.t"]
        assert_same(pg_url, tmp_path, "public.t", "t", "id")
    finally:
        assert streaming.stop() == 0
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM pg_replication_slots WHERE database = current_database()"
                            ).fetchone()[0] == 1
    assert slots == 0  # the one-shot copy created no slot
