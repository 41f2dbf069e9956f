"""Backfill: set some columns of every Iceberg row to the value the source holds now.

After ADD COLUMN (or a type change PostgreSQL applied by rewriting the table), existing rows
show values that no WAL record carries. :class:`Backfill` holds, for every key whose new
columns are not all NULL in the source, those current values (read by
:func:`pg2iceberg.source.backfill.read_current_values`, converted by the stream path), and
replaces the columns of any Arrow table of the Iceberg table with them: the source's value
for a key it holds, NULL for any other key. The merge applies it to the rows it rewrites
anyway and rewrites every other data file it changes, all in the batch's one commit; why
reading values newer than the batch is safe is written in :mod:`pg2iceberg.iceberg.evolution`.
Memory: the keys and values of the rows with a non-NULL value, nothing else.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from pg2iceberg.materializer.fold import storage_keys

_ROW = "_backfill_row"
_VALUE_ROW = "_backfill_value_row"


class Backfill:
    """Current source values of ``columns`` per key (``values``: key columns + ``columns``)."""

    def __init__(self, keys: tuple[str, ...], columns: tuple[str, ...], values: pa.Table):
        self.keys = keys
        self.columns = columns
        self.values = values.select([*keys, *columns])
        self._right = storage_keys(self.values, keys).append_column(
            _VALUE_ROW, pa.array(range(values.num_rows), pa.int64()))

    @property
    def rows(self) -> int:
        """How many source rows hold a value."""
        return self.values.num_rows

    def _matches(self, data: pa.Table) -> pa.ChunkedArray:
        """For each row of ``data``, the row of ``values`` with its key, or null."""
        left = storage_keys(data, self.keys).append_column(_ROW, pa.array(range(data.num_rows), pa.int64()))
        joined = left.join(self._right, keys=list(self.keys), join_type="left outer", use_threads=False)
        return joined.sort_by(_ROW).column(_VALUE_ROW)

    def touches(self, data: pa.Table) -> bool:
        """True when :meth:`fill` would change ``data``."""
        if data.num_rows == 0:
            return False
        if any(data.column(c).null_count < data.num_rows for c in self.columns):
            return True
        return self.rows > 0 and pc.any(pc.is_valid(self._matches(data))).as_py() is True

    def fill(self, data: pa.Table) -> pa.Table:
        """``data`` with ``columns`` replaced by the source's current values (NULL if none)."""
        if data.num_rows == 0:
            return data
        take = self._matches(data)
        for name in self.columns:
            index = data.schema.get_field_index(name)
            column = self.values.column(name).take(take)
            data = data.set_column(index, data.schema.field(index), column.cast(data.schema.field(index).type))
        return data
