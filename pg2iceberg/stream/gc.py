"""Stream garbage collection: drop staged files every table has durably applied.

Contracts:
- A ``log`` entry (and its file) goes only when its table's Iceberg position has been at or
  past the entry's ``last_lsn`` for at least the grace period: the position used is that of
  the newest snapshot in the current snapshot's ancestry that is older than the grace
  period (and never more than the current position). A worker that read an older position
  just before the collection therefore still finds its files, unless it is slower than the
  grace period. Positions come from Iceberg only; consumer cursors are ignored, so a dead
  worker's cursor never blocks collection.
- A table without an Iceberg table, without a position, or with an initial copy in progress
  (its anchor caps the position: the copy's commit moves the table back to the anchor and
  the stream replays from there) keeps its entries.
- Files are deleted before their rows, so a crash in between leaves rows that point at
  missing files at or before the position: nobody reads those (the materializer reads only
  after the position) and the next collection removes them. No file is ever left behind
  without a row.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Mapping

from pyiceberg.table import Table

from pg2iceberg.iceberg.tables import snapshot_position
from pg2iceberg.lsn import format_lsn
from pg2iceberg.stream.coordinator import Coordinator
from pg2iceberg.stream.files import StreamStore

_BATCH = 1000


@dataclass(frozen=True, slots=True)
class StreamGcResult:
    """What one collection removed, and the position used per table (None: kept all)."""

    files_removed: int
    bytes_removed: int
    entries_kept: int
    positions: dict[str, int | None] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        """The fields for events and command details (positions as PostgreSQL prints LSNs)."""
        return {**asdict(self), "positions": {k: format_lsn(v) for k, v in self.positions.items()}}


def settled_position(table: Table, grace_s: float, now: float) -> int | None:
    """The table's position as of ``grace_s`` ago (see the module docstring), or None."""
    meta = table.metadata
    current = meta.current_snapshot()
    if current is None or current.summary is None:
        return None
    latest = snapshot_position(current)
    cutoff_ms = (now - grace_s) * 1000
    snap = current
    while snap is not None and snap.timestamp_ms > cutoff_ms:
        snap = meta.snapshot_by_id(snap.parent_snapshot_id) if snap.parent_snapshot_id is not None else None
    if snap is None or snap.summary is None or latest is None:
        return None
    settled = snapshot_position(snap)
    return None if settled is None else min(settled, latest)


def collect_stream(coordinator: Coordinator, store: StreamStore, tables: Mapping[str, Table | None], *,
                   grace_s: float, now: float | None = None) -> StreamGcResult:
    """Delete the stream files (then log rows) of ``tables`` that their positions are past."""
    now = time.time() if now is None else now
    conn, s = coordinator.conn, coordinator.s
    copying = dict(conn.execute(
        f"SELECT table_name, anchor_lsn FROM {s}.snapshots WHERE state = 'running'").fetchall())
    positions: dict[str, int | None] = {}
    for name, table in tables.items():
        if table is not None:
            table.refresh()
        position = None if table is None else settled_position(table, grace_s, now)
        if position is not None and name in copying:
            anchor = copying[name]
            position = None if anchor is None else min(position, int(anchor))
        positions[name] = position
    files = removed_bytes = 0
    for name, position in positions.items():
        if position is None:
            continue
        while True:
            rows = conn.execute(
                f"SELECT seq, path, bytes FROM {s}.log WHERE table_name = %s AND last_lsn <= %s "
                "ORDER BY seq LIMIT %s", (name, position, _BATCH)).fetchall()
            if not rows:
                break
            for _seq, path, size in rows:
                store.delete(path)
                removed_bytes += int(size)
            conn.execute(f"DELETE FROM {s}.log WHERE seq = ANY(%s)", ([r[0] for r in rows],))
            files += len(rows)
    row = conn.execute(f"SELECT count(*) FROM {s}.log").fetchone()
    kept = int(row[0]) if row else 0
    return StreamGcResult(files_removed=files, bytes_removed=removed_bytes, entries_kept=kept,
                          positions=positions)
