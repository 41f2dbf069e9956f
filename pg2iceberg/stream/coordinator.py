"""Coordinator tables in PostgreSQL (``state.coordinator_schema``).

- ``log``: one row per staged stream file: table, file path, the LSN range of the complete
  transactions it holds, rows and bytes. A row exists only once its file is durable, and
  the slot is acked only up to what ``checkpoint.flushed_lsn`` says is registered: both are
  written in one transaction by :meth:`Coordinator.register_flush`.
- ``checkpoint``: per slot, the source system identifier and the flushed LSN.
- ``snapshots``: per table, the initial copy's state, anchor LSN and resume progress.
- ``cursors``: per consumer group and table, the last LSN the group applied (a hint; the
  Iceberg snapshot summary is the truth).
- ``consumers``: materializer workers and their heartbeats.
- ``meta``: facts such as whether pg2iceberg created the publication.
"""

from __future__ import annotations

import json
import socket
import os
from dataclasses import dataclass
from typing import Any, Iterable, Sequence


from pg2iceberg.source.connection import connect
from pg2iceberg.sqlident import quote_ident

_DDL = """
CREATE SCHEMA IF NOT EXISTS {s};
CREATE TABLE IF NOT EXISTS {s}.log (
  seq bigserial PRIMARY KEY, table_name text NOT NULL, path text NOT NULL,
  first_lsn bigint NOT NULL, last_lsn bigint NOT NULL, rows bigint NOT NULL,
  bytes bigint NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX IF NOT EXISTS log_table_lsn ON {s}.log (table_name, last_lsn);
CREATE TABLE IF NOT EXISTS {s}.checkpoint (
  slot_name text PRIMARY KEY, system_id text NOT NULL, flushed_lsn bigint NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS {s}.snapshots (
  table_name text PRIMARY KEY, state text NOT NULL, anchor_lsn bigint,
  last_key jsonb, files jsonb NOT NULL DEFAULT '[]', rows bigint NOT NULL DEFAULT 0,
  updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS {s}.cursors (
  group_id text NOT NULL, table_name text NOT NULL, last_lsn bigint NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (group_id, table_name));
CREATE TABLE IF NOT EXISTS {s}.consumers (
  worker_id text PRIMARY KEY, group_id text NOT NULL, tables jsonb NOT NULL DEFAULT '[]',
  host text, pid int, started_at timestamptz NOT NULL DEFAULT now(),
  heartbeat_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS {s}.meta (key text PRIMARY KEY, value text NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class NewLogEntry:
    """A stream file written and about to be registered."""

    table_name: str
    path: str
    first_lsn: int
    last_lsn: int
    rows: int
    bytes: int


@dataclass(frozen=True, slots=True)
class LogEntry(NewLogEntry):
    """A registered stream file, with its place in the log."""

    seq: int


@dataclass(frozen=True, slots=True)
class SnapshotState:
    """Progress of one table's initial copy."""

    table_name: str
    state: str  # running, complete, unanchored
    anchor_lsn: int | None
    last_key: list[str] | None
    files: list[str]
    rows: int


@dataclass(frozen=True, slots=True)
class ConsumerRow:
    """A registered materializer worker, with its cursor rows summed up."""

    worker_id: str
    group_id: str
    heartbeat_age_s: float
    tables: list[str]
    host: str | None
    pid: int | None
    cursor_lsn: int | None  # the lowest cursor row of this worker over the tables it holds
    last_commit_at: float | None  # epoch seconds of its latest cursor row


class Coordinator:
    """Access to the coordinator tables; one short transaction per call, thread-safe by
    using its own connection per thread of use (callers create one per thread)."""

    def __init__(self, dsn: str, schema: str):
        self.dsn = dsn
        self.schema = schema
        self.s = quote_ident(schema)
        self.conn = connect(dsn, application_name="pg2iceberg-coordinator")

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def _q(self, sql: str) -> str:
        return sql.replace("{s}", self.s)

    def exists(self) -> bool:
        """True when the coordinator schema exists."""
        row = self.conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (self.schema,)).fetchone()
        return row is not None

    def ensure_schema(self) -> None:
        """Create the schema and tables when missing."""
        with self.conn.transaction():
            self.conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.schema,))
            for statement in _DDL.split(";"):
                if statement.strip():
                    self.conn.execute(self._q(statement))

    # -- checkpoint ------------------------------------------------------------------------

    def checkpoint(self, slot_name: str) -> tuple[str, int] | None:
        """(system_id, flushed_lsn) recorded for the slot, or None."""
        row = self.conn.execute(self._q("SELECT system_id, flushed_lsn FROM {s}.checkpoint WHERE slot_name = %s"),
                                (slot_name,)).fetchone()
        return (str(row[0]), int(row[1])) if row else None

    def init_checkpoint(self, slot_name: str, system_id: str, lsn: int) -> None:
        """Record a new slot's starting point (replacing any older record of that slot)."""
        self.conn.execute(self._q(
            "INSERT INTO {s}.checkpoint (slot_name, system_id, flushed_lsn) VALUES (%s, %s, %s) "
            "ON CONFLICT (slot_name) DO UPDATE SET system_id = EXCLUDED.system_id, "
            "flushed_lsn = EXCLUDED.flushed_lsn, updated_at = now()"), (slot_name, system_id, lsn))

    def register_flush(self, slot_name: str, entries: Sequence[NewLogEntry], flushed_lsn: int) -> None:
        """Register durable stream files and advance the flushed LSN, atomically."""
        with self.conn.transaction():
            if entries:
                with self.conn.cursor() as cur:
                    cur.executemany(self._q(
                        "INSERT INTO {s}.log (table_name, path, first_lsn, last_lsn, rows, bytes) "
                        "VALUES (%s, %s, %s, %s, %s, %s)"),
                        [(e.table_name, e.path, e.first_lsn, e.last_lsn, e.rows, e.bytes) for e in entries])
            self.conn.execute(self._q(
                "UPDATE {s}.checkpoint SET flushed_lsn = GREATEST(flushed_lsn, %s), updated_at = now() "
                "WHERE slot_name = %s"), (flushed_lsn, slot_name))

    # -- log --------------------------------------------------------------------------------

    def entries_after(self, table_name: str, lsn: int, limit: int = 10_000) -> list[LogEntry]:
        """Log entries of ``table_name`` holding transactions after ``lsn``, oldest first."""
        rows = self.conn.execute(self._q(
            "SELECT table_name, path, first_lsn, last_lsn, rows, bytes, seq FROM {s}.log "
            "WHERE table_name = %s AND last_lsn > %s ORDER BY last_lsn, seq LIMIT %s"),
            (table_name, lsn, limit)).fetchall()
        return [LogEntry(*r) for r in rows]

    def backlog(self, positions: dict[str, int]) -> dict[str, tuple[int, int, int, float | None]]:
        """Per table: (files, rows, bytes, oldest age s) staged after its position (one query)."""
        names = list(positions)
        rows = self.conn.execute(self._q(
            "SELECT p.name, count(l.path), coalesce(sum(l.rows), 0), coalesce(sum(l.bytes), 0), "
            "extract(epoch FROM now() - min(l.created_at)) "
            "FROM unnest(%s::text[], %s::bigint[]) AS p(name, lsn) "
            "LEFT JOIN {s}.log l ON l.table_name = p.name AND l.last_lsn > p.lsn GROUP BY p.name"),
            (names, [positions[n] for n in names])).fetchall()
        return {r[0]: (int(r[1]), int(r[2]), int(r[3]), None if r[4] is None else float(r[4])) for r in rows}

    def tables_with_entries_after(self, positions: dict[str, int]) -> set[str]:
        """The tables that have a log entry after the given position (one query)."""
        names = list(positions)
        rows = self.conn.execute(self._q(
            "SELECT p.name FROM unnest(%s::text[], %s::bigint[]) AS p(name, lsn) WHERE EXISTS "
            "(SELECT 1 FROM {s}.log l WHERE l.table_name = p.name AND l.last_lsn > p.lsn)"),
            (names, [positions[n] for n in names])).fetchall()
        return {r[0] for r in rows}

    # -- snapshots --------------------------------------------------------------------------

    def snapshot_state(self, table_name: str) -> SnapshotState | None:
        """The initial-copy state of a table, or None when never started."""
        row = self.conn.execute(self._q(
            "SELECT table_name, state, anchor_lsn, last_key, files, rows FROM {s}.snapshots "
            "WHERE table_name = %s"), (table_name,)).fetchone()
        return SnapshotState(row[0], row[1], row[2], row[3], list(row[4] or []), int(row[5])) if row else None

    def save_snapshot_state(self, st: SnapshotState) -> None:
        """Insert or update a table's initial-copy state."""
        self.conn.execute(self._q(
            "INSERT INTO {s}.snapshots (table_name, state, anchor_lsn, last_key, files, rows) "
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (table_name) DO UPDATE SET "
            "state = EXCLUDED.state, anchor_lsn = EXCLUDED.anchor_lsn, last_key = EXCLUDED.last_key, "
            "files = EXCLUDED.files, rows = EXCLUDED.rows, updated_at = now()"),
            (st.table_name, st.state, st.anchor_lsn, _json(st.last_key), json.dumps(st.files), st.rows))

    # -- cursors and consumers ----------------------------------------------------------------

    def set_cursor(self, group_id: str, table_name: str, lsn: int) -> None:
        """Record the last LSN a consumer group applied for a table."""
        self.conn.execute(self._q(
            "INSERT INTO {s}.cursors (group_id, table_name, last_lsn) VALUES (%s, %s, %s) "
            "ON CONFLICT (group_id, table_name) DO UPDATE SET last_lsn = EXCLUDED.last_lsn, "
            "updated_at = now()"), (group_id, table_name, lsn))

    def heartbeat(self, worker_id: str, group_id: str, tables: Iterable[str]) -> None:
        """Record that a worker is alive and which tables it holds."""
        self.conn.execute(self._q(
            "INSERT INTO {s}.consumers (worker_id, group_id, tables, host, pid) VALUES (%s, %s, %s, %s, %s) "
            "ON CONFLICT (worker_id) DO UPDATE SET group_id = EXCLUDED.group_id, tables = EXCLUDED.tables, "
            "host = EXCLUDED.host, pid = EXCLUDED.pid, heartbeat_at = now()"),
            (worker_id, group_id, json.dumps(sorted(tables)), socket.gethostname(), os.getpid()))

    def consumers(self) -> list[tuple[str, float, list[str]]]:
        """(worker_id, heartbeat age s, tables) of every registered worker."""
        rows = self.conn.execute(self._q(
            "SELECT worker_id, extract(epoch FROM now() - heartbeat_at), tables FROM {s}.consumers "
            "ORDER BY worker_id")).fetchall()
        return [(str(r[0]), float(r[1]), list(r[2])) for r in rows]

    def consumer_rows(self) -> list[ConsumerRow]:
        """Every registered worker with its heartbeat age and its cursor rows (keyed by worker id)."""
        rows = self.conn.execute(self._q(
            "SELECT c.worker_id, c.group_id, extract(epoch FROM now() - c.heartbeat_at), c.tables, c.host, "
            "c.pid, (SELECT min(u.last_lsn) FROM {s}.cursors u WHERE u.group_id = c.worker_id "
            "AND c.tables ? u.table_name), (SELECT extract(epoch FROM max(u.updated_at)) FROM {s}.cursors u "
            "WHERE u.group_id = c.worker_id) FROM {s}.consumers c ORDER BY c.worker_id")).fetchall()
        return [ConsumerRow(str(r[0]), str(r[1]), float(r[2]), list(r[3]), r[4], r[5],
                            None if r[6] is None else int(r[6]), None if r[7] is None else float(r[7]))
                for r in rows]

    def remove_consumer(self, worker_id: str) -> None:
        """Unregister a worker that stops cleanly, so the others take its tables at once."""
        self.conn.execute(self._q("DELETE FROM {s}.consumers WHERE worker_id = %s"), (worker_id,))

    # -- meta -----------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        """A stored fact, or None."""
        row = self.conn.execute(self._q("SELECT value FROM {s}.meta WHERE key = %s"), (key,)).fetchone()
        return str(row[0]) if row else None

    def set_meta(self, key: str, value: str) -> None:
        """Store a fact."""
        self.conn.execute(self._q(
            "INSERT INTO {s}.meta (key, value) VALUES (%s, %s) ON CONFLICT (key) DO UPDATE "
            "SET value = EXCLUDED.value"), (key, value))


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value)

