"""Help: every binding of the console, listed from the declared bindings themselves."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

NAVIGATION = (("tab / shift+tab", "move between panes"),
              ("arrows, pgup/pgdn, home/end", "move and scroll inside the focused pane"),
              ("escape", "close a dialog"), ("ctrl+q", "quit (same as q)"))


def key_label(key: str) -> str:
    """Keys as the operator types them (``question_mark`` → ``?``)."""
    return {"question_mark": "?"}.get(key, key)


def help_rows(bindings: Iterable[Binding]) -> list[tuple[str, str]]:
    """(keys, what it does) for each binding, merging bindings that share an action's key."""
    rows: dict[str, list[str]] = {}
    for binding in bindings:
        text = binding.tooltip or binding.description
        rows.setdefault(key_label(binding.key), [])
        if text not in rows[key_label(binding.key)]:
            rows[key_label(binding.key)].append(text)
    return [(key, " / ".join(texts)) for key, texts in rows.items()]


def help_table(rows: Sequence[tuple[str, str]]) -> Table:
    """The bindings and navigation keys as a two-column table."""
    table = Table(box=None, show_header=False, padding=(0, 2, 0, 0))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for key, text in [*rows, *NAVIGATION]:
        table.add_row(key, text)
    return table


class HelpScreen(ModalScreen[None]):
    """Lists every binding; escape, ? or q closes it."""

    BINDINGS = [Binding("escape,question_mark,q", "close", "Close")]

    def __init__(self, rows: Sequence[tuple[str, str]]):
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        """The dialog."""
        with VerticalScroll(id="dialog") as dialog:
            dialog.border_title = "Keys"
            dialog.border_subtitle = "escape closes"
            yield Static(help_table(self.rows))

    def action_close(self) -> None:
        """Back to the console."""
        self.dismiss(None)
