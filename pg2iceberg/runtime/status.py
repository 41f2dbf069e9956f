"""The frozen status snapshot the engine publishes and every front end reads.

Threads build a new :class:`PipelineStatus` and swap the reference; nobody mutates a
published one. Positions are int LSNs here; front ends format them.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class SnapshotProgress:
    """An initial copy in progress."""

    rows: int
    total_rows_estimate: int
    rows_per_s: float
    done: bool


@dataclass(frozen=True, slots=True)
class TableStatus:
    """One replicated table."""

    name: str
    iceberg_name: str
    materialized_lsn: int | None = None
    rows: int | None = None
    data_files: int | None = None
    delete_files: int | None = None
    snapshots: int | None = None
    backlog_files: int = 0
    backlog_rows: int = 0
    backlog_bytes: int = 0
    backlog_oldest_age_s: float | None = None
    last_commit_at: float | None = None
    snapshot: SnapshotProgress | None = None


@dataclass(frozen=True, slots=True)
class WorkerStatus:
    """One materializer worker as the coordinator sees it."""

    id: str
    heartbeat_age_s: float
    tables: tuple[str, ...]
    alive: bool
    group: str = ""
    cursor_lsn: int | None = None  # the lowest applied position over its tables
    last_commit_at: float | None = None
    state: str = "running"  # running, lagging, dead


@dataclass(frozen=True, slots=True)
class PipelineStatus:
    """Everything the front ends show."""

    state: str = "starting"  # starting, snapshotting, streaming, stopping, error
    mode: str = "single"
    server_lsn: int | None = None
    confirmed_lsn: int | None = None
    lag_bytes: int | None = None
    lag_s: float | None = None  # age of the oldest change not yet materialized
    retained_bytes: int | None = None  # WAL the slot keeps on the server
    slot_active: bool | None = None
    wal_status: str | None = None  # pg_replication_slots.wal_status: reserved, extended, unreserved, lost
    changes_total: int = 0
    changes_per_s: float = 0.0
    changes_history: tuple[float, ...] = ()  # recent changes/s samples, oldest first (sparkline)
    tables: tuple[TableStatus, ...] = ()
    workers: tuple[WorkerStatus, ...] = ()
    materializing_paused: bool = False
    running_commands: tuple[str, ...] = ()
    config_path: str | None = None
    config_error: str | None = None  # the last rejected reload, until a valid one
    restart_needed: tuple[str, ...] = ()  # changed keys that apply only after a restart
    error: str | None = None
    stopped_reason: str | None = None  # why the pipeline stopped when nobody asked to quit
    waiting_for: str | None = None  # what a materializer-only worker waits for (stream writer, copies)
    updated_at: float = 0.0
    extra: dict[str, object] = field(default_factory=dict)
