"""Stream-only mode: the WAL writer alone; materializer-only workers apply what it stages.

It does what single mode does up to START_REPLICATION (``Pipeline.start_streaming``): the
pre-flight checks, the publication, the slot with its exported snapshot, the initial copies
under that snapshot, and it records the config fingerprint the workers must match. Then it
runs the WAL writer with single mode's durability contract (``stream/writer.py``): a file is
registered before the slot is acked past it. It registers no consumer and commits nothing to
Iceberg after the copies, so it never races the workers.

Status: the WAL positions from the writer and the slot, each table's Iceberg position and
backlog (tables re-read every refresh, since other processes commit to them), and the
workers as their heartbeats and cursor rows in the coordinator show them.
"""

from __future__ import annotations

import logging
from contextlib import ExitStack, closing

from pg2iceberg.runtime.pipeline import Pipeline
from pg2iceberg.runtime.status_probe import StatusProbe
from pg2iceberg.source.connection import connect
from pg2iceberg.source.slot_health import read_slot_health
from pg2iceberg.stream.coordinator import Coordinator

log = logging.getLogger("pg2iceberg")
STATUS_INTERVAL_S = 2.0


def run_stream_only(pipeline: Pipeline) -> None:
    """Set up, copy, then stage changes until stopped."""
    sup = pipeline.sup
    start = pipeline.start_streaming()
    cfg = pipeline.config
    writer = pipeline.wal_writer(start.repl, start.tables, start.flushed)
    with ExitStack() as stack:
        health = stack.enter_context(connect(cfg.source.postgres.dsn, application_name="pg2iceberg-status"))
        coord = stack.enter_context(closing(Coordinator(cfg.state.postgres.dsn, cfg.state.coordinator_schema)))
        probe = StatusProbe(cfg, coord, start.targets, sup, writer.stats,
                            slot_reader=lambda: read_slot_health(health, cfg.source.slot_name))
        thread = sup.spawn("wal-writer", lambda: writer.run(sup.stop_event))
        while not sup.stop_event.is_set():
            _refresh(probe)
            sup.stop_event.wait(STATUS_INTERVAL_S)
        thread.join()
        _refresh(probe)


def _refresh(probe: StatusProbe) -> None:
    """Re-read the tables (the workers commit to them) and publish the status."""
    try:
        for target in probe.targets.values():
            target.table.refresh()
        probe.refresh()
    except Exception:  # noqa: BLE001 - a status reading must never stop the writer
        log.warning("status refresh failed", exc_info=True)
