"""Commands: what a front end (or a one-shot CLI mode) asks the engine to do, as data.

``supervisor.submit(Compact())`` returns at once; the engine runs the command in its own
thread and reports through events: ``command_started``, then ``command_finished`` (with
``ok``, ``summary`` and ``details``) or, on failure, ``command_finished`` with ``ok=False``
and the reason. The same command objects serve keybindings, CLI modes and tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Re-copy one configured table (or every table) from the source while streaming."""

    table: str | None = None


@dataclass(frozen=True, slots=True)
class Compact:
    """One compaction cycle over one table (or every table above a threshold)."""

    table: str | None = None


@dataclass(frozen=True, slots=True)
class Maintain:
    """One maintenance cycle: expire old snapshots, delete orphan files, collect the stream."""

    table: str | None = None


@dataclass(frozen=True, slots=True)
class Verify:
    """Compare PostgreSQL with Iceberg at one consistent point (all tables when empty)."""

    tables: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PauseMaterializing:
    """Stop applying the stream to Iceberg (the WAL writer keeps staging)."""


@dataclass(frozen=True, slots=True)
class ResumeMaterializing:
    """Apply the stream again."""


@dataclass(frozen=True, slots=True)
class PlanCleanup:
    """Compute (and report) what a cleanup would drop; changes nothing."""


@dataclass(frozen=True, slots=True)
class Cleanup:
    """Drop slot, publication (if ours) and coordinator schema.

    ``confirm`` must equal the slot name; the guards are re-checked when executing.
    """

    confirm: str
    force: bool = False


Command = Union[Snapshot, Compact, Maintain, Verify, PauseMaterializing, ResumeMaterializing,
                PlanCleanup, Cleanup]


@dataclass(frozen=True, slots=True)
class CommandOutcome:
    """How a command ended: a one-line summary for humans, details for machines.

    ``exit_code`` is what the command means as a one-shot CLI mode (0 ok, 2 refused for want
    of confirmation, 3 verify found differences).
    """

    ok: bool
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    exit_code: int = 0


def command_name(command: Command) -> str:
    """The snake_case name used in events (``compact``, ``plan_cleanup``, ...)."""
    name = type(command).__name__
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")
