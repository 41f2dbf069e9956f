"""Tables pane: per Iceberg table, rows and files, snapshots, last commit, initial-copy progress."""

from __future__ import annotations

from rich.text import Text

from pg2iceberg.runtime.status import PipelineStatus, SnapshotProgress, TableStatus
from tui import format as f
from tui.panes.keyed_table import KeyedTable, Row, right

COLUMNS = (("table", "table"), ("copy", "snapshot copy"), ("rows", "rows"), ("commit", "last commit"),
           ("data", "data files"), ("deletes", "delete files"), ("snapshots", "snapshots"))
BAR_WIDTH = 10


def copy_progress(p: SnapshotProgress | None) -> Text:
    """An initial copy as a bar with percentage, rate and ETA; ``done`` once finished."""
    if p is None:
        return Text(f.DASH)
    if p.done:
        return Text(f"done · {f.count(p.rows)} rows")
    done = f.fraction_done(p.rows, p.total_rows_estimate)
    rate = f.rate(p.rows_per_s)
    if done is None:
        return Text(f"{f.count(p.rows)} rows · {rate}")
    text = Text(f.progress_bar(done, BAR_WIDTH), style="cyan")
    text.append(f" {done:4.0%} {rate} ETA {f.eta(p.rows, p.total_rows_estimate, p.rows_per_s)}")
    return text


def table_row(t: TableStatus, now: float) -> Row:
    """The cells of one table."""
    return (t.name, (t.name, copy_progress(t.snapshot), right(f.count(t.rows)),
                     right(f.ago(t.last_commit_at, now)), right(f.count(t.data_files)),
                     right(f.count(t.delete_files)), right(f.count(t.snapshots))))


def table_rows(status: PipelineStatus, now: float) -> list[Row]:
    """One row per replicated table."""
    return [table_row(t, now) for t in status.tables]


class TablesPane(KeyedTable):
    """The tables table."""

    def __init__(self, *, id: str | None = None):
        super().__init__(COLUMNS, title="Iceberg tables", id=id)

    def show(self, status: PipelineStatus, now: float) -> None:
        """Render a new snapshot."""
        self.sync(table_rows(status, now))
