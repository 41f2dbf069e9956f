"""How far an Iceberg table is complete, and whether the source holds changes it lacks.

- The Iceberg position is the ``pg2iceberg.lsn`` of the newest snapshot in the current
  snapshot's ancestry that carries one: a commit by another writer (which carries none)
  does not erase what pg2iceberg committed before it.
- A table is complete up to ``max(position, checkpoint.flushed_lsn)`` when the coordinator
  log holds nothing for it after its position (an idle table is complete up to whatever the
  WAL writer has staged), else up to its position. The checkpoint is read before the log, so
  every entry at or below the flushed position is visible to the log query.
- With no pipeline running the WAL moves on anyway (other databases, checkpoints), so
  "behind" is decided by peeking the slot (without consuming it) for changes of the table in
  transactions that commit after the complete position.
"""

from __future__ import annotations

import struct

import psycopg
from pyiceberg.table import Table
from pyiceberg.table.snapshots import ancestors_of

from pg2iceberg.iceberg.tables import snapshot_position
from pg2iceberg.sqlident import quote_ident


def iceberg_position(table: Table) -> int | None:
    """The newest pg2iceberg position in the current snapshot's ancestry, or None."""
    current = table.current_snapshot()
    if current is None:
        return None
    for snap in ancestors_of(current, table.metadata):
        position = snapshot_position(snap)
        if position is not None:
            return position
    return None


def complete_lsn(state: psycopg.Connection, schema: str, slot: str, table_name: str,
                 position: int | None) -> int | None:
    """The source position up to which the table's Iceberg data is complete, or None."""
    if position is None:
        return None
    s = quote_ident(schema)
    try:
        row = state.execute(f"SELECT flushed_lsn FROM {s}.checkpoint WHERE slot_name = %s", (slot,)).fetchone()
        pending = state.execute(f"SELECT count(*) FROM {s}.log WHERE table_name = %s AND last_lsn > %s",
                                (table_name, position)).fetchone()
    except psycopg.errors.UndefinedTable:  # no coordinator: only the Iceberg position is known
        return position
    if pending and pending[0]:
        return position
    return max(position, int(row[0])) if row else position


def slot_active(src: psycopg.Connection, slot: str) -> bool | None:
    """Whether a pipeline streams from the slot now; None when the slot does not exist."""
    row = src.execute("SELECT active FROM pg_replication_slots WHERE slot_name = %s", (slot,)).fetchone()
    return None if row is None else bool(row[0])


def tables_with_changes_after(src: psycopg.Connection, slot: str, publication: str, oids: set[int],
                              after_lsn: int) -> set[int]:
    """Which of ``oids`` have changes in transactions committing after ``after_lsn``, by peeking
    the (inactive) slot; nothing is consumed."""
    found: set[int] = set()
    commit_lsn = 0
    with src.transaction(), src.cursor(name="verify_peek") as cur:
        cur.execute("SELECT data FROM pg_logical_slot_peek_binary_changes(%s, NULL, NULL, 'proto_version', '1', "
                    "'publication_names', %s)", (slot, quote_ident(publication)))
        for (data,) in cur:
            data = bytes(data)
            kind = data[:1]
            if kind == b"B":
                commit_lsn = struct.unpack_from("!Q", data, 1)[0]
            elif commit_lsn <= after_lsn:
                continue
            elif kind in (b"I", b"U", b"D"):
                found.add(struct.unpack_from("!I", data, 1)[0])
            elif kind == b"T":
                count = struct.unpack_from("!I", data, 1)[0]
                found.update(struct.unpack_from(f"!{count}I", data, 6))
            if found >= oids:
                break
    return found & oids
