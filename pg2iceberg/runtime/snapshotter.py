"""The initial copy of a table into Iceberg, resumable, replacing old rows in one commit.

Contract:
- Rows are read in key order and written as data files as they come; after each file the
  coordinator records the files so far and the last key copied (``snapshots`` row). Nothing
  is visible in Iceberg until the very end, where ONE commit drops every existing data file
  of the table and adds the copied ones, with the anchor position in its summary.
- Anchored copies read under the slot's exported snapshot, so the anchor is the slot's
  consistent point and the stream brings everything after it. A copy that is resumed after a
  crash continues after the last stored key under a fresh snapshot; the rows it copies may
  then be newer than the anchor, which is harmless: the stream replays every change after the
  anchor, and applying a change again is idempotent (last image per key wins).
- Unanchored copies (snapshot-only mode) record ``pg2iceberg.snapshot=unanchored``; a later
  streaming run copies such a table again.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

import pyarrow as pa
from pyiceberg.io.pyarrow import parquet_file_to_data_file
from pyiceberg.manifest import DataFile

from pg2iceberg.iceberg.tables import SNAPSHOT_PROPERTY, IcebergTarget
from pg2iceberg.source.snapshot import SnapshotReader
from pg2iceberg.stream.coordinator import Coordinator, SnapshotState

CHUNK_BYTES = 32 * 1024 * 1024  # rows read per chunk; two chunks are in memory at most


@dataclass(frozen=True, slots=True)
class CopyProgress:
    """Progress of one table's copy, for status panes."""

    table: str
    rows: int
    total_rows_estimate: int
    rows_per_s: float
    done: bool


def copy_table(*, name: str, target: IcebergTarget, coordinator: Coordinator, dsn: str,
               snapshot_name: str | None, anchor_lsn: int, system_id: str, anchored: bool,
               chunk_bytes: int = CHUNK_BYTES,
               on_progress: Callable[[CopyProgress], None] | None = None) -> int:
    """Copy one table (resuming a stored partial copy); returns the rows copied in total."""
    state = coordinator.snapshot_state(name)
    # A table without a key has no order to resume in: its interrupted copy starts over.
    resume = (state is not None and state.state == "running" and state.anchor_lsn == anchor_lsn
              and bool(target.key_columns))
    files: list[str] = list(state.files) if resume and state else []
    last_key = state.last_key if resume and state else None
    rows_before = state.rows if resume and state else 0  # copied by the interrupted run
    if not resume:
        coordinator.save_snapshot_state(SnapshotState(name, "running", anchor_lsn, None, [], 0))
    new_files: list[DataFile] = []
    started, copied_now = time.monotonic(), 0
    estimate = _estimate_rows(coordinator, target)

    def report(done: bool) -> None:
        if on_progress:
            elapsed = max(time.monotonic() - started, 1e-6)
            on_progress(CopyProgress(name, rows_before + copied_now, estimate, copied_now / elapsed, done))
    reader = SnapshotReader(dsn, snapshot_name if not resume else None)
    # One chunk is converted and written in a second thread while the next one is read; the
    # progress recorded for resuming always names files that are fully written.
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="copy-write")
    in_flight: tuple[Future, list[str]] | None = None

    def convert_and_write(batches: list[pa.RecordBatch]) -> tuple[list[DataFile], int]:
        data = pa.concat_tables([target.from_snapshot(b) for b in batches])
        return target.write_data_files(data), data.num_rows

    def record(written: list[DataFile], count: int) -> None:
        nonlocal copied_now
        new_files.extend(written)
        files.extend(f.file_path for f in written)
        copied_now += count

    def settle() -> None:
        """Wait for the chunk in flight and record it as copied."""
        nonlocal in_flight
        if in_flight is None:
            return
        future, key = in_flight
        in_flight = None
        record(*future.result())
        coordinator.save_snapshot_state(SnapshotState(
            name, "running", anchor_lsn, key, files, rows_before + copied_now))
        report(done=False)

    try:
        pending: list[pa.RecordBatch] = []
        pending_bytes = 0
        for batch, key in reader.read(target.info, target.column_types, last_key):
            pending.append(batch)
            pending_bytes += batch.nbytes
            last_key = key
            if pending_bytes >= chunk_bytes:
                settle()
                in_flight = (pool.submit(convert_and_write, pending), last_key)
                pending, pending_bytes = [], 0
        settle()
        if pending:
            record(*convert_and_write(pending))
    finally:
        pool.shutdown(wait=True)  # nothing may still be writing once this returns or raises
        reader.close()
    known = {f.file_path for f in new_files}
    resumed = [parquet_file_to_data_file(target.table.io, target.table.metadata, p)
               for p in files if p not in known]
    target.table.refresh()
    target.commit_files(delete=target.data_files(), add=resumed + new_files, lsn=anchor_lsn,
                        system_id=system_id,
                        extra={SNAPSHOT_PROPERTY: "anchored" if anchored else "unanchored"})
    rows = rows_before + copied_now
    coordinator.save_snapshot_state(
        SnapshotState(name, "complete" if anchored else "unanchored", anchor_lsn, None, [], rows))
    report(done=True)
    return rows


def _estimate_rows(coordinator: Coordinator, target: IcebergTarget) -> int:
    row = coordinator.conn.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s",
                                   (target.info.oid,)).fetchone()
    return max(int(row[0]), 0) if row else 0
