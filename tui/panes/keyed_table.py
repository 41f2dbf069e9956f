"""A DataTable whose rows are replaced in place by key, so cursor and scroll survive refreshes."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import DataTable

Cell = str | Text
Row = tuple[str, tuple[Cell, ...]]  # (row key, cells in column order)


def right(text: str) -> Text:
    """A right-aligned cell (numbers line up)."""
    return Text(text, justify="right")


class KeyedTable(DataTable[Cell]):
    """Rows keyed by a stable name; :meth:`sync` adds, updates and removes rows by key."""

    def __init__(self, columns: Sequence[tuple[str, str]], *, title: str, id: str | None = None):
        super().__init__(id=id, cursor_type="row", zebra_stripes=False, show_cursor=True)
        self._columns = tuple(columns)  # (key, label)
        self.border_title = title

    def on_mount(self) -> None:
        """Create the columns once."""
        for key, label in self._columns:
            self.add_column(label, key=key)

    def sync(self, rows: Sequence[Row]) -> None:
        """Make the table show ``rows``: unchanged cells are left alone, gone keys removed."""
        wanted = {key for key, _ in rows}
        for key in [k.value for k in self.rows if k.value not in wanted]:
            self.remove_row(key)
        for key, cells in rows:
            if key not in self.rows:
                self.add_row(*cells, key=key)
                continue
            for (column, _), cell in zip(self._columns, cells):
                if self.get_cell(key, column) != cell:
                    self.update_cell(key, column, cell, update_width=True)
