"""Workers pane: per consumer group and worker, heartbeat, cursor, last commit and state."""

from __future__ import annotations

from rich.text import Text

from pg2iceberg.runtime.status import PipelineStatus
from tui import format as f
from tui.panes.keyed_table import KeyedTable, Row, right

COLUMNS = (("group", "group"), ("id", "worker"), ("state", "state"), ("heartbeat", "heartbeat"),
           ("cursor", "cursor"), ("commit", "last commit"), ("tables", "tables"))
_STATE_STYLE = {"running": "", "lagging": "bold yellow", "dead": "bold red"}


def worker_rows(status: PipelineStatus, now: float) -> list[Row]:
    """One row per worker, keyed by group and id."""
    rows: list[Row] = []
    for w in status.workers:
        state = w.state if w.alive or w.state == "dead" else "dead"
        rows.append((f"{w.group}/{w.id}", (
            f.or_dash(w.group), w.id, Text(state.upper() if state != "running" else state,
                                           style=_STATE_STYLE.get(state, "")),
            right(f.duration(w.heartbeat_age_s)), right(f.lsn(w.cursor_lsn)),
            right(f.ago(w.last_commit_at, now)), ", ".join(w.tables) or f.DASH)))
    return rows


class WorkersPane(KeyedTable):
    """The workers table."""

    def __init__(self, *, id: str | None = None):
        super().__init__(COLUMNS, title="Workers and cursors", id=id)

    def show(self, status: PipelineStatus, now: float) -> None:
        """Render a new snapshot."""
        self.sync(worker_rows(status, now))
