"""Choosing the table an action applies to: one configured table or all of them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList
from textual.widgets.option_list import Option

ALL = "\x00all"  # option id of "every table" (not a valid table name)


@dataclass(frozen=True, slots=True)
class TableChoice:
    """The operator's pick; ``table`` None means every table."""

    table: str | None


class TableChooser(ModalScreen[TableChoice | None]):
    """A list of "all tables" and each table; Enter picks, escape cancels (None)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, tables: Sequence[str]):
        super().__init__()
        self.title_text = title
        self.tables = tuple(tables)

    def compose(self) -> ComposeResult:
        """The dialog."""
        with Vertical(id="dialog") as dialog:
            dialog.border_title = self.title_text
            dialog.border_subtitle = "enter picks · escape cancels"
            yield OptionList(Option("all tables", id=ALL), *(Option(t, id=t) for t in self.tables))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        """Dismiss with the chosen table."""
        picked = event.option.id
        self.dismiss(TableChoice(None if picked == ALL else picked))

    def action_cancel(self) -> None:
        """Escape cancels."""
        self.dismiss(None)
