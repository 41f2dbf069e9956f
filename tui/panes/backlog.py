"""Stream backlog pane: per table, what is staged but not yet materialized."""

from __future__ import annotations

from pg2iceberg.runtime.status import PipelineStatus
from tui import format as f
from tui.panes.keyed_table import KeyedTable, Row, right

COLUMNS = (("table", "table"), ("rows", "rows"), ("bytes", "bytes"), ("oldest", "oldest"),
           ("files", "files"))


def backlog_rows(status: PipelineStatus) -> list[Row]:
    """One row per table: staged files, rows, bytes and the age of the oldest."""
    return [(t.name, (t.name, right(f.count(t.backlog_rows)), right(f.size(t.backlog_bytes)),
                      right(f.duration(t.backlog_oldest_age_s)), right(f.count(t.backlog_files))))
            for t in status.tables]


class BacklogPane(KeyedTable):
    """The backlog table."""

    def __init__(self, *, id: str | None = None):
        super().__init__(COLUMNS, title="Stream backlog", id=id)

    def show(self, status: PipelineStatus) -> None:
        """Render a new snapshot."""
        self.sync(backlog_rows(status))
