"""Verify one table: PostgreSQL at one point against its Iceberg table, chunk by key range.

Consistency: the PostgreSQL side is read in one REPEATABLE READ transaction whose first
statement reads ``pg_current_wal_insert_lsn()`` (the target). The Iceberg side is read from
one pinned snapshot: the oldest one complete up to the target, once there is one (waiting,
bounded, while a pipeline streams from the slot). Changes committed between the target and
that snapshot's position can still show as differences, so differing keys are read again
from both sides after a fresh target (a few times), and keys that still differ once more with
their source rows locked ``FOR SHARE`` (a hot key holds still for about one materializer
interval); only keys that differ then count.

Memory: rows are read in key order (``COLLATE "C"`` for string keys, the byte order Iceberg
filters use) and compared in chunks of about ``chunk_rows``; each chunk's Iceberg rows come
from a scan filtered to that key range. At most ``MAX_RECHECK`` differing keys are kept.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import pyarrow as pa
from pyiceberg.table.snapshots import ancestors_of
from pyiceberg.types import StringType

from pg2iceberg.iceberg.tables import IcebergTarget, snapshot_position
from pg2iceberg.source.connection import connect
from pg2iceberg.source.snapshot import SnapshotReader
from pg2iceberg.sqlident import quote_ident
from pg2iceberg.verify.compare import ChunkDiff, Key, compare_tables, keys_filter, range_filter

CHUNK_ROWS = 100_000
MAX_RECHECK = 10_000
RECHECK_BATCH = 500

Position = Callable[[int], tuple[int | None, bool]]  # target → (complete lsn, reached)


@dataclass
class Pass:
    """One full comparison: the target it was read at and what differed."""

    target_lsn: int
    complete_lsn: int | None
    caught_up: bool
    source_rows: int = 0
    iceberg_rows: int = 0
    chunks: int = 0
    diff: ChunkDiff = field(default_factory=ChunkDiff)
    counts: dict[str, int] = field(default_factory=lambda: {"missing": 0, "extra": 0, "different": 0})


def _order_sql(target: IcebergTarget) -> str:
    parts = []
    for name in target.key_columns:
        ctype = next(t for t in target.column_types if t.column.name == name)
        ident = f"{target.info.qualified_sql}.{quote_ident(name)}"  # the column, not the select list's
        if isinstance(ctype.iceberg_type, StringType):
            expr = ident if ctype.native_snapshot else f"format('%s', {ident})"
            parts.append(f'{expr} COLLATE "C"')
        else:
            parts.append(ident)
    return ", ".join(parts)


def _select_sql(target: IcebergTarget, where: str = "") -> str:
    checks = [check for t in target.column_types if (check := t.check_sql()) is not None]
    columns = ", ".join([t.select_sql() for t in target.column_types] + checks)
    return f"SELECT {columns} FROM {target.info.qualified_sql}{where} ORDER BY {_order_sql(target)}"


def _literal(value: object, type_sql: str) -> str:
    if isinstance(value, bytes):
        text = "\\x" + value.hex()
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif hasattr(value, "isoformat"):
        text = value.isoformat()  # type: ignore[union-attr]
    else:
        text = str(value)
    return "'" + text.replace("'", "''") + f"'::{type_sql}"


def _keys_where(target: IcebergTarget, keys: Sequence[Key]) -> str:
    types = [target.info.column(k).type_display for k in target.key_columns]
    cols = ", ".join(quote_ident(k) for k in target.key_columns)
    tuples = ", ".join("(" + ", ".join(_literal(v, t) for v, t in zip(key, types)) + ")" for key in keys)
    return f" WHERE ({cols}) IN ({tuples})"


def _source_batches(reader: SnapshotReader, sql: str, target: IcebergTarget) -> Iterator[pa.Table]:
    cur = reader.conn.cursor()
    try:
        cur.execute(sql)
        for batch in cur.fetch_record_batch():
            if batch.num_rows:
                yield target.from_snapshot(batch)
    finally:
        cur.close()


def _source_chunks(reader: SnapshotReader, target: IcebergTarget, chunk_rows: int) -> Iterator[tuple[pa.Table, Key | None]]:
    """Source rows in chunks of about ``chunk_rows``, each with its last key (None: the last chunk)."""
    held: list[pa.Table] = []
    rows = 0
    for data in _source_batches(reader, _select_sql(target), target):
        held.append(data)
        rows += data.num_rows
        while rows >= chunk_rows:
            pending = pa.concat_tables(held)
            chunk, rest = pending.slice(0, chunk_rows), pending.slice(chunk_rows)
            last = chunk.slice(chunk_rows - 1).select(list(target.key_columns)).to_pylist()[0]
            yield chunk, tuple(last[k] for k in target.key_columns)
            held, rows = [rest], rest.num_rows
    rest = pa.concat_tables(held) if held else target.conform(target.arrow_schema().empty_table())
    yield rest, None


def _begin(dsn: str, position: Position) -> tuple[SnapshotReader, int, int | None, bool]:
    """A reader on a fresh transaction, its target LSN, and the table's complete position."""
    from pg2iceberg.lsn import parse_lsn

    reader = SnapshotReader(dsn, None)
    cur = reader.conn.cursor()
    # The insert position: every transaction this snapshot sees has its commit record before
    # it (the write position, pg_current_wal_lsn, may still lag behind an asynchronous commit).
    cur.execute("SELECT pg_current_wal_insert_lsn()::text")
    target = parse_lsn(cur.fetchone()[0])  # type: ignore[index]
    cur.close()
    complete, reached = position(target)
    return reader, target, complete, reached


def _iceberg(target: IcebergTarget, snapshot_id: int | None, row_filter: object) -> pa.Table:
    if snapshot_id is None:
        return target.conform(target.arrow_schema().empty_table())
    data = target.table.scan(row_filter=row_filter, snapshot_id=snapshot_id).to_arrow()  # type: ignore[arg-type]
    return target.conform(data)


def _snapshot_id(target: IcebergTarget, lsn: int) -> int | None:
    """The oldest snapshot (in the current one's history) complete up to ``lsn``, else the
    current one: the closer its position is to ``lsn``, the fewer changes race the compare.
    A snapshot without a position (another writer's) ends the walk: it is what readers see
    now, and must be what is compared."""
    target.table.refresh()
    current = target.table.current_snapshot()
    if current is None:
        return None
    chosen = current
    for snap in ancestors_of(current, target.table.metadata):
        position = snapshot_position(snap)
        if position is None or position < lsn:
            break
        chosen = snap
    return chosen.snapshot_id


def full_pass(dsn: str, target: IcebergTarget, position: Position, chunk_rows: int | None = None) -> Pass:
    """Compare the whole table once, in chunks of about ``chunk_rows`` (default :data:`CHUNK_ROWS`)."""
    reader, lsn, complete, reached = _begin(dsn, position)
    result = Pass(target_lsn=lsn, complete_lsn=complete, caught_up=reached)
    keys = list(target.key_columns)
    try:
        sid = _snapshot_id(target, lsn)
        lower: Key | None = None
        for chunk, upper in _source_chunks(reader, target, chunk_rows or CHUNK_ROWS):
            result.chunks += 1
            theirs = _iceberg(target, sid, range_filter(keys, lower, upper))
            result.source_rows += chunk.num_rows
            result.iceberg_rows += theirs.num_rows
            diff = compare_tables(chunk, theirs, keys)
            for kind in ("missing", "extra", "different"):
                found = getattr(diff, kind)
                result.counts[kind] += len(found)
                room = MAX_RECHECK - len(result.diff.keys())
                getattr(result.diff, kind).extend(found[:max(room, 0)])
            lower = upper
    finally:
        reader.close()
    return result


def recheck(dsn: str, target: IcebergTarget, position: Position, keys: Sequence[Key], *,
            hold_rows: bool = False) -> Pass:
    """Read ``keys`` again from both sides after a fresh target; what still differs.

    With ``hold_rows`` the source rows of ``keys`` are locked (``FOR SHARE``) before the target
    is taken and until the comparison ends, so keys that change all the time hold still: the
    Iceberg snapshot, complete past the target, must then show exactly the locked values.
    """
    if hold_rows:
        with connect(dsn, autocommit=False, application_name="pg2iceberg-verify") as lock:
            for start in range(0, len(keys), RECHECK_BATCH):
                where = _keys_where(target, list(keys[start:start + RECHECK_BATCH]))
                lock.execute(f"SELECT 1 FROM {target.info.qualified_sql}{where} FOR SHARE")
            result = recheck(dsn, target, position, keys)
            lock.rollback()
            return result
    reader, lsn, complete, reached = _begin(dsn, position)
    result = Pass(target_lsn=lsn, complete_lsn=complete, caught_up=reached)
    names = list(target.key_columns)
    try:
        sid = _snapshot_id(target, lsn)
        for start in range(0, len(keys), RECHECK_BATCH):
            batch = list(keys[start:start + RECHECK_BATCH])
            held = list(_source_batches(reader, _select_sql(target, _keys_where(target, batch)), target))
            ours = pa.concat_tables(held) if held else target.conform(target.arrow_schema().empty_table())
            diff = compare_tables(ours, _iceberg(target, sid, keys_filter(names, batch)), names)
            for kind in ("missing", "extra", "different"):
                getattr(result.diff, kind).extend(getattr(diff, kind))
                result.counts[kind] += len(getattr(diff, kind))
    finally:
        reader.close()
    return result


def waiter(read_complete: Callable[[], int | None], streaming: Callable[[], bool], wait_s: float,
           poll_s: float = 0.5) -> Position:
    """A :data:`Position`: wait (up to ``wait_s``, only while a pipeline streams) for the table
    to be complete up to the target."""
    def position(target_lsn: int) -> tuple[int | None, bool]:
        deadline = time.monotonic() + wait_s
        while True:
            complete = read_complete()
            if complete is not None and complete >= target_lsn:
                return complete, True
            if time.monotonic() >= deadline or not streaming():
                return complete, False
            time.sleep(poll_s)
    return position
