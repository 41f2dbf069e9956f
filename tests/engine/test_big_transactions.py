"""A transaction bigger than the materializer's chunk is applied chunk by chunk into ONE commit.

The config makes every piece tiny (the writer spills a transaction every few KiB, the
materializer folds 40 rows at a time), so one transaction spans many chunks, and each rule
must hold across chunk boundaries: the last image wins, a key change carries its unchanged
TOASTed value from an image written by an earlier chunk, a TRUNCATE in the middle empties
what earlier chunks wrote, and a file written by one chunk and rewritten by a later one is
deleted, never left behind.
"""

from __future__ import annotations

from pathlib import Path

import psycopg

from harness import Run, assert_same, catalog, current_wal_lsn, write_config
from pg2iceberg.lsn import parse_lsn

CHUNK_ROWS = 40
TINY = "  flush_bytes: 4KiB\n  materializer_chunk_rows: 40\n"


def _only_commit_after(run: Run, lsn: int) -> dict:
    """The one batch_committed event past ``lsn`` (taken just before the transaction)."""
    after = [e for e in run.events("batch_committed") if parse_lsn(e["lsn"]) > lsn]
    assert len(after) == 1, after
    return after[0]


def _files_on_disk(folder: Path, name: str) -> set[str]:
    table = catalog(folder).load_table(("pg2iceberg", name))
    data_dir = Path(table.location().removeprefix("file://")) / "data"
    return {str(p) for p in data_dir.rglob("*.parquet")}


def _files_referenced(folder: Path, name: str) -> set[str]:
    table = catalog(folder).load_table(("pg2iceberg", name))
    io = table.io
    paths = set()
    for snap in table.snapshots():
        for manifest in snap.manifests(io):
            for entry in manifest.fetch_manifest_entry(io, discard_deleted=False):
                paths.add(entry.data_file.file_path.removeprefix("file://"))
    return paths


def test_a_transaction_bigger_than_a_chunk_lands_in_one_commit(pg_url: str, tmp_path: Path) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE big (id int PRIMARY KEY, body text, n int)")
        conn.execute("ALTER TABLE big ALTER COLUMN body SET STORAGE EXTERNAL")
        conn.execute("INSERT INTO big SELECT g, repeat(md5(g::text), 100), 0 FROM generate_series(1, 200) g")
    run = Run(write_config(tmp_path, pg_url, ["public.big"], extra_sink=TINY))
    try:
        run.wait_caught_up(pg_url)
        snapshots_before = len(catalog(tmp_path).load_table(("pg2iceberg", "big")).snapshots())
        before = current_wal_lsn(pg_url)
        with psycopg.connect(pg_url, autocommit=True) as conn, conn.transaction():
            conn.execute("INSERT INTO big SELECT g, 'new-' || g, 1 FROM generate_series(1001, 1300) g")
            for _ in range(3):  # the same keys, again and again: the last image wins
                conn.execute("UPDATE big SET n = n + 1 WHERE id BETWEEN 1 AND 150")
            conn.execute("DELETE FROM big WHERE id BETWEEN 100 AND 120")
            conn.execute("INSERT INTO big VALUES (105, 'back again', 7)")
            # a key change whose TOASTed body is sent unchanged; its image lives in a file an
            # earlier chunk of this same transaction wrote
            conn.execute("UPDATE big SET id = id + 5000 WHERE id BETWEEN 1 AND 5")
            conn.execute("UPDATE big SET n = -1 WHERE id BETWEEN 5001 AND 5005")
        run.wait_caught_up(pg_url)
        event = _only_commit_after(run, before)
        assert event["changes"] > 10 * CHUNK_ROWS and event["chunks"] > 10, event
        assert_same(pg_url, tmp_path, "public.big", "big", "id")
        assert len(catalog(tmp_path).load_table(("pg2iceberg", "big")).snapshots()) == snapshots_before + 1

        before = current_wal_lsn(pg_url)
        with psycopg.connect(pg_url, autocommit=True) as conn, conn.transaction():
            conn.execute("UPDATE big SET n = n + 10 WHERE id > 1000")
            conn.execute("TRUNCATE big")  # empties what the earlier chunks of this transaction wrote
            conn.execute("INSERT INTO big SELECT g, repeat('after', 500), 2 FROM generate_series(1, 250) g")
            conn.execute("UPDATE big SET n = 3 WHERE id % 7 = 0")
        run.wait_caught_up(pg_url)
        _only_commit_after(run, before)
        assert_same(pg_url, tmp_path, "public.big", "big", "id")
        # Every file a chunk wrote and a later chunk replaced was deleted: what is on disk is
        # exactly what some snapshot references.
        assert _files_on_disk(tmp_path, "big") == _files_referenced(tmp_path, "big")
    finally:
        assert run.stop() == 0


def test_a_big_transaction_on_a_table_without_a_key_lands_in_one_commit(pg_url: str, tmp_path: Path) -> None:
    """Full-row matching across chunks: a removal finds its copy in a file an earlier chunk of
    the same transaction wrote; duplicates stay exactly as many as the source has."""
    order = "n, v, d"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE bag (n int, v text, d double precision)")
        conn.execute("ALTER TABLE bag REPLICA IDENTITY FULL")
        conn.execute("INSERT INTO bag SELECT g % 40, 'v' || (g % 3), g / 4.0 FROM generate_series(1, 200) g")
    run = Run(write_config(tmp_path, pg_url, ["public.bag"], extra_sink=TINY))
    try:
        run.wait_caught_up(pg_url)
        before = current_wal_lsn(pg_url)
        with psycopg.connect(pg_url, autocommit=True) as conn, conn.transaction():
            conn.execute("INSERT INTO bag SELECT g % 30, 'dup', 1 FROM generate_series(1, 400) g")  # duplicates
            conn.execute("UPDATE bag SET d = d + 1 WHERE n < 5")  # rows of the snapshot and of this tx
            conn.execute("DELETE FROM bag WHERE ctid IN (SELECT ctid FROM bag WHERE v = 'dup' AND n = 7 LIMIT 5)")
            conn.execute("DELETE FROM bag WHERE v = 'v1' AND n > 30")
            conn.execute("INSERT INTO bag SELECT 7, 'dup', 1 FROM generate_series(1, 3)")
        run.wait_caught_up(pg_url)
        event = _only_commit_after(run, before)
        assert event["chunks"] > 10, event
        assert_same(pg_url, tmp_path, "public.bag", "bag", order)

        before = current_wal_lsn(pg_url)
        with psycopg.connect(pg_url, autocommit=True) as conn, conn.transaction():
            conn.execute("INSERT INTO bag SELECT g % 9, 'again', 2 FROM generate_series(1, 300) g")
            conn.execute("TRUNCATE bag")
            conn.execute("INSERT INTO bag SELECT g % 9, 'after', 3 FROM generate_series(1, 300) g")
            conn.execute("DELETE FROM bag WHERE ctid IN (SELECT ctid FROM bag WHERE n = 4 LIMIT 10)")
        run.wait_caught_up(pg_url)
        _only_commit_after(run, before)
        assert_same(pg_url, tmp_path, "public.bag", "bag", order)
        assert _files_on_disk(tmp_path, "bag") == _files_referenced(tmp_path, "bag")
    finally:
        assert run.stop() == 0
