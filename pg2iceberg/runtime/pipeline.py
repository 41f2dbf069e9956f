"""Wiring of one run: source set-up, initial copies, WAL writer and materializer threads.

Start-up order in single mode:
1. pre-flight checks; coordinator schema; publication (created or extended);
2. the slot: created with an exported snapshot when missing (its consistent point becomes
   the anchor of every table's copy), else resumed from ``checkpoint.flushed_lsn``;
3. initial copies of the tables whose copy is not complete for this slot (the replication
   connection stays idle meanwhile, keeping the exported snapshot valid);
4. START_REPLICATION, then the WAL writer and the materializer run in their own threads.

Stream-only mode (``runtime/stream_only.py``) shares steps 1-3 (:meth:`Pipeline.start_streaming`)
and runs the WAL writer alone; it and single mode store the config fingerprint that
materializer-only workers (``runtime/materializer_only.py``) must match.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable


from pg2iceberg.config import Config, TableConfig
from pg2iceberg.errors import TerminalError
from pg2iceberg.iceberg.tables import IcebergTarget, bind_table, open_catalog
from pg2iceberg.lsn import parse_lsn
from pg2iceberg.materializer.worker import BatchCommitted, Materializer
from pg2iceberg.runtime.partition_watch import PartitionWatch
from pg2iceberg.runtime import fingerprint
from pg2iceberg.runtime.status import SnapshotProgress, TableStatus
from pg2iceberg.runtime.upkeep import MaintenanceSchedule
from pg2iceberg.runtime.status_probe import StatusProbe
from pg2iceberg.runtime.snapshotter import CopyProgress, copy_table
from pg2iceberg.source import preflight
from pg2iceberg.source.connection import connect
from pg2iceberg.source.replication import ReplicationConnection
from pg2iceberg.source.slot_health import read_slot_health
from pg2iceberg.stream.coordinator import Coordinator, SnapshotState
from pg2iceberg.stream.files import StreamStore
from pg2iceberg.stream.leases import table_guard
from pg2iceberg.stream.writer import FlushPolicy, WalWriter

if TYPE_CHECKING:
    from pg2iceberg.runtime.supervisor import Supervisor

log = logging.getLogger("pg2iceberg")
SINGLE_GROUP = "single"


def stream_store(config: Config) -> StreamStore:
    """The stream location's store, with the sink's S3 settings."""
    sink = config.sink
    return StreamStore(config.stream.location, s3_options={
        "endpoint": sink.s3_endpoint or "", "access_key": sink.s3_access_key or "",
        "secret_key": sink.s3_secret_key or "", "region": sink.s3_region or ""})


@dataclass(frozen=True, slots=True)
class StreamStart:
    """Where a streaming run stands once its copies are done and replication has started."""

    repl: ReplicationConnection
    tables: list[TableConfig]
    targets: dict[str, IcebergTarget]
    system_id: str
    flushed: int


class _Prefetch:
    """Runs ``fn`` in a daemon thread; ``result()`` waits and returns it or raises its error."""

    def __init__(self, fn: Callable[[], Any]):
        self._done = threading.Event()
        self._value: Any = None
        self._error: BaseException | None = None

        def body() -> None:
            try:
                self._value = fn()
            except BaseException as exc:  # noqa: BLE001 - re-raised by result()
                self._error = exc
            finally:
                self._done.set()
        threading.Thread(target=body, name="prefetch", daemon=True).start()

    def result(self) -> Any:
        self._done.wait()
        if self._error is not None:
            raise self._error
        return self._value


class Pipeline:
    """The engine parts of one run, created lazily and closed together."""

    def __init__(self, supervisor: "Supervisor"):
        self.sup = supervisor
        self._closers: list = []
        # Set while streaming, for commands that act on the live run (runtime/live_actions.py).
        self.targets: dict[str, IcebergTarget] = {}
        self.system_id: str | None = None
        self.materialize_lock = threading.Lock()  # held for each materializer cycle
        self.copying: set[str] = set()  # tables being copied: the materializer leaves them alone
        self.late_copies: list[str] = []  # tables to copy once streaming runs
        self.replication: ReplicationConnection | None = None  # holds the slot (cleanup tells it from others)
        self._catalog: _Prefetch | None = None  # the catalog, opening in the background

    @property
    def config(self) -> Config:
        """The supervisor's current config: hot settings change under a live reload."""
        return self.sup.config

    def close(self) -> None:
        """Close every connection opened for this run."""
        for closer in reversed(self._closers):
            try:
                closer()
            except Exception:  # noqa: BLE001 - closing is best effort
                pass
        self._closers.clear()

    # -- shared set-up ------------------------------------------------------------------

    def _coordinator(self) -> Coordinator:
        coord = Coordinator(self.config.state.postgres.dsn, self.config.state.coordinator_schema)
        self._closers.append(coord.close)
        return coord

    def _tables(self, only: tuple[str, ...] = ()) -> list[TableConfig]:
        tables = list(self.config.tables)
        if only:
            known = {t.name for t in tables}
            unknown = [n for n in only if n not in known]
            if unknown:
                raise TerminalError(f"--table {', '.join(unknown)}: not a configured table")
            tables = [t for t in tables if t.name in only]
        return tables

    def _open_catalog_early(self) -> None:
        """Start opening the catalog (imports and connection: a few hundred ms) in the
        background while the source is checked and the slot is made; ``_bind`` waits for it."""
        self._catalog = _Prefetch(lambda: open_catalog(self.config))

    def _bind(self, tables: list[TableConfig], infos: list) -> dict[str, IcebergTarget]:
        catalog = self._catalog.result() if self._catalog is not None else open_catalog(self.config)
        self._catalog = None
        return {t.name: bind_table(catalog, self.config.sink.namespace, t.iceberg_name, info, t.partition)
                for t, info in zip(tables, infos)}

    def _copy_tables(self, todo: dict[str, int], targets: dict[str, IcebergTarget], *,
                     snapshot_name: str | None, system_id: str, anchored: bool) -> None:
        """Copy the ``todo`` tables (name → anchor LSN), two at a time."""
        if not todo:
            return
        self.sup.set_state("snapshotting")
        self.copy_tables(todo, targets, snapshot_name=snapshot_name, system_id=system_id,
                         anchored=anchored)

    def copy_tables(self, todo: dict[str, int], targets: dict[str, IcebergTarget], *,
                    snapshot_name: str | None, system_id: str, anchored: bool) -> None:
        """Copy tables (name → anchor LSN) two at a time, publishing progress and events."""
        def progress(p: CopyProgress) -> None:
            snap = SnapshotProgress(p.rows, p.total_rows_estimate, p.rows_per_s, p.done)
            self.sup.publish(lambda s: replace(s, tables=tuple(
                replace(t, snapshot=snap) if t.name == p.table else t for t in s.tables)))

        def one(name: str) -> None:
            coord = self._coordinator()
            started = time.monotonic()
            self.sup.events.emit("snapshot_started", table=name)
            rows = copy_table(name=name, target=targets[name], coordinator=coord,
                              dsn=self.config.source.postgres.dsn, snapshot_name=snapshot_name,
                              anchor_lsn=todo[name], system_id=system_id, anchored=anchored,
                              on_progress=progress)
            self.sup.events.emit("snapshot_completed", table=name, rows=rows,
                                 duration_s=round(time.monotonic() - started, 3), anchored=anchored)

        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="snapshot") as pool:
            for future in [pool.submit(one, name) for name in todo]:
                future.result()

    # -- modes --------------------------------------------------------------------------

    def snapshot_only(self, only: tuple[str, ...]) -> None:
        """Copy every (or the given) configured table once, without a slot."""
        tables = self._tables(only)
        src = connect(self.config.source.postgres.dsn)
        self._closers.append(src.close)
        preflight.check_server(src, needs_slot=False)
        infos = preflight.describe_configured(src, tables)
        coord = self._coordinator()
        coord.ensure_schema()
        system_id = str(src.execute("SELECT system_identifier FROM pg_control_system()").fetchone()[0])
        targets = self._bind(tables, infos)
        self._init_table_status(tables)
        todo = []
        for t in tables:
            state = coord.snapshot_state(t.name)
            if state is not None and state.state in ("unanchored", "complete"):
                self.sup.events.emit("snapshot_skipped", table=t.name, reason="already complete")
            else:
                todo.append(t.name)
        if not todo:
            self.sup.events.emit("snapshot_already_complete", tables=[t.name for t in tables])
            return
        lsn_row = src.execute("SELECT pg_current_wal_lsn()::text").fetchone()
        lsn = parse_lsn(lsn_row[0])
        self._copy_tables({n: lsn for n in todo}, targets, snapshot_name=None, system_id=system_id,
                          anchored=False)

    def run_single(self) -> None:
        """WAL writer + materializer in this process, after the initial copies.

        With an existing slot, a table that still needs its copy (new in the config, or an
        interrupted copy) is copied while the others stream (see live_actions.resnapshot).
        """
        s = self.start_streaming(defer_late_copies=True)
        self._stream_and_materialize(s.repl, s.tables, s.targets, s.system_id, s.flushed)

    def start_streaming(self, *, defer_late_copies: bool = False) -> StreamStart:
        """Steps 1-3 and START_REPLICATION (single and stream-only mode).

        Also records this config's fingerprint, which materializer-only workers must match.
        """
        cfg = self.config
        tables = self._tables()
        self._open_catalog_early()
        src = connect(cfg.source.postgres.dsn)
        self._closers.append(src.close)
        preflight.check_server(src, needs_slot=True)
        infos = preflight.describe_configured(src, tables)
        coord = self._coordinator()
        coord.ensure_schema()
        if preflight.ensure_publication(src, cfg.source.publication_name, infos):
            coord.set_meta("publication_created", cfg.source.publication_name)
            self.sup.events.emit("publication_created", publication=cfg.source.publication_name)
        repl = ReplicationConnection(cfg.source.postgres.dsn, cfg.source.slot_name)
        self._closers.append(repl.close)
        self.replication = repl
        system_id = repl.identify_system().system_id
        slot = preflight.find_slot(src, cfg.source.slot_name)
        checkpoint = coord.checkpoint(cfg.source.slot_name)
        if checkpoint is not None and checkpoint[0] != system_id:
            raise TerminalError(
                f"the coordinator state belongs to another PostgreSQL cluster (system id {checkpoint[0]}, "
                f"this one is {system_id}); run --cleanup against the old state or use another "
                "state.coordinator_schema")
        snapshot_name = None
        if slot is None:
            preflight.check_free_slot(src)
            created = repl.create_slot()
            snapshot_name, flushed = created.snapshot_name, created.consistent_lsn
            coord.init_checkpoint(cfg.source.slot_name, system_id, flushed)
            self.sup.events.emit("slot_created", slot=cfg.source.slot_name, lsn=flushed)
        elif checkpoint is None:
            raise TerminalError(
                f"replication slot {cfg.source.slot_name!r} exists but the coordinator has no record of it "
                "(it was made by something else, or the coordinator schema was dropped): drop the slot "
                f"(SELECT pg_drop_replication_slot('{cfg.source.slot_name}')) or run --cleanup, then start again")
        else:
            flushed = checkpoint[1]
        targets = self._bind(tables, infos)
        coord.set_meta(fingerprint.META_KEY, fingerprint.fingerprint(cfg))
        self._init_table_status(tables)
        todo: dict[str, int] = {}
        for t in tables:
            state = coord.snapshot_state(t.name)
            if state is not None and state.state == "unanchored":
                self.sup.events.emit("snapshot_restarted", table=t.name,
                                     reason="the existing copy was made without a slot (--snapshot-only)")
            if snapshot_name is not None:
                todo[t.name] = flushed  # a new slot: every copy is anchored at its consistent point
            elif state is not None and state.state == "complete" and targets[t.name].created:
                # The Iceberg table was dropped (the way out of a refused schema change): copy
                # it again, anchored where the slot is, under the source's current schema. The
                # empty table records that anchor, so older stream files are never applied to it;
                # the copy is marked running first, so a crash before it ends resumes it.
                self.sup.events.emit("snapshot_restarted", table=t.name,
                                     reason="its Iceberg table was missing and has been created again")
                coord.save_snapshot_state(SnapshotState(t.name, "running", flushed, None, [], 0))
                targets[t.name].commit_files(delete=[], add=[], lsn=flushed, system_id=system_id)
                todo[t.name] = flushed
            elif state is None or state.state != "complete":
                # An interrupted copy resumes under a fresh snapshot at its old anchor; a new table
                # is anchored where the slot is. The stream replays everything after the anchor.
                running = state is not None and state.state == "running" and state.anchor_lsn is not None
                todo[t.name] = min(state.anchor_lsn, flushed) if running else flushed
        if defer_late_copies and snapshot_name is None:
            # A table new to the config is copied once streaming runs (the others keep going);
            # an interrupted copy resumes now, after its last recorded key.
            resuming = {n for n in todo if (st := coord.snapshot_state(n)) is not None and st.state == "running"}
            self.late_copies = sorted(set(todo) - resuming)
            self.copying.update(self.late_copies)  # not materialized until copied
            todo = {n: lsn for n, lsn in todo.items() if n in resuming}
        self._copy_tables(todo, targets, snapshot_name=snapshot_name, system_id=system_id, anchored=True)
        repl.start(cfg.source.publication_name, flushed)
        self.sup.set_state("streaming")
        self.sup.events.emit("streaming_started", slot=cfg.source.slot_name, lsn=flushed)
        return StreamStart(repl, tables, targets, system_id, flushed)

    def wal_writer(self, repl: ReplicationConnection, tables: list[TableConfig], flushed: int) -> WalWriter:
        """The WAL writer of a streaming run; it reads the flush settings live."""
        return WalWriter(
            repl=repl, coordinator=self._coordinator(), store=stream_store(self.config),
            slot_name=self.config.source.slot_name, tables={(t.schema, t.table): t.name for t in tables},
            flushed_lsn=flushed, policy=lambda: FlushPolicy(
                self.config.sink.flush_interval_s, self.config.sink.flush_rows, self.config.sink.flush_bytes))

    def _stream_and_materialize(self, repl: ReplicationConnection, tables: list[TableConfig],
                                targets: dict[str, IcebergTarget], system_id: str, flushed: int) -> None:
        cfg = self.config
        store = stream_store(cfg)
        writer = self.wal_writer(repl, tables, flushed)

        def committed(ev: BatchCommitted) -> None:
            self.sup.events.emit("batch_committed", **ev.event_fields())
            if ev.schema_change is not None:
                self.sup.events.emit("schema_changed", table=ev.table, lsn=ev.lsn, **ev.schema_change)

        materializer = Materializer(coordinator=self._coordinator(), store=store, system_id=system_id,
                                    group_id=SINGLE_GROUP, on_commit=committed,
                                    chunk_rows=cfg.sink.materializer_chunk_rows,
                                    source_dsn=cfg.source.postgres.dsn)
        materializer.table_guard = table_guard(materializer.coordinator.conn, cfg.state.coordinator_schema,
                                               f"materializer:{SINGLE_GROUP}")  # compaction leases
        maintenance = MaintenanceSchedule(self.sup)
        health_conn = connect(cfg.source.postgres.dsn, application_name="pg2iceberg-status")
        self._closers.append(health_conn.close)
        probe = StatusProbe(self.config, self._coordinator(), targets, self.sup, writer.stats,
                            slot_reader=lambda: read_slot_health(health_conn, cfg.source.slot_name))
        threads = [self.sup.spawn("wal-writer", lambda: writer.run(self.sup.stop_event))]

        self.targets, self.system_id = targets, system_id
        partitioned = {name: t.info.oid for name, t in targets.items() if t.info.relkind == "p"}
        if partitioned:
            watch = PartitionWatch(self.sup, lambda: connect(cfg.source.postgres.dsn), partitioned,
                                   self._coordinator())
            watch.check(health_conn)  # the first reading, before any change can slip by
            threads.append(self.sup.spawn("partition-watch", watch.run))
        if self.late_copies:
            threads.append(self.sup.spawn("late-copies", self._late_copies))

        def materialize_loop() -> None:
            while not self.sup.stop_event.is_set():
                materializer.coordinator.heartbeat(SINGLE_GROUP, SINGLE_GROUP, targets)
                if not self.sup.materializing_paused.is_set():
                    with self.materialize_lock:
                        materializer.cycle({n: t for n, t in targets.items() if n not in self.copying})
                probe.refresh()
                maintenance.tick()
                self.sup.stop_event.wait(self.config.sink.materializer_interval_s)
            threads[0].join()
            if self.sup.status().state != "error" and not self.sup.materializing_paused.is_set():
                with self.materialize_lock:  # what the writer staged while stopping
                    materializer.cycle({n: t for n, t in targets.items() if n not in self.copying})

        threads.append(self.sup.spawn("materializer", materialize_loop))
        while not self.sup.stop_event.is_set():
            probe.refresh()
            self.sup.stop_event.wait(1.0)
        for thread in threads:
            thread.join()
        probe.refresh()

    def _late_copies(self) -> None:
        """Copy the tables that joined (or whose copy was interrupted) while the others stream."""
        from pg2iceberg.runtime.commands import Snapshot

        for name in self.late_copies:
            if self.sup.stop_event.is_set():
                return
            outcome = self.sup.execute(Snapshot(table=name))
            if not outcome.ok:
                raise TerminalError(f"the copy of {name} failed: {outcome.summary}; it is retried at the next start")

    def _init_table_status(self, tables: list[TableConfig]) -> None:
        self.sup.publish(lambda s: replace(s, tables=tuple(
            TableStatus(name=t.name, iceberg_name=f"{self.config.sink.namespace}.{t.iceberg_name}")
            for t in tables)))
