"""The materializer: apply the stream to Iceberg, table by table, one commit per table batch.

Restart contract: the position in each table's current Iceberg snapshot is the truth.
Stream entries at or before it are never read again; entries after it are applied in
``(last_lsn, seq)`` order, and all parts of one transaction (same ``last_lsn``) always go
into the same commit. Tables are processed in a fixed (sorted) order.

Schema changes: each stream file is applied under the relation it was written with, and a
batch that brings a new relation commits the Iceberg schema change (and any backfill of
existing rows) in the same commit as its data; see :mod:`pg2iceberg.materializer.evolve`.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Callable, ContextManager

import pyarrow as pa

from pg2iceberg.iceberg.tables import IcebergTarget
from pg2iceberg.iceberg.typemap import ColumnType
from pg2iceberg.materializer.evolve import PreparedBatch, SchemaEvolution, StagedFile, cut_at_schema_change
from pg2iceberg.errors import TerminalError
from pg2iceberg.materializer.fold import fold
from pg2iceberg.materializer.keyless import apply_keyless
from pg2iceberg.materializer.backfill import Backfill
from pg2iceberg.materializer.merge import MergeResult, PendingOverwrite
from pg2iceberg.stream.coordinator import Coordinator, LogEntry
from pg2iceberg.stream.files import META_COLUMNS, OP_COLUMN, UNCHANGED_COLUMN, StagedRelation, StreamStore


@dataclass(frozen=True, slots=True)
class BatchCommitted:
    """A table batch landed in Iceberg."""

    table: str
    lsn: int
    entries: int
    changes: int
    result: MergeResult
    duration_s: float
    schema_change: dict[str, object] | None = None  # what the batch changed in the schema
    chunks: int = 1  # how many pieces the batch was read and folded in (one commit regardless)

    def event_fields(self) -> dict[str, object]:
        """The fields of the ``batch_committed`` event."""
        r = self.result
        return {"table": self.table, "lsn": self.lsn, "changes": self.changes, "upserted": r.rows_upserted,
                "deleted": r.rows_deleted, "files_rewritten": r.files_rewritten, "files_added": r.files_added,
                "chunks": self.chunks, "duration_s": round(self.duration_s, 3)}


def _take_batch(entries: list[LogEntry], max_rows: int) -> list[LogEntry]:
    """Entries from the front, whole transactions only, up to about ``max_rows`` rows."""
    out: list[LogEntry] = []
    rows = 0
    for entry in entries:
        if out and rows + entry.rows > max_rows and entry.last_lsn != out[-1].last_lsn:
            break
        out.append(entry)
        rows += entry.rows
    return out


class Materializer:
    """Applies staged changes of the tables it is given."""

    def __init__(self, *, coordinator: Coordinator, store: StreamStore, system_id: str,
                 group_id: str, max_batch_rows: int = 500_000, chunk_rows: int = 200_000,
                 on_commit: Callable[[BatchCommitted], None] | None = None,
                 table_guard: Callable[[str], ContextManager[Callable[[], bool]]] | None = None,
                 source_dsn: str | None = None):
        self.coordinator = coordinator
        self.table_guard = table_guard  # yields keep(): False once another holder wants the table
        self.store = store
        self.system_id = system_id
        self.group_id = group_id
        self.max_batch_rows = max_batch_rows
        self.chunk_rows = chunk_rows
        self._seen: dict[str, int] = {}  # table -> Iceberg position last read or committed
        self.on_commit = on_commit
        self.evolution = SchemaEvolution(source_dsn)  # resolves staged relations in the source

    def cycle(self, targets: dict[str, IcebergTarget]) -> list[BatchCommitted]:
        """Apply everything staged for ``targets`` (fixed order); returns what was committed.

        One coordinator query first finds the tables with anything staged after the position
        last seen in their Iceberg table; only those are refreshed and applied, so an idle
        table costs nothing per cycle. A remembered position is a lower bound of the real
        one (positions only move forward), so no table with work is ever skipped.
        """
        done = []
        busy = self.coordinator.tables_with_entries_after(
            {name: self._seen.get(name, -1) for name in targets})
        for name in sorted(busy):
            with self.table_guard(name) if self.table_guard else nullcontext(lambda: True) as keep:
                while keep():
                    committed = self.apply_one(name, targets[name])
                    if committed is None:
                        break
                    done.append(committed)
        return done

    def apply_one(self, name: str, target: IcebergTarget) -> BatchCommitted | None:
        """Apply the next batch of one table; None when nothing is pending.

        The batch's files are read and applied ``chunk_rows`` at a time into one pending
        commit, so a transaction of any size is applied atomically in bounded memory.
        """
        started = time.monotonic()
        target.table.refresh()
        position = self._seen[name] = target.position() or 0
        entries = self.coordinator.entries_after(name, position)
        if not entries:
            return None
        files = [self._open(entry) for entry in _take_batch(entries, self.max_batch_rows)]
        files = cut_at_schema_change(files)
        batch = [f.entry for f in files]
        prepared = self.evolution.prepare(name, target, [f.relation for f in files])
        plan = prepared.plan
        if plan is not None:
            target.begin_change(plan.apply)
        try:
            lsn = batch[-1].last_lsn
            backfill = None
            if not target.key_columns:  # REPLICA IDENTITY FULL without a key: full-row matching
                if plan is not None and plan.backfill:
                    raise TerminalError(
                        f"{name}: columns added to a table without a key cannot be filled for its existing "
                        "rows (there is no key to match them by): re-copy the table (the console's snapshot "
                        "action, or drop its Iceberg table and restart)")
                result, count, chunks = self._merge(target, files, prepared, None, lsn, apply_keyless)
            else:
                backfill = self.evolution.backfill(name, target, plan) if plan and plan.backfill else None
                keys = target.key_columns
                result, count, chunks = self._merge(target, files, prepared, backfill, lsn,
                                                    lambda o, changes: o.apply(fold(changes, keys)))
        finally:
            target.abandon_change()  # no-op after the commit; forgets the change on failure
        summary = None
        if plan is not None:
            target.adopt(plan.final)
            summary = {**plan.summary(), "backfilled_rows": backfill.rows if backfill else 0}
        self._seen[name] = lsn
        self.coordinator.set_cursor(self.group_id, name, lsn)
        event = BatchCommitted(table=name, lsn=lsn, entries=len(batch), changes=count,
                               result=result, duration_s=time.monotonic() - started,
                               schema_change=summary, chunks=chunks)
        if self.on_commit is not None:
            self.on_commit(event)
        return event

    def _merge(self, target: IcebergTarget, files: list[StagedFile], prepared: PreparedBatch,
               backfill: Backfill | None, lsn: int,
               apply: Callable[[PendingOverwrite, pa.Table], None]) -> tuple[MergeResult, int, int]:
        """Read, fold and apply the files ``chunk_rows`` at a time into one pending commit."""
        overwrite = PendingOverwrite(target, backfill)
        count = chunks = 0
        try:
            start = 0
            while start < len(files):
                end, rows = start, 0
                while end < len(files) and (end == start or rows + files[end].entry.rows <= self.chunk_rows):
                    rows += files[end].entry.rows
                    end += 1
                changes = self._load(target, files[start:end], prepared.column_types[start:end])
                apply(overwrite, changes)
                count += changes.num_rows
                chunks += 1
                start = end
        except BaseException:
            overwrite.abandon()
            raise
        return overwrite.commit(lsn=lsn, system_id=self.system_id), count, chunks

    def _open(self, entry: LogEntry) -> StagedFile:
        return StagedFile(entry, StagedRelation.from_schema(self.store.read_schema(entry.path)))

    def _load(self, target: IcebergTarget, files: list[StagedFile],
              column_types: list[tuple[ColumnType, ...] | None]) -> pa.Table:
        """Read the files and convert their text values, each under its own relation's types,
        to the table's."""
        parts = []
        for staged, types in zip(files, column_types):
            raw = self.store.read(staged.entry.path)
            data_cols = {n: raw.column(n) for n in raw.column_names if n not in META_COLUMNS}
            if types is None:
                target.check_columns(data_cols.keys(), staged.entry.path)
            typed = target.from_text(
                {n: c.combine_chunks() for n, c in data_cols.items()}, raw.num_rows, types)
            typed = typed.append_column(OP_COLUMN, raw.column(OP_COLUMN))
            typed = typed.append_column(UNCHANGED_COLUMN, raw.column(UNCHANGED_COLUMN))
            parts.append(typed)
        return pa.concat_tables(parts)
