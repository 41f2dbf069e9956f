"""--maintain: snapshot expiry, orphan files (old removed, young and referenced kept), stream
collection of fully materialized files only; local warehouse through the CLI, S3 (moto) direct."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.fs as pafs
import pytest
from pyiceberg.catalog import load_catalog

from harness import Run, assert_same, catalog, write_config
from pg2iceberg.config import load_config
from pg2iceberg.errors import TerminalError
from pg2iceberg.iceberg.maintenance import MaintenanceSettings, maintain_table, normalize, referenced_files
from pg2iceberg.iceberg.tables import read_position
from pg2iceberg.runtime.pipeline import stream_store
from pg2iceberg.stream.coordinator import Coordinator, SnapshotState
from pg2iceberg.stream.gc import collect_stream

HOUR = 3600.0


def _changes(url: str, round_no: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        first = round_no * 1000
        conn.execute("INSERT INTO t SELECT g, 'v' || g, now() FROM generate_series(%s::int, %s::int) g",
                     (first, first + 199))
        conn.execute("UPDATE t SET v = v || '+' WHERE id %% 3 = %s", (round_no % 3,))
        conn.execute("DELETE FROM t WHERE id %% 17 = %s", (round_no,))


def _replicate(url: str, folder: Path, rounds: int, sink: str = "") -> Path:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, v text, at timestamptz)")
    config = write_config(folder, url, ["public.t"], "  maintenance_interval: 0s\n" + sink)
    run = Run(config)
    try:
        for round_no in range(1, rounds + 1):
            _changes(url, round_no)
            run.wait_caught_up(url)
    finally:
        assert run.stop() == 0, run.stderr()[-3000:]
    return config


def _files(root: Path) -> dict[str, int]:
    return {str(p): p.stat().st_size for p in root.rglob("*") if p.is_file()}


def test_maintain_cli_expires_snapshots_and_removes_only_old_orphans(pg_url: str, tmp_path: Path) -> None:
    config = _replicate(pg_url, tmp_path, 4, "  maintenance_retention: 1s\n  maintenance_grace: 10m\n")
    table = catalog(tmp_path).load_table(("pg2iceberg", "t"))
    current = table.current_snapshot()
    snapshots_before = len(table.snapshots())
    assert snapshots_before >= 3  # the initial copy plus commits of the rounds
    location = Path(normalize(table.metadata.location))
    old = time.time() - HOUR
    for path in _files(location):
        os.utime(path, (old, old))  # every existing file is past the grace period
    planted_old = [location / "data" / "orphan-old.parquet", location / "metadata" / "snap-orphan-old.avro",
                   location / "metadata" / "00000-orphan-old.metadata.json"]
    planted_young = location / "data" / "x=1" / "orphan-young.parquet"
    planted_young.parent.mkdir()
    for path in [*planted_old, planted_young]:
        path.write_bytes(os.urandom(1000))
    for path in planted_old:
        os.utime(path, (old, old))
    with psycopg.connect(pg_url, autocommit=True) as conn:
        log_rows = conn.execute("SELECT path FROM _pg2iceberg.log ORDER BY seq").fetchall()
    assert log_rows
    before = _files(location)
    time.sleep(1.1)  # every snapshot is now older than the 1 s retention

    run = Run(config, "--maintain")
    assert run.proc.wait(120) == 0, run.stderr()[-3000:]
    [done] = run.events("maintenance_done")
    [finished] = run.events("command_finished")
    assert finished["ok"] and finished["command"] == "maintain"

    table = catalog(tmp_path).load_table(("pg2iceberg", "t"))
    assert [s.snapshot_id for s in table.snapshots()] == [current.snapshot_id]
    assert done["snapshots_expired"] == snapshots_before - 1
    after = _files(location)
    gone = set(before) - set(after)
    assert not any(p.exists() for p in planted_old) and planted_young.exists()
    assert done["files_removed"] == len(gone) and done["bytes_removed"] == sum(before[p] for p in gone)
    assert done["metadata_files_removed"] == sum(p.endswith(".metadata.json") for p in gone)
    referenced = referenced_files(table)
    assert referenced <= set(after)  # nothing referenced was removed
    assert set(after) - referenced == {str(planted_young)}  # everything else old was removed
    assert read_position(table) is not None
    assert_same(pg_url, tmp_path, "public.t", "t", "id")

    [collected] = run.events("stream_collected")
    assert collected["files_removed"] == 0  # materialized seconds ago: still within the 10 min grace
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert conn.execute("SELECT path FROM _pg2iceberg.log ORDER BY seq").fetchall() == log_rows


def test_stream_gc_removes_only_settled_materialized_files(pg_url: str, tmp_path: Path) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, v text, at timestamptz)")
    config_path = write_config(tmp_path, pg_url, ["public.t"], "  maintenance_interval: 0s\n")
    run = Run(config_path)
    try:
        for round_no in (1, 2):
            _changes(pg_url, round_no)
            run.wait_caught_up(pg_url)
        settled_at = time.time()
        settled = read_position(catalog(tmp_path).load_table(("pg2iceberg", "t")))
        time.sleep(0.5)  # the next commits are strictly younger than settled_at
        _changes(pg_url, 3)
        run.wait_caught_up(pg_url)
    finally:
        assert run.stop() == 0, run.stderr()[-3000:]
    config = load_config(str(config_path))
    store = stream_store(config)
    coord = Coordinator(config.state.postgres.dsn, config.state.coordinator_schema)
    try:
        coord.set_cursor("dead-worker", "public.t", 0)  # a dead worker's cursor blocks nothing
        entries = coord.entries_after("public.t", 0)
        early = [e for e in entries if e.last_lsn <= settled]
        late = [e for e in entries if e.last_lsn > settled]
        assert early and late
        table = catalog(tmp_path).load_table(("pg2iceberg", "t"))
        grace = 600.0
        result = collect_stream(coord, store, {"public.t": table}, grace_s=grace, now=settled_at + grace)
        assert result.positions == {"public.t": settled}
        assert result.files_removed == len(early) and result.bytes_removed == sum(e.bytes for e in early)
        assert coord.entries_after("public.t", 0) == late
        assert not any(store.fs.get_file_info(e.path).type == pafs.FileType.File for e in early)
        assert all(store.fs.get_file_info(e.path).type == pafs.FileType.File for e in late)

        state = coord.snapshot_state("public.t")
        assert state is not None
        coord.save_snapshot_state(SnapshotState("public.t", "running", settled, None, [], 0))
        capped = collect_stream(coord, store, {"public.t": table}, grace_s=0, now=time.time() + HOUR)
        assert capped.files_removed == 0  # a copy in progress replays from its anchor: keep those
        coord.save_snapshot_state(state)
        final = collect_stream(coord, store, {"public.t": table, "public.other": None}, grace_s=0,
                               now=time.time() + HOUR)
        assert final.positions["public.other"] is None
        assert final.files_removed == len(late) and coord.entries_after("public.t", 0) == []
    finally:
        coord.close()
    assert_same(pg_url, tmp_path, "public.t", "t", "id")
    resumed = Run(config_path)  # the pipeline resumes after the collection
    try:
        _changes(pg_url, 4)
        resumed.wait_caught_up(pg_url)
        assert_same(pg_url, tmp_path, "public.t", "t", "id")
    finally:
        assert resumed.stop() == 0, resumed.stderr()[-3000:]


@pytest.fixture
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server with one bucket, ``warehouse``."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    fs = pafs.S3FileSystem(endpoint_override=endpoint, access_key="k", secret_key="s", region="us-east-1",
                           scheme="http", allow_bucket_creation=True)
    fs.create_dir("warehouse")
    try:
        yield endpoint
    finally:
        server.stop()


def test_maintain_on_s3(s3_endpoint: str, tmp_path: Path) -> None:
    props = {"s3.endpoint": s3_endpoint, "s3.access-key-id": "k", "s3.secret-access-key": "s",
             "s3.region": "us-east-1"}
    cat = load_catalog("default", type="sql", uri=f"sqlite:///{tmp_path}/catalog.db", warehouse="s3://warehouse/w",
                       **props)
    cat.create_namespace("ns")
    schema = pa.schema([pa.field("id", pa.int64(), nullable=False), pa.field("v", pa.string())])
    table = cat.create_table(("ns", "t"), schema=schema)
    for i in range(4):
        table.append(pa.table({"id": [i, i + 10], "v": [f"a{i}", None]}, schema=schema))
    table.overwrite(pa.table({"id": [1, 2, 3], "v": ["x", "y", None]}, schema=schema))
    fs = pafs.S3FileSystem(endpoint_override=s3_endpoint, access_key="k", secret_key="s", region="us-east-1",
                           scheme="http")
    root = normalize(table.metadata.location)
    orphan = f"{root}/data/orphan.parquet"
    with fs.open_output_stream(orphan) as out:
        out.write(b"not referenced")

    def listing() -> set[str]:
        return {i.path for i in fs.get_file_info(pafs.FileSelector(root, recursive=True))
                if i.type == pafs.FileType.File}

    before = listing()
    with pytest.raises(TerminalError, match="stream.location"):
        maintain_table(table, MaintenanceSettings(0, 0), stream_location=f"s3://{root}/data/_stream")
    young = maintain_table(table, MaintenanceSettings(retention_s=HOUR, grace_s=HOUR), now=time.time())
    assert (young.snapshots_expired, young.files_removed) == (0, 0) and young.young_files_kept >= 1
    assert listing() == before

    current = table.current_snapshot().snapshot_id
    snapshots_before = len(table.snapshots())
    later = time.time() + 2 * HOUR
    result = maintain_table(table, MaintenanceSettings(retention_s=HOUR, grace_s=HOUR), now=later)
    table = cat.load_table(("ns", "t"))
    assert [s.snapshot_id for s in table.snapshots()] == [current]
    assert result.snapshots_expired == snapshots_before - 1 and orphan not in listing()
    referenced = referenced_files(table)
    assert listing() == referenced  # old unreferenced files (orphan, expired snapshots' files) are gone
    assert result.files_removed == len(before - referenced)
    assert sorted(table.scan().to_arrow().to_pylist(), key=lambda r: r["id"]) == [
        {"id": 1, "v": "x"}, {"id": 2, "v": "y"}, {"id": 3, "v": None}]


def test_single_mode_runs_maintenance_on_its_interval(pg_url: str, tmp_path: Path) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, v text, at timestamptz)")
    config = write_config(tmp_path, pg_url, ["public.t"],
                          "  maintenance_interval: 1s\n  maintenance_retention: 1s\n  maintenance_grace: 10m\n")
    run = Run(config)
    try:
        for round_no in range(1, 4):
            _changes(pg_url, round_no)
            run.wait_caught_up(pg_url)
        deadline = time.monotonic() + 60
        while not [e for e in run.events("maintenance_done") if e["snapshots_expired"] > 0]:
            assert time.monotonic() < deadline and run.proc.poll() is None, run.stderr()[-3000:]
            time.sleep(0.2)
        runs = [e for e in run.events("command_finished") if e["command"] == "maintain"]
        assert runs and all(e["ok"] for e in runs)
        _changes(pg_url, 4)
        run.wait_caught_up(pg_url)
        assert_same(pg_url, tmp_path, "public.t", "t", "id")
    finally:
        assert run.stop() == 0, run.stderr()[-3000:]


def test_pipeline_then_maintain_cli_on_s3(pg_url: str, tmp_path: Path, s3_endpoint: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, v text, at timestamptz)")
    s3 = (f"  warehouse: s3://warehouse/w\n  s3_endpoint: {s3_endpoint}\n  s3_access_key: k\n"
          "  s3_secret_key: s\n  s3_region: us-east-1\n  maintenance_interval: 0s\n"
          "  maintenance_retention: 0s\n  maintenance_grace: 0s\n")
    config = write_config(tmp_path, pg_url, ["public.t"], s3)
    with config.open("a") as f:
        f.write("stream:\n  location: s3://warehouse/stream\n")
    run = Run(config)
    try:
        for round_no in range(1, 4):
            _changes(pg_url, round_no)
            run.wait_caught_up(pg_url)
    finally:
        assert run.stop() == 0, run.stderr()[-3000:]
    maintain = Run(config, "--maintain")
    assert maintain.proc.wait(120) == 0, maintain.stderr()[-3000:]
    [done] = maintain.events("maintenance_done")
    [collected] = maintain.events("stream_collected")
    assert done["snapshots_expired"] > 0 and done["files_removed"] > 0
    assert collected["files_removed"] > 0
    cat = load_catalog("default", type="sql", uri=f"sqlite:///{tmp_path}/catalog.db", warehouse="s3://warehouse/w",
                       **{"s3.endpoint": s3_endpoint, "s3.access-key-id": "k", "s3.secret-access-key": "s",
                          "s3.region": "us-east-1"})
    table = cat.load_table(("pg2iceberg", "t"))
    assert len(table.snapshots()) == 1
    fs = pafs.S3FileSystem(endpoint_override=s3_endpoint, access_key="k", secret_key="s", region="us-east-1",
                           scheme="http")
    root = normalize(table.metadata.location)
    listed = {i.path for i in fs.get_file_info(pafs.FileSelector(root, recursive=True))
              if i.type == pafs.FileType.File}
    assert listed == referenced_files(table)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM _pg2iceberg.log").fetchone()[0] == 0
        expected = conn.execute("SELECT id, v FROM t ORDER BY id").fetchall()
    stream = [i for i in fs.get_file_info(pafs.FileSelector("warehouse/stream", recursive=True, allow_not_found=True))
              if i.type == pafs.FileType.File]
    assert stream == []
    got = sorted((r["id"], r["v"]) for r in table.scan(selected_fields=("id", "v")).to_arrow().to_pylist())
    assert got == [tuple(r) for r in expected]
