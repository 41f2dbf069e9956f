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


@dataclass(frozen=True, slots=True)
class PipelineStatus:
    """Everything the front ends show."""

    state: str = "starting"  # starting, snapshotting, streaming, stopping, error
    mode: str = "single"
    server_lsn: int | None = None
    confirmed_lsn: int | None = None
    lag_bytes: int | None = None
    changes_total: int = 0
    changes_per_s: float = 0.0
    tables: tuple[TableStatus, ...] = ()
    workers: tuple[WorkerStatus, ...] = ()
    error: str | None = None
    updated_at: float = 0.0
    extra: dict[str, object] = field(default_factory=dict)
