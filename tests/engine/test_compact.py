"""--compact: small files merged per partition, position carried, nothing lost under a live
materializer, tables below the thresholds skipped and reported."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psycopg
import pyarrow.parquet as pq
from pyiceberg.transforms import BucketTransform
from pyiceberg.types import LongType

from harness import Run, assert_same, catalog
from pg2iceberg.iceberg.compaction import COMPACTED_PROPERTY, live_files
from pg2iceberg.iceberg.maintenance import MaintenanceSettings, maintain_table, normalize
from pg2iceberg.iceberg.tables import LSN_PROPERTY, SYSTEM_ID_PROPERTY, read_position
from pg2iceberg.stream.leases import MATERIALIZE, Leases

SCHEMA = """
CREATE TABLE ev (id bigint PRIMARY KEY, region text NOT NULL, amount numeric(10,2), note text,
                 at timestamptz, tags text[]);
CREATE TABLE small (id int PRIMARY KEY, v text);
"""
PARTITION = ["region", "bucket[2](id)"]


def _config(folder: Path, url: str, tables: str = "ev", threshold: int = 6) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["  - name: public.ev", "    iceberg:", f"      partition: {PARTITION!r}".replace("'", '"')]
    if tables == "both":
        lines.append("  - name: public.small")
    path = folder / "config.yaml"
    path.write_text(
        f"source:\n  postgres:\n    url: {url}\n"
        f"  logical:\n    slot_name: slot_{url.rsplit('/', 1)[1].lower()}\n"
        "sink:\n  flush_interval: 200ms\n  materializer_interval: 300ms\n"
        f"  target_file_size: 1MiB\n  data_file_threshold: {threshold}\n  delete_file_threshold: 5\n"
        "  maintenance_interval: 0s\n"
        "tables:\n" + "\n".join(lines) + "\n")
    return path


def _insert_round(conn: psycopg.Connection, round_no: int) -> None:
    """One transaction touching every partition (two regions x two buckets)."""
    first = round_no * 100
    conn.execute(
        "INSERT INTO ev SELECT g, CASE WHEN g %% 2 = 0 THEN 'eu' ELSE 'us' END, g * 1.5, "
        "CASE WHEN g %% 5 = 0 THEN NULL ELSE 'note ' || g END, timestamptz '2024-05-01 10:00+02' + g * interval '1 min', "
        "ARRAY['a' || (g %% 3)] FROM generate_series(%s::bigint, %s::bigint) g", (first, first + 39))
    if round_no % 3 == 2:
        conn.execute("UPDATE ev SET note = 'updated', amount = NULL WHERE id BETWEEN %s AND %s AND id %% 7 = 0",
                     (first, first + 39))
        conn.execute("DELETE FROM ev WHERE id BETWEEN %s AND %s AND id %% 11 = 0", (first - 100, first - 61))


def _ev(folder: Path):  # noqa: ANN202 - pyiceberg Table
    return catalog(folder).load_table(("pg2iceberg", "ev"))


def _check_partitioned(folder: Path) -> int:
    """Every data file holds only rows of its own partition; returns the file count."""
    table = _ev(folder)
    spec = table.spec()
    bucket = BucketTransform(2).transform(LongType())
    files, _ = live_files(table)
    for f in files:
        assert f.spec_id == spec.spec_id
        region, id_bucket = f.partition[0], f.partition[1]
        with table.io.new_input(f.file_path).open() as stream:
            rows = pq.read_table(stream, columns=["id", "region"]).to_pylist()
        assert rows and {r["region"] for r in rows} == {region}
        assert {bucket(r["id"]) for r in rows} == {id_bucket}
    return len(files)


def test_compaction_keeps_partitions_rows_and_position(pg_url: str, tmp_path: Path) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(SCHEMA)
    config = _config(tmp_path, pg_url, tables="both")
    run = Run(config)
    try:
        for round_no in range(1, 9):
            with psycopg.connect(pg_url, autocommit=True) as conn:
                _insert_round(conn, round_no)
            run.wait_caught_up(pg_url)
    finally:
        assert run.stop() == 0, run.stderr()[-3000:]
    assert_same(pg_url, tmp_path, "public.ev", "ev", "id")
    before = _ev(tmp_path)
    files_before, _ = live_files(before)
    partitions = {f.partition for f in files_before}
    summary_before = before.current_snapshot().summary.additional_properties
    assert len(files_before) > 2 * len(partitions)  # many small commits left many small files

    compact = Run(config, "--compact")
    assert compact.proc.wait(120) == 0, compact.stderr()[-3000:]
    done = compact.events("table_compacted")
    assert [e["table"] for e in done] == ["public.ev"]
    assert done[0]["files_rewritten"] == len(files_before)
    assert done[0]["files_added"] == len(partitions)
    assert done[0]["lsn"] == summary_before[LSN_PROPERTY]
    skipped = compact.events("compaction_skipped")
    assert [e["table"] for e in skipped] == ["public.small"] and "below thresholds" in skipped[0]["reason"]
    finished = compact.events("command_finished")
    assert [e["ok"] for e in finished] == [True]

    after = _ev(tmp_path)
    assert after.spec() == before.spec() and not after.spec().is_unpartitioned()
    assert _check_partitioned(tmp_path) == len(partitions)
    summary = after.current_snapshot().summary.additional_properties
    assert read_position(after) == read_position(before)
    assert summary[SYSTEM_ID_PROPERTY] == summary_before[SYSTEM_ID_PROPERTY]
    assert summary[COMPACTED_PROPERTY] == str(len(files_before))
    assert_same(pg_url, tmp_path, "public.ev", "ev", "id")

    again = Run(config, "--compact", "--table", "public.ev")  # now below the threshold
    assert again.proc.wait(120) == 0, again.stderr()[-3000:]
    assert not again.events("table_compacted")
    assert [e["table"] for e in again.events("compaction_skipped")] == ["public.ev"]

    reclaimed = maintain_table(_ev(tmp_path), MaintenanceSettings(retention_s=0, grace_s=0), now=time.time() + 1)
    data_dir = Path(normalize(after.metadata.location)) / "data"
    on_disk = {str(p) for p in data_dir.rglob("*") if p.is_file()}
    assert on_disk == {normalize(f.file_path) for f in live_files(_ev(tmp_path))[0]}  # rewritten files gone
    assert reclaimed.files_removed >= len(files_before)
    assert_same(pg_url, tmp_path, "public.ev", "ev", "id")

    streaming = Run(config)  # the pipeline resumes on the compacted table at the same position
    try:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            _insert_round(conn, 20)
            conn.execute("UPDATE ev SET region = 'us' WHERE id % 4 = 0")  # rows change partition
        streaming.wait_caught_up(pg_url)
        assert_same(pg_url, tmp_path, "public.ev", "ev", "id")
        _check_partitioned(tmp_path)
    finally:
        assert streaming.stop() == 0, streaming.stderr()[-3000:]


def test_table_missing_in_iceberg_is_skipped(pg_url: str, tmp_path: Path) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(SCHEMA)
    compact = Run(_config(tmp_path, pg_url), "--compact")
    assert compact.proc.wait(120) == 0, compact.stderr()[-3000:]
    skipped = compact.events("compaction_skipped")
    assert [(e["table"], e["reason"]) for e in skipped] == [("public.ev", "no Iceberg table yet")]


def test_concurrent_materializer_loses_nothing(pg_url: str, tmp_path: Path) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(SCHEMA)
    config = _config(tmp_path, pg_url)
    run = Run(config)
    stop = threading.Event()
    rounds: list[int] = []

    def write() -> None:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            round_no = 1
            while not stop.is_set():
                _insert_round(conn, round_no)
                rounds.append(round_no)
                round_no += 1
                time.sleep(0.05)

    writer = threading.Thread(target=write)
    try:
        run.wait_caught_up(pg_url)
        writer.start()
        while len(live_files(_ev(tmp_path))[0]) < 12:
            assert run.proc.poll() is None, run.stderr()[-3000:]
            time.sleep(0.2)
        compact = Run(config, "--compact")  # while the writer and the materializer keep going
        assert compact.proc.wait(180) == 0, compact.stderr()[-3000:]
        rounds_during = len(rounds)
        time.sleep(1.0)
        stop.set()
        writer.join()
        assert len(rounds) > rounds_during  # the source kept changing after the compaction
        run.wait_caught_up(pg_url, 120)
        assert [e["table"] for e in compact.events("table_compacted")] == ["public.ev"]
        assert_same(pg_url, tmp_path, "public.ev", "ev", "id")
        _check_partitioned(tmp_path)
        history = [s.summary.additional_properties for s in _ev(tmp_path).snapshots()]
        compacted_at = next(i for i, p in enumerate(history) if COMPACTED_PROPERTY in p)
        assert compacted_at < len(history) - 1  # the materializer committed after the compaction
    finally:
        stop.set()
        if writer.is_alive():
            writer.join()
        assert run.stop() == 0, run.stderr()[-3000:]


def test_leases_exclude_and_queue(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as a_conn, psycopg.connect(pg_url, autocommit=True) as b_conn:
        a, b = Leases(a_conn, "_pg2iceberg"), Leases(b_conn, "_pg2iceberg")
        assert a.acquire("public.t", "materializer:one", 60, MATERIALIZE)
        assert a.acquire("public.t", "materializer:one", 60, MATERIALIZE)  # renewal by the holder
        assert not b.acquire("public.t", "compact@x", 60, queue=True)
        assert b.holder("public.t") == "materializer:one"
        assert not a.acquire("public.t", "materializer:one", 60, MATERIALIZE)  # someone queued: hand over
        a.release("public.t", "materializer:one")
        assert not a.acquire("public.t", "materializer:one", 60, MATERIALIZE)  # the queued holder goes first
        assert b.acquire("public.t", "compact@x", 60)
        assert a.holder("public.t") == "compact@x"
        assert not a.acquire("public.t", "materializer:two", 60, MATERIALIZE)  # compaction excludes all
        b.release("public.t", "compact@x")
        assert a.acquire("public.t", "materializer:one", 60, MATERIALIZE)
        assert b.acquire("public.t", "materializer:two", 60, MATERIALIZE)  # a (dead) peer never blocks
        assert a.holder("public.t") == "materializer:two"
        assert not b.acquire("public.t", "compact@x", 60)
        assert a.acquire("public.t", "materializer:one", 0.0, MATERIALIZE)
        assert b.acquire("public.t", "compact@x", 60)  # an expired lease is free to take
        with a.held("public.t", "compact@y", 60, wait_s=0.3, poll_s=0.1) as got:
            assert not got
        assert b.holder("public.t") == "compact@x"
