"""The coordinator's per-cycle questions are asked once for all tables, and answered right."""

from __future__ import annotations

from pg2iceberg.stream.coordinator import Coordinator, NewLogEntry


def _coordinator(url: str) -> Coordinator:
    coord = Coordinator(url, "pg2iceberg_test_q")
    coord.ensure_schema()
    # (table, first, last, rows, bytes): a holds two files, b one, idle none
    files = [("a", 10, 20, 5, 100), ("a", 21, 40, 7, 300), ("b", 15, 30, 2, 50)]
    coord.register_flush("slot", [NewLogEntry(t, f"/x/{t}-{last}", first, last, rows, size)
                                  for t, first, last, rows, size in files], 40)
    return coord


def test_tables_with_entries_after_their_positions(pg_url: str) -> None:
    coord = _coordinator(pg_url)
    try:
        assert coord.tables_with_entries_after({"a": -1, "b": -1, "idle": -1}) == {"a", "b"}
        assert coord.tables_with_entries_after({"a": 20, "b": 30, "idle": 0}) == {"a"}
        assert coord.tables_with_entries_after({"a": 40, "b": 29}) == {"b"}
        assert coord.tables_with_entries_after({"a": 40, "b": 30, "idle": 0}) == set()
        assert coord.tables_with_entries_after({}) == set()
    finally:
        coord.close()


def test_backlog_of_every_table_in_one_answer(pg_url: str) -> None:
    coord = _coordinator(pg_url)
    try:
        backlog = coord.backlog({"a": 20, "b": 0, "idle": 0})
        assert {name: row[:3] for name, row in backlog.items()} == {
            "a": (1, 7, 300), "b": (1, 2, 50), "idle": (0, 0, 0)}
        assert backlog["idle"][3] is None and backlog["a"][3] >= 0
        assert coord.backlog({"a": -1})["a"][:3] == (2, 12, 400)
    finally:
        coord.close()
