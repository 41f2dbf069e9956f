"""Compaction and maintenance as commands: the ``Compact`` and ``Maintain`` handlers.

Both open the configured catalog (any pyiceberg catalog type) and the coordinator, work
table by table and report progress as events. A configured table whose Iceberg table does
not exist yet is reported and skipped. Neither needs the source database.

Single mode also runs maintenance on ``sink.maintenance_interval`` through
:class:`MaintenanceSchedule`: it submits the same ``Maintain`` command, so it runs in its own
thread, never twice at once, and reports like the one-shot mode. The time of the last
maintenance lives in the coordinator (``meta.maintenance_last_at``), so restarts do not
postpone it forever.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Callable

from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.table import Table

from pg2iceberg.config import Config, TableConfig
from pg2iceberg.runtime import commands as c
from pg2iceberg.stream.coordinator import Coordinator

if TYPE_CHECKING:
    from pg2iceberg.runtime.supervisor import Supervisor

log = logging.getLogger("pg2iceberg")
LAST_MAINTENANCE_KEY = "maintenance_last_at"


def _tables(config: Config, name: str | None) -> list[TableConfig]:
    return [config.table(name)] if name else list(config.tables)


def _load(catalog: object, config: Config, t: TableConfig) -> Table | None:
    try:
        return catalog.load_table((config.sink.namespace, t.iceberg_name))  # type: ignore[attr-defined]
    except NoSuchTableError:
        return None


def _coordinator(config: Config) -> Coordinator:
    coord = Coordinator(config.state.postgres.dsn, config.state.coordinator_schema)
    coord.ensure_schema()
    return coord


def compact(sup: "Supervisor", command: c.Command) -> c.CommandOutcome:
    """One compaction cycle over the configured tables (or ``command.table``)."""
    from pg2iceberg.iceberg.compaction import CompactionSettings, compact_table
    from pg2iceberg.iceberg.tables import open_catalog
    from pg2iceberg.stream.leases import Leases

    assert isinstance(command, c.Compact)
    config = sup.config
    tables = _tables(config, command.table)
    catalog = open_catalog(config)
    sink = config.sink
    settings = CompactionSettings(target_file_size_bytes=sink.target_file_size_bytes,
                                  data_file_threshold=sink.data_file_threshold,
                                  delete_file_threshold=sink.delete_file_threshold,
                                  lease_wait_s=max(30.0, 4 * sink.materializer_interval_s))
    coord = _coordinator(config)
    details: dict[str, dict] = {}
    compacted = skipped = 0
    try:
        leases = Leases(coord.conn, config.state.coordinator_schema)
        for t in tables:
            if sup.stop_event.is_set():
                break
            table = _load(catalog, config, t)
            if table is None:
                skipped += 1
                details[t.name] = {"skipped": "no Iceberg table yet"}
                sup.events.emit("compaction_skipped", table=t.name, reason="no Iceberg table yet")
                continue
            result = compact_table(t.name, table, settings, leases)
            details[t.name] = result.as_dict()
            if result.skipped:
                skipped += 1
                sup.events.emit("compaction_skipped", table=t.name, **result.as_dict())
            else:
                compacted += 1
                sup.events.emit("table_compacted", table=t.name, **result.as_dict())
    finally:
        coord.close()
    summary = f"compacted {compacted} table(s), skipped {skipped}"
    return c.CommandOutcome(ok=True, summary=summary, details={"tables": details})


def maintain(sup: "Supervisor", command: c.Command) -> c.CommandOutcome:
    """One maintenance cycle: expire snapshots, remove orphan files, collect the stream."""
    from pg2iceberg.iceberg.maintenance import MaintenanceSettings, in_flight_files, maintain_table
    from pg2iceberg.iceberg.tables import open_catalog
    from pg2iceberg.runtime.pipeline import stream_store
    from pg2iceberg.stream.gc import collect_stream

    assert isinstance(command, c.Maintain)
    config = sup.config
    sink = config.sink
    tables = _tables(config, command.table)
    catalog = open_catalog(config)
    settings = MaintenanceSettings(retention_s=sink.maintenance_retention_s, grace_s=sink.maintenance_grace_s)
    store = stream_store(config)
    coord = _coordinator(config)
    details: dict[str, object] = {}
    totals = {"snapshots_expired": 0, "files_removed": 0, "bytes_removed": 0}
    try:
        protected = in_flight_files(coord)  # read before any table's references (see maintenance)
        loaded: dict[str, Table | None] = {}
        for t in tables:
            if sup.stop_event.is_set():
                break
            table = loaded[t.name] = _load(catalog, config, t)
            if table is None:
                details[t.name] = {"skipped": "no Iceberg table yet"}
                sup.events.emit("maintenance_skipped", table=t.name, reason="no Iceberg table yet")
                continue
            result = maintain_table(table, settings, protected=protected, stream_location=store.location)
            details[t.name] = result.as_dict()
            for key in totals:
                totals[key] += getattr(result, key)
            sup.events.emit("maintenance_done", table=t.name, **result.as_dict())
        if not sup.stop_event.is_set():
            gc = collect_stream(coord, store, loaded, grace_s=sink.maintenance_grace_s)
            details["stream"] = gc.as_dict()
            sup.events.emit("stream_collected", **gc.as_dict())
            coord.set_meta(LAST_MAINTENANCE_KEY, str(time.time()))
    finally:
        coord.close()
    stream = details.get("stream", {})
    summary = (f"expired {totals['snapshots_expired']} snapshot(s), removed {totals['files_removed']} "
               f"file(s) ({totals['bytes_removed']} bytes), collected "
               f"{stream.get('files_removed', 0) if isinstance(stream, dict) else 0} stream file(s)")
    return c.CommandOutcome(ok=True, summary=summary, details={"tables": details, **totals})


class MaintenanceSchedule:
    """Submits ``Maintain`` every ``sink.maintenance_interval`` (0 = never); call :meth:`tick` often."""

    def __init__(self, sup: "Supervisor", clock: Callable[[], float] = time.time):
        self.sup = sup
        self.clock = clock
        self._last_at: float | None = None

    def tick(self) -> bool:
        """Submit maintenance when it is due; True when it was submitted now."""
        interval = self.sup.config.sink.maintenance_interval_s
        if interval <= 0:
            return False
        now = self.clock()
        if self._last_at is None:
            self._last_at = self._stored_last_at(now)
        if now - self._last_at < interval or "maintain" in self.sup.status().running_commands:
            return False
        self._last_at = now
        return self.sup.submit(c.Maintain())

    def _stored_last_at(self, now: float) -> float:
        """The last maintenance time in the coordinator; records ``now`` as the start when none."""
        try:
            coord = Coordinator(self.sup.config.state.postgres.dsn, self.sup.config.state.coordinator_schema)
        except Exception:  # noqa: BLE001 - scheduling is best effort; try again next interval
            log.warning("maintenance schedule: coordinator not reachable", exc_info=True)
            return now
        try:
            stored = coord.get_meta(LAST_MAINTENANCE_KEY)
            if stored is None:
                coord.set_meta(LAST_MAINTENANCE_KEY, str(now))
                return now
            return float(stored)
        finally:
            coord.close()
