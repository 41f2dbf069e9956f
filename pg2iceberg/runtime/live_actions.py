"""Commands that act on a running streaming pipeline: pause, resume, re-snapshot a table.

Re-snapshot contract: a temporary logical slot is created with an exported snapshot; its
consistent point L is exact: every transaction committed at or before L is in the snapshot,
every later one is streamed after L. The materializer leaves the table alone for the whole
copy (``Pipeline.copying``; other tables keep being applied), so no batch of it commits in
between. The copy's single commit
replaces every data file of the table and records L as the table's position; the
materializer then applies the stream after L. This stays right even when the source changed
without logical changes for the table (a partition attached, detached or truncated alone).
Stream files straddling L are re-applied whole, which is idempotent (last image per key
wins). A crash mid-copy leaves the copy ``running``, which the next start resumes like any
interrupted initial copy.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import TYPE_CHECKING

from pg2iceberg.errors import TerminalError
from pg2iceberg.runtime import commands as c
from pg2iceberg.runtime.pipeline import Pipeline
from pg2iceberg.source.replication import ReplicationConnection

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
    cfg = sup.config
    repl = ReplicationConnection(cfg.source.postgres.dsn, f"{cfg.source.slot_name}_copy_{os.getpid()}")
    with pipeline.materialize_lock:  # the cycle in progress ends; later ones leave these alone
        pipeline.copying.update(names)
    try:
        created = repl.create_slot(temporary=True)
        pipeline.copy_tables({name: created.consistent_lsn for name in names}, pipeline.targets,
                             snapshot_name=created.snapshot_name, system_id=pipeline.system_id,
                             anchored=True)
    finally:
        repl.close()  # drops the temporary slot
        pipeline.copying.difference_update(names)
    return c.CommandOutcome(True, f"re-copied {', '.join(names)}; the stream catches up from there",
                            details={"tables": names})
