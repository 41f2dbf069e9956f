"""The ``Verify`` command: compare every (or the given) configured table, report each one.

Per table the result is one of: ``equal``; ``different`` (missing / extra / different rows,
with the first differing keys); ``behind`` (the Iceberg table lacks source changes that no
running pipeline will bring within :data:`WAIT_S`, or that are pending while no pipeline
runs: "behind by N bytes", not a corruption); ``missing_table`` (no Iceberg table).
Only ``equal`` everywhere exits 0; anything else exits 3. Each result is a ``verify_table``
event and a line on stderr; the outcome's summary sums them up. Nothing is changed.

With no pipeline running the WAL moves on anyway, so a table whose data is equal is
``equal`` even if its recorded position is older than the current WAL position; a table
whose data differs is ``behind`` only if the slot holds unapplied changes of that table.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from pyiceberg.exceptions import NoSuchTableError

from pg2iceberg.config import TableConfig
from pg2iceberg.errors import TerminalError
from pg2iceberg.iceberg.tables import IcebergTarget, open_catalog
from pg2iceberg.iceberg.typemap import column_type
from pg2iceberg.lsn import format_lsn
from pg2iceberg.runtime import commands as c
from pg2iceberg.source import preflight
from pg2iceberg.source.connection import connect
from pg2iceberg.verify import positions, table as vt
from pg2iceberg.verify.compare import format_key

if TYPE_CHECKING:
    from pg2iceberg.runtime.supervisor import Supervisor

log = logging.getLogger("pg2iceberg")
WAIT_S = 120.0  # how long to wait for a running pipeline to reach the verify point
RECHECKS = 3  # rereads of keys that differed, each after a fresh target
MAX_KEYS_SHOWN = 10
EXIT_DIFFERENT = 3


@dataclass(frozen=True, slots=True)
class TableResult:
    """The verdict on one table."""

    table: str
    iceberg_name: str
    status: str  # equal, different, behind, missing_table
    source_rows: int = 0
    iceberg_rows: int = 0
    missing: int = 0
    extra: int = 0
    different: int = 0
    first_keys: tuple[str, ...] = ()
    raced: int = 0  # keys that differed at first and matched on the recheck
    chunks: int = 0  # key ranges compared
    target_lsn: str | None = None
    complete_lsn: str | None = None
    behind_bytes: int | None = None
    note: str = ""

    def line(self) -> str:
        """One human line."""
        if self.status == "equal":
            return f"{self.table}: equal ({self.source_rows} rows)"
        if self.status == "missing_table":
            return f"{self.table}: different: Iceberg table {self.iceberg_name} does not exist ({self.note})"
        counts = f"{self.missing} missing, {self.extra} extra, {self.different} different"
        keys = f"; first keys: {' | '.join(self.first_keys)}" if self.first_keys else ""
        if self.status == "behind":
            gap = "" if self.behind_bytes is None else f" by {self.behind_bytes} bytes"
            return f"{self.table}: behind{gap} ({self.note}; {counts}){keys}"
        return f"{self.table}: different: {counts}{keys}"


def _verify_one(sup: "Supervisor", catalog: Any, src: Any, state: Any, t: TableConfig) -> TableResult:
    cfg = sup.config
    iceberg_name = f"{cfg.sink.namespace}.{t.iceberg_name}"
    info = preflight.describe_configured(src, [t])[0]
    if not info.primary_key:
        raise TerminalError(f"verify: table {t.name} has no primary key, which verify does not support yet; "
                            "verify the other tables with --table")
    try:
        table = catalog.load_table((cfg.sink.namespace, t.iceberg_name))
    except NoSuchTableError:
        rows = src.execute(f"SELECT count(*) FROM {info.qualified_sql}").fetchone()[0]
        return TableResult(t.name, iceberg_name, "missing_table", source_rows=int(rows),
                           note=f"{rows} source rows; start the pipeline to create it")
    target = IcebergTarget(info=info, table=table,
                           column_types=tuple(column_type(col) for col in info.columns if not col.generated))
    slot, schema = cfg.source.slot_name, cfg.state.coordinator_schema

    def read_complete() -> int | None:
        table.refresh()
        return positions.complete_lsn(state, schema, slot, t.name, positions.iceberg_position(table))

    position = vt.waiter(read_complete, lambda: bool(positions.slot_active(src, slot)), WAIT_S)
    first = vt.full_pass(cfg.source.postgres.dsn, target, position)
    final, raced = first, 0
    if first.diff:
        checked = first.diff.keys()
        for attempt in range(RECHECKS):  # a key changed again in the next window is read once more
            hold = attempt == RECHECKS - 1 and final.caught_up  # the last one holds the rows still
            final = vt.recheck(cfg.source.postgres.dsn, target, position, final.diff.keys(), hold_rows=hold)
            if not final.diff:
                break
        raced = len(checked) - len(final.diff.keys())
        unchecked = {k: first.counts[k] - len(getattr(first.diff, k)) for k in first.counts}
        final.counts = {k: final.counts[k] + unchecked[k] for k in final.counts}
    common = dict(source_rows=first.source_rows, iceberg_rows=first.iceberg_rows, raced=raced, chunks=first.chunks,
                  target_lsn=format_lsn(final.target_lsn), complete_lsn=format_lsn(final.complete_lsn))
    if not final.diff and not any(final.counts.values()):
        return TableResult(t.name, iceberg_name, "equal", **common)
    shown = tuple(format_key(target.key_columns, k) for k in final.diff.keys()[:MAX_KEYS_SHOWN])
    counts = dict(missing=final.counts["missing"], extra=final.counts["extra"], different=final.counts["different"])
    behind_note = _behind(src, sup, info.oid, final)
    if behind_note:
        gap = None if final.complete_lsn is None else final.target_lsn - final.complete_lsn
        return TableResult(t.name, iceberg_name, "behind", first_keys=shown, behind_bytes=gap,
                           note=behind_note, **counts, **common)
    return TableResult(t.name, iceberg_name, "different", first_keys=shown, **counts, **common)


def _behind(src: Any, sup: "Supervisor", oid: int, result: vt.Pass) -> str:
    """Why the differences are lag rather than corruption ("" when they are not)."""
    cfg = sup.config
    if result.complete_lsn is None:
        return "its initial copy has not been committed yet"
    if result.caught_up:
        return ""
    active = positions.slot_active(src, cfg.source.slot_name)
    if active:
        return f"the running pipeline did not reach the verify point within {WAIT_S:.0f}s"
    if active is None:
        return ""
    pending = positions.tables_with_changes_after(src, cfg.source.slot_name, cfg.source.publication_name,
                                                  {oid}, result.complete_lsn)
    return "no pipeline is running and the slot holds changes not applied yet" if pending else ""


def verify(sup: "Supervisor", command: c.Verify) -> c.CommandOutcome:
    """Compare PostgreSQL with Iceberg, table by table."""
    cfg = sup.config
    chosen = [cfg.table(name) for name in command.tables] if command.tables else list(cfg.tables)
    catalog = open_catalog(cfg)
    results: list[TableResult] = []
    with connect(cfg.source.postgres.dsn, application_name="pg2iceberg-verify") as src, \
            connect(cfg.state.postgres.dsn, application_name="pg2iceberg-verify") as state:
        preflight.check_server(src, needs_slot=False)
        for t in chosen:
            if sup.stop_event.is_set():
                raise TerminalError("verify stopped before it finished")
            result = _verify_one(sup, catalog, src, state, t)
            results.append(result)
            sup.events.emit("verify_table", **asdict(result))
            log.info("verify %s", result.line())
    bad = [r for r in results if r.status != "equal"]
    if bad:
        summary = f"verify: {len(bad)} of {len(results)} tables not equal: " + "; ".join(r.line() for r in bad)
    else:
        summary = f"verify: all {len(results)} tables equal"
    details = {"tables": [asdict(r) for r in results]}
    return c.CommandOutcome(ok=not bad, summary=summary, details=details, exit_code=EXIT_DIFFERENT if bad else 0)
