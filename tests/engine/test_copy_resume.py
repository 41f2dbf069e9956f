"""A copy killed halfway resumes after its last recorded key: no row lost or doubled, and the
files written before the kill are kept, not written again."""

from __future__ import annotations

import json
import time
from pathlib import Path

import psycopg

from harness import Run, assert_same, catalog, write_config


def _progress(url: str) -> tuple[list | None, list[str]]:
    with psycopg.connect(url, autocommit=True) as conn:
        try:
            row = conn.execute("SELECT last_key, files FROM _pg2iceberg.snapshots WHERE table_name = 'public.wide'"
                               ).fetchone()
        except psycopg.errors.UndefinedTable:
            return None, []
    if row is None:
        return None, []
    files = row[1] if isinstance(row[1], list) else json.loads(row[1])
    return row[0], files


def test_a_killed_copy_resumes_where_it_stopped(pg_url: str, tmp_path: Path) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE wide (id bigint PRIMARY KEY, pad text, n int)")
        conn.execute("INSERT INTO wide SELECT g, repeat(md5(g::text), 6), g FROM generate_series(1, 600000) g")
    config = write_config(tmp_path, pg_url, ["public.wide"])
    run = Run(config)
    deadline = time.monotonic() + 120
    while True:  # kill as soon as one chunk is recorded
        last_key, files = _progress(pg_url)
        if last_key is not None:
            break
        assert time.monotonic() < deadline and run.proc.poll() is None, run.stderr()[-2000:]
        time.sleep(0.02)
    run.kill()
    last_key, kept = _progress(pg_url)
    assert kept and int(last_key[0]) < 600000
    with psycopg.connect(pg_url, autocommit=True) as conn:  # changes while it was down
        conn.execute("UPDATE wide SET n = -n WHERE id % 1000 = 0")
        conn.execute("DELETE FROM wide WHERE id BETWEEN 10 AND 20")
    run = Run(config)
    try:
        run.wait_caught_up(pg_url, timeout_s=180)
        assert_same(pg_url, tmp_path, "public.wide", "wide", "id")
    finally:
        assert run.stop() == 0
    table = catalog(tmp_path).load_table(("pg2iceberg", "wide"))
    committed = {task.file.file_path for task in table.scan().plan_files()}
    first_copy = table.snapshot_by_id(next(s.snapshot_id for s in table.snapshots()
                                           if s.summary.additional_properties.get("pg2iceberg.snapshot")))
    added_by_copy = {f.file_path for m in first_copy.manifests(table.io)
                     for f in (e.data_file for e in m.fetch_manifest_entry(table.io))}
    assert set(kept) <= added_by_copy  # the files written before the kill were reused
    assert committed  # and the table is live
