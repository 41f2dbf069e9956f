"""Builds the per-table and WAL parts of the status snapshot from the engine's sources."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import replace
from typing import TYPE_CHECKING, Callable

from pg2iceberg.config import Config
from pg2iceberg.iceberg.tables import IcebergTarget
from pg2iceberg.materializer.assignment import heartbeat_ttl_s
from pg2iceberg.runtime.status import TableStatus
from pg2iceberg.runtime.worker_status import lagging_after_s, worker_statuses
from pg2iceberg.source.slot_health import SlotHealth
from pg2iceberg.stream.coordinator import Coordinator
from pg2iceberg.stream.writer import WriterStats

HEARTBEAT_TTL_S = 30.0  # a worker silent for longer is dead; its tables move
RATE_SAMPLES = 30  # changes/s samples kept for the sparkline (one per ~2 s)

if TYPE_CHECKING:
    from pg2iceberg.runtime.supervisor import Supervisor


def _int(summary: dict[str, str], key: str) -> int | None:
    value = summary.get(key)
    return int(value) if value is not None else None


class StatusProbe:
    """Reads Iceberg summaries, the coordinator backlog and writer counters; publishes status.

    Its cost per refresh is one backlog query per table plus one metadata read per table.
    """

    def __init__(self, config: Config, coordinator: Coordinator, targets: dict[str, IcebergTarget],
                 supervisor: "Supervisor", writer: WriterStats | None,
                 slot_reader: Callable[[], SlotHealth] | None = None):
        self.config = config
        self.slot_reader = slot_reader
        self._history: deque[float] = deque(maxlen=RATE_SAMPLES)
        self.coordinator = coordinator
        self.targets = targets
        self.sup = supervisor
        self.writer = writer
        self._rate_mark: tuple[float, int] = (time.monotonic(), 0)

    def refresh(self) -> None:
        """Publish a fresh status snapshot."""
        positions: dict[str, int] = {}
        tables: dict[str, TableStatus] = {t.name: t for t in self.sup.status().tables}
        for name, target in self.targets.items():
            table = target.table
            snap = table.current_snapshot()
            summary = dict(snap.summary.additional_properties) if snap and snap.summary else {}
            positions[name] = target.position() or 0
            base = tables.get(name) or TableStatus(name=name, iceberg_name=".".join(table.name()))
            tables[name] = replace(
                base, rows=_int(summary, "total-records"), data_files=_int(summary, "total-data-files"),
                delete_files=_int(summary, "total-delete-files"), snapshots=len(table.metadata.snapshots),
                last_commit_at=snap.timestamp_ms / 1000 if snap else None)
        # What is registered is read BEFORE the backlog: a file registered in between then shows
        # as backlog instead of being claimed as materialized.
        flushed = self.writer.flushed_lsn if self.writer else self._registered_lsn()
        backlog = self.coordinator.backlog(positions)
        for name, (files, rows, nbytes, age) in backlog.items():
            position = positions[name]
            # An idle table is complete up to everything the writer has staged.
            materialized = max(position, flushed) if files == 0 and flushed is not None else position
            tables[name] = replace(tables[name], materialized_lsn=materialized or None, backlog_files=files,
                                   backlog_rows=rows, backlog_bytes=nbytes, backlog_oldest_age_s=age)
        interval = self.config.sink.materializer_interval_s
        workers = worker_statuses(self.coordinator.consumer_rows(), tables, ttl_s=heartbeat_ttl_s(interval),
                                  lagging_s=lagging_after_s(interval))
        now = time.monotonic()
        changes = self.writer.changes if self.writer else 0
        then, before = self._rate_mark
        rate = (changes - before) / (now - then) if now > then else 0.0
        if now - then >= 2.0:
            self._rate_mark = (now, changes)
            self._history.append(round(rate, 1))
        server, confirmed = (self.writer.server_lsn, self.writer.flushed_lsn) if self.writer else (None, None)
        slot = self._slot_health()
        if slot is not None:
            server = slot.server_lsn
            confirmed = slot.confirmed_lsn if slot.confirmed_lsn is not None else confirmed
        ages = [t.backlog_oldest_age_s for t in tables.values() if t.backlog_oldest_age_s is not None]
        ordered = tuple(tables[t.name] for t in self.sup.status().tables if t.name in tables)
        self.sup.publish(lambda s: replace(
            s, tables=ordered or tuple(tables.values()), server_lsn=server, confirmed_lsn=confirmed,
            lag_bytes=max(server - confirmed, 0) if server is not None and confirmed is not None else None,
            lag_s=round(max(ages), 1) if ages else 0.0,
            retained_bytes=slot.retained_bytes if slot else s.retained_bytes,
            slot_active=slot.active if slot else s.slot_active, wal_status=slot.wal_status if slot else s.wal_status,
            changes_total=changes, changes_per_s=round(rate, 1), changes_history=tuple(self._history),
            workers=workers))

    def _registered_lsn(self) -> int | None:
        """``checkpoint.flushed_lsn`` (no WAL writer in this process: materializer-only)."""
        checkpoint = self.coordinator.checkpoint(self.config.source.slot_name)
        return checkpoint[1] if checkpoint else None

    def _slot_health(self) -> SlotHealth | None:
        """The slot's reading, or None when it cannot be read now (shown as unknown)."""
        if self.slot_reader is None:
            return None
        try:
            return self.slot_reader()
        except Exception:  # noqa: BLE001 - a status reading must never stop the pipeline
            return None
