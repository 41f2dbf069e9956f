"""Schema changes inside a materializer batch: cut, resolve, plan, backfill.

Contract (the rules themselves are in :mod:`pg2iceberg.iceberg.evolution`):

- Every stream file is converted under the relation it records (its own column names and
  types), then widened to the table's schema after the batch. A file written before an ADD
  COLUMN has no such column; a file written before a DROP keeps its value only as long as
  the column lives: a column a later relation of the batch lacks is ignored in earlier files
  (it was dropped; a same-named column after that is a new one).
- A batch never crosses a schema change except inside its first flush group (files with one
  ``last_lsn`` are one atomic unit, and a DDL may sit in the middle of one): the batch is cut
  before the first later group with another relation. So changes staged before a refused
  change are committed first, and the refusal commits nothing.
- Type oids are resolved against the source's catalog (``pg_type``, by oid: stable while the
  type exists), once per process and (oid, modifier).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import psycopg
import pyarrow as pa

from pg2iceberg.errors import TerminalError
from pg2iceberg.iceberg.evolution import (
    SOURCE_TYPES_PROPERTY, SchemaPlan, decode_source_types, plan_evolution,
)
from pg2iceberg.iceberg.tables import IcebergTarget
from pg2iceberg.iceberg.typemap import ColumnType, column_type
from pg2iceberg.materializer.backfill import Backfill
from pg2iceberg.source.backfill import read_current_values
from pg2iceberg.source.connection import connect
from pg2iceberg.source.schema import ColumnInfo, describe_column_type, describe_table
from pg2iceberg.stream.coordinator import LogEntry
from pg2iceberg.stream.files import StagedRelation


@dataclass(frozen=True, slots=True)
class StagedFile:
    """One stream file of a batch (not read yet), with the relation it was written under."""

    entry: LogEntry
    relation: StagedRelation | None  # None: written before relations were recorded


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    """How to convert each file of a batch, and the schema change the batch brings."""

    column_types: list[tuple[ColumnType, ...] | None]  # per file; None: the target's own
    plan: SchemaPlan | None


def cut_at_schema_change(files: list[StagedFile]) -> list[StagedFile]:
    """The front of ``files`` that crosses no relation change after its first flush group."""
    first_lsn = files[0].entry.last_lsn
    current = None
    for i, f in enumerate(files):
        if f.entry.last_lsn != first_lsn and f.relation is not None and current is not None \
                and f.relation != current:
            start = next(j for j, g in enumerate(files) if g.entry.last_lsn == f.entry.last_lsn)
            return files[:start]
        current = f.relation or current
    return files


class SchemaEvolution:
    """Resolves staged relations against the source and plans/backfills schema changes."""

    def __init__(self, source_dsn: str | None):
        self.source_dsn = source_dsn
        self._conn: psycopg.Connection | None = None
        self._types: dict[tuple[int, int], ColumnInfo | None] = {}

    def close(self) -> None:
        """Close the catalog connection."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _source(self, table: str) -> psycopg.Connection:
        if self.source_dsn is None:
            raise TerminalError(f"{table}: a schema change needs the source connection, which this "
                                "materializer was not given")
        if self._conn is None or self._conn.closed:
            self._conn = connect(self.source_dsn, application_name="pg2iceberg-schema")
        return self._conn

    def _column(self, table: str, name: str, position: int, type_oid: int, type_mod: int) -> ColumnInfo:
        key = (type_oid, type_mod)
        if key not in self._types:
            self._types[key] = describe_column_type(self._source(table), name, position, type_oid, type_mod)
        info = self._types[key]
        if info is None:
            raise TerminalError(f"{table}: column {name!r} has a type (oid {type_oid}) that no longer "
                                "exists in the source, so its staged values cannot be read; drop the "
                                "Iceberg table and start again to copy the table anew")
        return replace(info, name=name, attnum=position)

    def column_types(self, table: str, relation: StagedRelation) -> tuple[ColumnType, ...]:
        """The column types of a staged relation."""
        return tuple(column_type(self._column(table, c.name, i, c.type_oid, c.type_mod))
                     for i, c in enumerate(relation.columns, 1))

    def prepare(self, name: str, target: IcebergTarget,
                relations: list[StagedRelation | None]) -> PreparedBatch:
        """Resolve every file's types and plan the batch's schema change (None if none).

        Raises:
            TerminalError: the change is one Iceberg cannot express (see the rules).
        """
        resolved: dict[StagedRelation, tuple[ColumnType, ...]] = {}
        for relation in relations:
            if relation is not None and relation not in resolved:
                resolved[relation] = self.column_types(name, relation)
        types = [resolved[r] if r is not None else None for r in relations]
        known = [(r, resolved[r]) for r in relations if r is not None]
        if not known:
            return PreparedBatch(types, None)
        stored = target.table.properties.get(SOURCE_TYPES_PROPERTY)
        decoded = decode_source_types(stored)
        recorded = None if decoded is None else {
            n: self._column(name, n, i, o, m) for i, (n, o, m) in enumerate(decoded, 1)}
        plan = plan_evolution(table=name, iceberg_name=".".join(target.table.name()),
                              schema=target.schema(), keys=target.key_columns, recorded=recorded,
                              stored_types=stored, relations=known)
        if not plan.empty:
            types = [_live_columns(t, relations[i + 1:], resolved) if t is not None else None
                     for i, t in enumerate(types)]
        return PreparedBatch(types, None if plan.empty else plan)

    def backfill(self, name: str, target: IcebergTarget, plan: SchemaPlan) -> Backfill:
        """Read the current source values of the plan's backfill columns (after ``begin_change``)."""
        keys = target.key_columns
        info = target.info
        current = describe_table(self._source(name), info.schema, info.name)
        now = {c.name for c in current.columns} if current is not None else set()
        # A column the source no longer has was dropped after this batch: NULL until that shows.
        present = [c for c in plan.backfill if c in now]
        by_name = {c.column.name: c for c in plan.final}
        if present and all(k in now for k in keys):
            assert self.source_dsn is not None
            text = read_current_values(self.source_dsn, info.qualified_sql, keys, present)
        else:
            text = pa.table({c: pa.array([], pa.string()) for c in [*keys, *present]})
        typed = target.from_text({n: text.column(n).combine_chunks() for n in text.column_names},
                                 text.num_rows, tuple(by_name[c] for c in [*keys, *present]))
        return Backfill(keys, plan.backfill, typed.select([*keys, *plan.backfill]))


def _live_columns(types: tuple[ColumnType, ...], later: list[StagedRelation | None],
                  resolved: dict[StagedRelation, tuple[ColumnType, ...]]) -> tuple[ColumnType, ...]:
    """A file's columns minus those a later relation of the batch lacks (dropped since)."""
    gone: set[str] = set()
    for relation in later:
        if relation is not None:
            names = {c.name for c in relation.columns}
            gone |= {c.column.name for c in types if c.column.name not in names}
    return tuple(c for c in types if c.column.name not in gone)
