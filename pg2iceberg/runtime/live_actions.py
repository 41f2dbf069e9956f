"""Commands that act on a running streaming pipeline: pause, resume, re-snapshot a table.

Re-snapshot contract: the table's materializing is held (the materializer's cycle lock)
for the whole copy, so no batch commits in between. The copy is anchored at the table's
current Iceberg position P and read under a fresh snapshot taken now, so it may hold rows
newer than P. Its single commit replaces every data file of the table and records P; the
materializer then replays the stream after P on top, which is idempotent (last image per
key wins), so the result equals the source. A crash mid-copy leaves the copy ``running``
with anchor P, which the next start resumes like any interrupted initial copy.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from pg2iceberg.errors import TerminalError
from pg2iceberg.runtime import commands as c
from pg2iceberg.runtime.pipeline import Pipeline

if TYPE_CHECKING:
    from pg2iceberg.runtime.supervisor import Supervisor


def _live(sup: "Supervisor", what: str) -> Pipeline:
    pipeline = sup.pipeline
    if pipeline is None or not pipeline.targets or sup.finished.is_set():
        raise TerminalError(f"{what} needs a running pipeline that applies the stream (single mode)")
    return pipeline


def pause(sup: "Supervisor", _command: c.Command) -> c.CommandOutcome:
    """Stop applying the stream; the WAL writer keeps staging, so nothing is lost."""
    _live(sup, "pausing")
    sup.materializing_paused.set()
    sup.publish(lambda s: replace(s, materializing_paused=True))
    return c.CommandOutcome(True, "materializing paused; changes keep being staged")


def resume(sup: "Supervisor", _command: c.Command) -> c.CommandOutcome:
    """Apply the stream again."""
    _live(sup, "resuming")
    sup.materializing_paused.clear()
    sup.publish(lambda s: replace(s, materializing_paused=False))
    return c.CommandOutcome(True, "materializing resumed")


def resnapshot(sup: "Supervisor", command: c.Command) -> c.CommandOutcome:
    """Copy one (or every) table again from the source, then let the stream catch it up."""
    assert isinstance(command, c.Snapshot)
    pipeline = _live(sup, "a snapshot")
    names = [command.table] if command.table else sorted(pipeline.targets)
    unknown = [n for n in names if n not in pipeline.targets]
    if unknown:
        raise TerminalError(f"snapshot: {', '.join(unknown)} is not a replicated table")
    assert pipeline.system_id is not None
    with pipeline.materialize_lock:
        todo = {}
        for name in names:
            target = pipeline.targets[name]
            target.table.refresh()
            todo[name] = target.position() or 0
        pipeline.copy_tables(todo, pipeline.targets, snapshot_name=None, system_id=pipeline.system_id,
                             anchored=True)
    return c.CommandOutcome(True, f"re-copied {', '.join(names)}; the stream catches up from there",
                            details={"tables": names})
