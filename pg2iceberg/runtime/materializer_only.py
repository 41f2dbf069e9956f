"""Materializer-only mode: one worker of a group that splits the tables among its live members.

Membership: the worker heartbeats into ``consumers`` (its id, the group, the tables it holds)
from its own thread every :func:`~pg2iceberg.materializer.assignment.heartbeat_interval_s`;
a worker silent for the TTL is dead. A clean stop deletes its row, so the others take its
tables at their next cycle instead of after the TTL.

Assignment: every cycle the worker lists the live members of its group and computes
:func:`~pg2iceberg.materializer.assignment.assign` over the configured tables, the same
function every member computes. It applies only its own tables, and only those whose initial
copy is complete (coordinator ``snapshots``): the stream writer owns the copies.

Fencing — why two workers that both believe they own a table never lose or duplicate a row:
- A batch is derived from the table's current Iceberg snapshot S: the position in S's summary
  decides which stream entries are applied, and the files it rewrites are S's files.
- The commit is optimistic on S (pyiceberg asserts the branch still points at S; pyiceberg's
  own retries are off, see ``iceberg/tables.py``) and carries the new position in the same
  snapshot as the data.
- So of two commits based on S exactly one lands. The other gets ``CommitFailedException``
  having committed nothing; the worker reports ``commit_conflict``, re-computes its tables,
  and a table it still holds is re-read from its new snapshot and position: entries the
  winner applied lie at or before that position and are never applied again.
Cursor rows (``cursors``, keyed by the worker id) follow each commit; they are hints for the
status, the Iceberg position is the truth. Compaction leases are honoured as in single mode.

Start-up: waits (state ``starting``, ``waiting_for`` in the status, a ``waiting`` event per new
reason) until the coordinator schema, the slot's checkpoint and the stream writer's config
fingerprint exist. Then it refuses, with a :class:`~pg2iceberg.errors.ConfigError` (exit 2,
nothing changed), a config that differs from the stream writer's
(``runtime/fingerprint.py``) or a worker id that another live process heartbeats with.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from contextlib import ExitStack, closing
from dataclasses import replace
from typing import TYPE_CHECKING, Callable

from pyiceberg.exceptions import CommitFailedException

from pg2iceberg.config import Config
from pg2iceberg.errors import ConfigError
from pg2iceberg.iceberg.tables import IcebergTarget, bind_table, open_catalog
from pg2iceberg.materializer.assignment import assign, heartbeat_interval_s, heartbeat_ttl_s
from pg2iceberg.materializer.worker import BatchCommitted, Materializer
from pg2iceberg.runtime import fingerprint
from pg2iceberg.runtime.events import EventBus
from pg2iceberg.runtime.pipeline import Pipeline, stream_store
from pg2iceberg.runtime.status import TableStatus
from pg2iceberg.runtime.status_probe import StatusProbe
from pg2iceberg.source import preflight
from pg2iceberg.source.connection import connect
from pg2iceberg.source.schema import TableInfo
from pg2iceberg.source.slot_health import read_slot_health
from pg2iceberg.stream.coordinator import Coordinator
from pg2iceberg.stream.leases import table_guard

if TYPE_CHECKING:
    from pg2iceberg.runtime.supervisor import Supervisor

log = logging.getLogger("pg2iceberg")
GROUP = "default"  # the one consumer group of this version
STATUS_INTERVAL_S = 2.0
Assign = Callable[[list[str], list[str]], dict[str, tuple[str, ...]]]


class WorkerLoop:
    """One worker's cycles: membership, assignment, applying its tables, cursor rows."""

    def __init__(self, *, config: Callable[[], Config], worker_id: str, targets: dict[str, IcebergTarget],
                 system_id: str, events: EventBus, stop: threading.Event, stack: ExitStack,
                 paused: threading.Event | None = None, assign_tables: Assign = assign,
                 use_leases: bool = True):
        self.config = config
        self.worker_id = worker_id
        self.targets = targets
        self.events = events
        self.stop = stop
        self.paused = paused
        self.assign_tables = assign_tables
        self.held: tuple[str, ...] = ()
        self.waiting: tuple[str, ...] = ()  # held tables whose initial copy is not complete
        self._stack = stack
        cfg = config()
        self.coordinator = self._coordinator()
        self.materializer = Materializer(coordinator=self.coordinator, store=stream_store(cfg),
                                         system_id=system_id, group_id=worker_id, on_commit=self._committed,
                                         chunk_rows=cfg.sink.materializer_chunk_rows,
                                         source_dsn=cfg.source.postgres.dsn)
        if use_leases:
            self.materializer.table_guard = table_guard(
                self.coordinator.conn, cfg.state.coordinator_schema, f"materializer:{worker_id}")

    def _coordinator(self) -> Coordinator:
        cfg = self.config()
        return self._stack.enter_context(closing(Coordinator(cfg.state.postgres.dsn, cfg.state.coordinator_schema)))

    def live_workers(self, coordinator: Coordinator | None = None) -> list[str]:
        """Ids of the group's members with a heartbeat within the TTL, this worker included."""
        ttl = heartbeat_ttl_s(self.config().sink.materializer_interval_s)
        rows = (coordinator or self.coordinator).consumer_rows()
        live = {r.worker_id for r in rows if r.group_id == GROUP and r.heartbeat_age_s < ttl}
        return sorted(live | {self.worker_id})

    def reassign(self) -> tuple[str, ...]:
        """Re-compute this worker's tables; report a change."""
        live = self.live_workers()
        mine = tuple(self.assign_tables(sorted(self.targets), live).get(self.worker_id, ()))
        if mine != self.held:
            gained, lost = sorted(set(mine) - set(self.held)), sorted(set(self.held) - set(mine))
            self.held = mine
            self.coordinator.heartbeat(self.worker_id, GROUP, mine)
            self.events.emit("assignment_changed", worker=self.worker_id, tables=list(mine), gained=gained,
                             lost=lost, live_workers=live)
        return mine

    def cycle(self) -> None:
        """Apply the stream to every held table whose copy is complete."""
        waiting = []
        for name in self.reassign():
            if self.stop.is_set() or (self.paused is not None and self.paused.is_set()):
                break
            if name not in self.held:  # lost after a commit conflict earlier in this cycle
                continue
            state = self.coordinator.snapshot_state(name)
            if state is None or state.state != "complete":
                waiting.append(name)
                continue
            try:
                self.materializer.cycle({name: self.targets[name]})
            except CommitFailedException as exc:
                # Another committer (a worker that also holds it, or compaction) won on the same
                # snapshot; nothing of ours landed. The next attempt starts from the new snapshot.
                still = name in self.reassign()
                self.events.emit("commit_conflict", worker=self.worker_id, table=name, still_held=still,
                                 reason=str(exc))
        self.waiting = tuple(waiting)

    def run(self) -> None:
        """Cycle until stopped."""
        while not self.stop.is_set():
            self.cycle()
            self.stop.wait(self.config().sink.materializer_interval_s)

    def heartbeat_loop(self) -> None:
        """Heartbeat from its own connection, whatever a cycle takes."""
        coordinator = self._coordinator()
        while not self.stop.is_set():
            coordinator.heartbeat(self.worker_id, GROUP, self.held)
            self.stop.wait(heartbeat_interval_s(self.config().sink.materializer_interval_s))

    def _committed(self, ev: BatchCommitted) -> None:
        self.events.emit("batch_committed", worker=self.worker_id, **ev.event_fields())


def wait_for_stream_writer(config: Config, coordinator: Coordinator, events: EventBus,
                           stop: threading.Event, on_wait: Callable[[str | None], None]) -> tuple[str, str] | None:
    """Wait until the stream writer has set up the coordinator: (fingerprint, system id), or
    None when stopped first."""
    reason: str | None = None
    while not stop.is_set():
        now = None
        if not coordinator.exists():
            now = "the stream writer: the coordinator schema does not exist yet (start --stream-only)"
        else:
            checkpoint = coordinator.checkpoint(config.source.slot_name)
            stored = coordinator.get_meta(fingerprint.META_KEY)
            if checkpoint is None or stored is None:
                now = (f"the stream writer: no record of slot {config.source.slot_name!r} and its config "
                       "yet (start --stream-only)")
            else:
                on_wait(None)
                return stored, checkpoint[0]
        if now != reason:
            reason = now
            events.emit("waiting", reason=now)
            on_wait(now)
        stop.wait(1.0)
    return None


def check_worker_id(coordinator: Coordinator, worker_id: str, ttl_s: float) -> None:
    """Refuse a worker id that another live process heartbeats with."""
    host, pid = socket.gethostname(), os.getpid()
    for row in coordinator.consumer_rows():
        if row.worker_id != worker_id or row.heartbeat_age_s >= ttl_s or (row.host, row.pid) == (host, pid):
            continue
        if row.host == host and row.pid is not None and not _pid_alive(row.pid):
            continue  # its earlier process on this machine is gone (killed): take over
        raise ConfigError(
            f"materializer worker id {worker_id!r} is in use by pid {row.pid} on {row.host} (heartbeat "
            f"{row.heartbeat_age_s:.0f}s ago): give each worker its own --materializer-worker-id, or, "
            f"if that process is gone, start again in {ttl_s - row.heartbeat_age_s:.0f}s")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def open_worker(pipeline: Pipeline, worker_id: str, system_id: str, stack: ExitStack, *,
                assign_tables: Assign = assign, use_leases: bool = True) -> tuple[WorkerLoop, list[TableInfo]]:
    """Describe the tables, bind them and build the worker's loop (after the checks)."""
    cfg = pipeline.config
    tables = list(cfg.tables)
    src = stack.enter_context(connect(cfg.source.postgres.dsn, application_name="pg2iceberg-worker"))
    preflight.check_server(src, needs_slot=False)
    infos = preflight.describe_configured(src, tables)
    catalog = open_catalog(cfg)
    targets = {t.name: bind_table(catalog, cfg.sink.namespace, t.iceberg_name, info, t.partition)
               for t, info in zip(tables, infos)}
    loop = WorkerLoop(config=lambda: pipeline.config, worker_id=worker_id, targets=targets, system_id=system_id,
                      events=pipeline.sup.events, stop=pipeline.sup.stop_event, stack=stack,
                      paused=pipeline.sup.materializing_paused, assign_tables=assign_tables, use_leases=use_leases)
    return loop, infos


def run_materializer_only(pipeline: Pipeline) -> None:
    """Run one materializer worker until stopped."""
    sup = pipeline.sup
    cfg = pipeline.config
    worker_id = cfg.materializer_worker_id
    if not worker_id:
        raise ConfigError("--materializer-only needs --materializer-worker-id ID (or MATERIALIZER_WORKER_ID)")
    sup.publish(lambda s: replace(s, tables=tuple(
        TableStatus(name=t.name, iceberg_name=f"{cfg.sink.namespace}.{t.iceberg_name}") for t in cfg.tables)))
    with ExitStack() as stack:
        coord = stack.enter_context(closing(Coordinator(cfg.state.postgres.dsn, cfg.state.coordinator_schema)))
        found = wait_for_stream_writer(cfg, coord, sup.events, sup.stop_event,
                                       lambda why: sup.publish(lambda s: replace(s, waiting_for=why)))
        if found is None:
            return
        stored, system_id = found
        fingerprint.check(cfg, stored)
        check_worker_id(coord, worker_id, heartbeat_ttl_s(cfg.sink.materializer_interval_s))
        loop, infos = open_worker(pipeline, worker_id, system_id, stack)
        src = stack.enter_context(connect(cfg.source.postgres.dsn, application_name="pg2iceberg-status"))
        catalog = open_catalog(cfg)  # the status reads its own table objects: the loop refreshes its own
        shown = {t.name: bind_table(catalog, cfg.sink.namespace, t.iceberg_name, info, t.partition)
                 for t, info in zip(cfg.tables, infos)}
        probe = StatusProbe(cfg, coord, shown, sup, None,
                            slot_reader=lambda: read_slot_health(src, cfg.source.slot_name))
        coord.heartbeat(worker_id, GROUP, ())
        sup.events.emit("worker_started", worker=worker_id, group=GROUP)
        sup.set_state("streaming")
        threads = [sup.spawn("heartbeat", loop.heartbeat_loop), sup.spawn("materializer", loop.run)]
        try:
            while not sup.stop_event.is_set():
                _refresh_status(shown, probe, loop, sup)
                sup.stop_event.wait(STATUS_INTERVAL_S)
            for thread in threads:
                thread.join()
        finally:
            coord.remove_consumer(worker_id)  # the others take its tables at their next cycle
        _refresh_status(shown, probe, loop, sup)
        sup.events.emit("worker_stopped", worker=worker_id)


def _refresh_status(shown: dict[str, IcebergTarget], probe: StatusProbe, loop: WorkerLoop,
                    sup: "Supervisor") -> None:
    """Re-read the tables for the status and publish it, with what this worker waits for."""
    try:
        for target in shown.values():
            target.table.refresh()
        probe.refresh()
    except Exception:  # noqa: BLE001 - a status reading must never stop the worker
        log.warning("status refresh failed", exc_info=True)
    why = f"initial copies of {', '.join(loop.waiting)} (the stream writer makes them)" if loop.waiting else None
    sup.publish(lambda s: replace(s, waiting_for=why))
