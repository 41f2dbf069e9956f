"""WAL pane: server and slot positions, lag, retained WAL, slot health, throughput."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from pg2iceberg.runtime.status import PipelineStatus
from tui import format as f

LABEL_WIDTH = 11
_BAD_WAL = ("unreserved", "lost")  # the slot may lose (or has lost) WAL it needs


def slot_health(status: PipelineStatus) -> tuple[str, str]:
    """The slot's health as words, and a style ("" when healthy)."""
    active = {True: "active", False: "inactive", None: f.DASH}[status.slot_active]
    wal = status.wal_status or f.DASH
    if status.wal_status in _BAD_WAL:
        return f"{active} · wal {wal.upper()}!", "bold red"
    return f"{active} · wal {wal}", "" if status.slot_active is not False else "yellow"


def wal_text(status: PipelineStatus, width: int) -> Text:
    """The pane's lines for a pane ``width`` cells wide."""
    text = Text(no_wrap=True, overflow="ellipsis")

    def line(label: str, value: str, style: str = "") -> None:
        text.append(f"{label:<{LABEL_WIDTH}}", style="dim")
        text.append(value, style=style)
        text.append("\n")

    line("server", f.lsn(status.server_lsn))
    line("confirmed", f.lsn(status.confirmed_lsn))
    line("lag", f"{f.size(status.lag_bytes)} · {f.duration(status.lag_s)}")
    line("retained", f.size(status.retained_bytes))
    line("slot", *slot_health(status))
    throughput = f.rate(status.changes_per_s)
    spark = f.sparkline(status.changes_history, max(0, width - LABEL_WIDTH - len(throughput) - 1))
    text.append(f"{'changes':<{LABEL_WIDTH}}", style="dim")
    text.append(throughput)
    if spark:
        text.append(" " + spark, style="green")
    return text


class WalPane(Static):
    """Shows :func:`wal_text` of the latest snapshot."""

    def __init__(self, *, id: str | None = None):
        super().__init__(id=id)
        self.border_title = "WAL"
        self._status = PipelineStatus()

    def show(self, status: PipelineStatus) -> None:
        """Render a new snapshot."""
        self._status = status
        self.update(wal_text(status, self.content_size.width))

    def on_resize(self) -> None:
        """The sparkline follows the pane's width."""
        self.update(wal_text(self._status, self.content_size.width))
