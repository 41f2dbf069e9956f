"""Scripted status snapshots for each console state, at a fixed clock."""

from __future__ import annotations

from dataclasses import replace

from pg2iceberg.runtime.events import Event
from pg2iceberg.runtime.status import PipelineStatus, SnapshotProgress, TableStatus, WorkerStatus

NOW = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC; the console's clock in these tests
LSN = 0x1_6B37_48A0


def normal() -> PipelineStatus:
    """Streaming, caught up, a little backlog."""
    tables = (
        TableStatus("shop.customers", "shop.customers", materialized_lsn=LSN, rows=12_480, data_files=3,
                    delete_files=0, snapshots=42, backlog_files=1, backlog_rows=37, backlog_bytes=18_432,
                    backlog_oldest_age_s=0.8, last_commit_at=NOW - 2.5,
                    snapshot=SnapshotProgress(12_000, 12_000, 0.0, True)),
        TableStatus("shop.orders", "shop.orders", materialized_lsn=LSN - 4096, rows=98_213, data_files=7,
                    delete_files=0, snapshots=57, backlog_files=2, backlog_rows=311,
                    backlog_bytes=204_800, backlog_oldest_age_s=1.4, last_commit_at=NOW - 1.2,
                    snapshot=SnapshotProgress(95_000, 95_000, 0.0, True)),
    )
    worker = WorkerStatus("single", 0.4, ("shop.customers", "shop.orders"), True, group="single",
                          cursor_lsn=LSN - 4096, last_commit_at=NOW - 1.2, state="running")
    return PipelineStatus(
        state="streaming", mode="single", server_lsn=LSN + 2048, confirmed_lsn=LSN, lag_bytes=2048,
        lag_s=1.4, retained_bytes=3_145_728, slot_active=True, wal_status="reserved",
        changes_total=51_230, changes_per_s=212.5,
        changes_history=(180.0, 190.0, 240.0, 210.0, 0.0, 80.0, 150.0, 260.0, 300.0, 212.5) * 4,
        tables=tables, workers=(worker,), updated_at=NOW)


def lagging() -> PipelineStatus:
    """Materializing paused for a while: a big backlog, old changes, a lagging worker."""
    s = normal()
    tables = tuple(replace(t, backlog_files=40 + i, backlog_rows=812_000 + i, backlog_bytes=734_003_200,
                           backlog_oldest_age_s=754.0, last_commit_at=NOW - 760)
                   for i, t in enumerate(s.tables))
    worker = replace(s.workers[0], state="lagging", last_commit_at=NOW - 760, heartbeat_age_s=12.3)
    return replace(s, lag_bytes=1_610_612_736, lag_s=754.0, retained_bytes=2_147_483_648,
                   server_lsn=LSN + 1_610_612_736, wal_status="extended", materializing_paused=True,
                   changes_per_s=4100.0, tables=tables, workers=(worker,))


def error() -> PipelineStatus:
    """The engine hit a terminal error."""
    return replace(normal(), state="error", slot_active=False, wal_status="lost",
                   error=("the replication slot slot_demo was invalidated (wal_status lost) on "
                          "postgresql://repl:***@db.example:5432/shop: run --cleanup, then start again"),
                   workers=(replace(normal().workers[0], state="dead", alive=False, heartbeat_age_s=45.0),))


def snapshotting() -> PipelineStatus:
    """The initial copy of both tables is running."""
    s = normal()
    tables = (replace(s.tables[0], rows=None, data_files=None, delete_files=None, snapshots=None,
                      last_commit_at=None, backlog_files=0, backlog_rows=0, backlog_bytes=0,
                      backlog_oldest_age_s=None,
                      snapshot=SnapshotProgress(620_000, 1_000_000, 41_250.0, False)),
              replace(s.tables[1], rows=None, data_files=None, delete_files=None, snapshots=None,
                      last_commit_at=None, backlog_files=0, backlog_rows=0, backlog_bytes=0,
                      backlog_oldest_age_s=None, snapshot=SnapshotProgress(15_300, 0, 7_650.0, False)))
    return replace(s, state="snapshotting", server_lsn=LSN, confirmed_lsn=LSN, lag_bytes=0, lag_s=None,
                   changes_per_s=0.0, changes_history=(), tables=tables, workers=())


def config_rejected() -> PipelineStatus:
    """A config edit was rejected; an earlier one needs a restart."""
    return replace(normal(), config_error=("config.yaml: sink.flush_interval: 'soon' is not a duration "
                                           "(write it like 300ms, 1s or 5m)"),
                   restart_needed=("source.slot_name",))


def starting() -> PipelineStatus:
    """Nothing known yet: every value renders as a dash."""
    return PipelineStatus(state="starting", mode="single")


def history(at: float = NOW) -> list[Event]:
    """A few events as the log shows them."""
    return [
        Event("slot_created", {"slot": "slot_demo", "lsn": LSN - 8192}, at - 60),
        Event("snapshot_completed", {"table": "shop.orders", "rows": 95_000, "duration_s": 12.3}, at - 40),
        Event("streaming_started", {"slot": "slot_demo", "lsn": LSN - 8192}, at - 39),
        Event("batch_committed", {"table": "shop.orders", "lsn": LSN - 4096, "changes": 311, "upserted": 300,
                                  "deleted": 11, "duration_s": 0.21}, at - 2),
        Event("batch_committed", {"table": "shop.customers", "lsn": LSN, "changes": 37, "upserted": 37,
                                  "deleted": 0, "duration_s": 0.08}, at - 1),
    ]


CLEANUP_PLAN = {  # shaped like pg2iceberg.runtime.cleanup_plan's plan
    "slot": "slot_demo",
    "items": [
        "this process's pipeline is running: it is stopped first",
        "replication slot slot_demo: exists, active (this process's pipeline: it is stopped first), "
        "retains 3.0 MiB of WAL (reserved) → will be dropped",
        "publication pg2iceberg_pub: created by pg2iceberg → will be dropped",
        "coordinator schema _pg2iceberg: 7 tables (checkpoint, consumers, cursors, leases, log, meta, "
        "snapshots), 12 staged stream files registered → will be dropped",
        "Iceberg tables: kept",
    ],
    "consequence": "a later start takes a full re-snapshot of every table",
    "blockers": [],
    "nothing_to_do": False,
}
