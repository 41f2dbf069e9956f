"""The cleanup plan: what exists, what a cleanup would drop, and what stands in its way.

Pure functions of :class:`CleanupFacts` (gathered by :mod:`pg2iceberg.runtime.cleanup`), so
the plan a front end shows and the guard the engine re-checks before dropping are computed
the same way. The plan's keys are a contract with the console's confirmation modal:
``slot``, ``items``, ``consequence``, ``blockers``, ``nothing_to_do``.

Decisions:
- The publication is dropped only when the coordinator's ``meta.publication_created``
  records that pg2iceberg created it; otherwise it is left and the plan says so.
- Staged stream files that the coordinator log lists are deleted (nothing can read them once
  their rows are gone); other files under ``stream.location`` are left, since that location
  may be shared. Iceberg tables are never touched.
- A live other process is one that holds the slot (an active pid that is not this process's
  replication connection) or a consumer that heartbeated within the TTL and is not this
  process (same host and a pid that no longer exists counts as gone).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CONSEQUENCE = "a later start takes a full re-snapshot of every table"


@dataclass(frozen=True, slots=True)
class SlotFacts:
    """The replication slot as the server shows it."""

    active_pid: int | None
    retained_wal_bytes: int | None
    wal_status: str | None
    holder: str  # who holds it (application name, client), "" when inactive
    recorded: bool  # the coordinator's checkpoint names this slot


@dataclass(frozen=True, slots=True)
class WorkerFacts:
    """One consumer row of the coordinator."""

    worker_id: str
    host: str
    pid: int | None
    heartbeat_age_s: float
    ours: bool  # this process
    gone: bool  # same host, and that pid no longer exists


@dataclass(frozen=True, slots=True)
class CleanupFacts:
    """Everything a cleanup plan is computed from."""

    slot_name: str
    slot: SlotFacts | None
    own_backend_pids: frozenset[int]
    own_pipeline_running: bool
    publication_name: str
    publication_exists: bool
    publication_created: bool
    schema: str
    schema_exists: bool
    schema_tables: tuple[str, ...]
    staged_files: int
    staged_bytes: int
    stream_location: str
    workers: tuple[WorkerFacts, ...]
    heartbeat_ttl_s: float


def _bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def live_workers(facts: CleanupFacts) -> list[WorkerFacts]:
    """Consumers of other processes that heartbeated within the TTL."""
    return [w for w in facts.workers
            if not w.ours and not w.gone and w.heartbeat_age_s < facts.heartbeat_ttl_s]


def blockers(facts: CleanupFacts) -> list[str]:
    """Other live pg2iceberg processes, one line each."""
    out = []
    slot = facts.slot
    if slot is not None and slot.active_pid is not None and slot.active_pid not in facts.own_backend_pids:
        out.append(f"replication slot {facts.slot_name} is held by another process "
                   f"(server pid {slot.active_pid}{', ' + slot.holder if slot.holder else ''})")
    for w in live_workers(facts):
        where = f"{w.host} pid {w.pid}" if w.pid is not None else w.host
        out.append(f"worker {w.worker_id} ({where}) heartbeated {w.heartbeat_age_s:.0f}s ago")
    return out


def _slot_item(facts: CleanupFacts) -> str:
    slot = facts.slot
    if slot is None:
        return f"replication slot {facts.slot_name}: does not exist"
    if slot.active_pid is None:
        state = "inactive"
    elif slot.active_pid in facts.own_backend_pids:
        state = "active (this process's pipeline: it is stopped first)"
    else:
        state = f"active (server pid {slot.active_pid})"
    retained = "" if slot.retained_wal_bytes is None else f", retains {_bytes(slot.retained_wal_bytes)} of WAL"
    status = f" ({slot.wal_status})" if slot.wal_status else ""
    foreign = "" if slot.recorded else "; the coordinator has no record of it"
    return f"replication slot {facts.slot_name}: exists, {state}{retained}{status}{foreign} → will be dropped"


def _publication_item(facts: CleanupFacts) -> str:
    name = facts.publication_name
    if not facts.publication_exists:
        return f"publication {name}: does not exist"
    if facts.publication_created:
        return f"publication {name}: created by pg2iceberg → will be dropped"
    return f"publication {name}: left in place: not created by pg2iceberg"


def _schema_item(facts: CleanupFacts) -> str:
    if not facts.schema_exists:
        return f"coordinator schema {facts.schema}: does not exist"
    tables = ", ".join(facts.schema_tables) or "no tables"
    return (f"coordinator schema {facts.schema}: {len(facts.schema_tables)} tables ({tables}), "
            f"{facts.staged_files} staged stream files registered → will be dropped")


def _stream_item(facts: CleanupFacts) -> str:
    if facts.staged_files == 0:
        return f"stream files under {facts.stream_location}: none registered; nothing there is touched"
    return (f"stream files under {facts.stream_location}: the {facts.staged_files} registered files "
            f"({_bytes(facts.staged_bytes)}) → will be deleted; other files there are kept")


def nothing_to_do(facts: CleanupFacts) -> bool:
    """True when no slot, no publication of ours and no coordinator schema exist."""
    ours = facts.publication_exists and facts.publication_created
    return facts.slot is None and not ours and not facts.schema_exists


def build_plan(facts: CleanupFacts) -> dict[str, Any]:
    """The plan as the front ends show it (keys fixed: see the module docstring)."""
    items = [_slot_item(facts), _publication_item(facts), _schema_item(facts), _stream_item(facts),
             "Iceberg tables are untouched"]
    if facts.own_pipeline_running:
        items.insert(0, "this process's pipeline is running: it is stopped first")
    return {"slot": facts.slot_name, "items": items, "consequence": CONSEQUENCE,
            "blockers": blockers(facts), "nothing_to_do": nothing_to_do(facts)}
