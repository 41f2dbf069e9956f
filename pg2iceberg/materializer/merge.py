"""Apply a folded batch to an Iceberg table as ONE copy-on-write commit.

Pick the data files that may hold a changed key from the manifests' key bounds, read only
their key columns, and rewrite only the files with hits: their surviving rows and the new
images are written as new files, and one overwrite snapshot swaps them in, carrying the
stream position in its summary. No equality deletes are ever written. A batch too big for
memory is applied chunk by chunk into the same pending commit (:class:`PendingOverwrite`).

Idempotence: the caller applies stream data only past the position recorded in the table's
current snapshot, and the data and the position land in the same commit. A batch is thus
applied exactly once, whatever crashes between the commit and the cursor update.

A batch that brings a schema change may carry a :class:`Backfill`: it is applied to every
row the commit writes, and every other data file whose rows it changes is rewritten too, in
the same commit (so the new schema, the backfilled values and the position land together).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.conversions import from_bytes
from pyiceberg.manifest import DataFile

from pg2iceberg.errors import TerminalError
from pg2iceberg.iceberg.tables import IcebergTarget
from pg2iceberg.materializer.backfill import Backfill
from pg2iceberg.materializer.fold import UNCHANGED, Folded, storage_keys

_ROW = "_row"


@dataclass(frozen=True, slots=True)
class MergeResult:
    """What one commit did."""

    rows_upserted: int
    rows_deleted: int
    files_rewritten: int
    files_added: int


def _candidate_files(target: IcebergTarget, files: list[DataFile], touched: pa.Table) -> list[DataFile]:
    """Files whose first-key bounds may contain a touched key."""
    if not files:
        return []
    first = target.key_columns[0]
    field = target.table.schema().find_field(first)
    column = touched.column(first).drop_null()
    if pa.types.is_integer(column.type):
        return _candidates_by_int_bounds(files, field.field_id, field.field_type, column)
    try:
        values = sorted(column.to_pylist())
    except TypeError:
        return files
    out = []
    for f in files:
        lower, upper = (f.lower_bounds or {}).get(field.field_id), (f.upper_bounds or {}).get(field.field_id)
        if lower is None or upper is None or not values:
            out.append(f)
            continue
        try:
            lo, hi = from_bytes(field.field_type, lower), from_bytes(field.field_type, upper)
            i = bisect.bisect_left(values, _comparable(lo, values[0]))
            if i < len(values) and values[i] <= _comparable(hi, values[0]):
                out.append(f)
        except (TypeError, ValueError):
            out.append(f)
    return out


def _candidates_by_int_bounds(files: list[DataFile], field_id: int, field_type: Any,
                              column: pa.ChunkedArray) -> list[DataFile]:
    """The integer-key case without a Python object per touched key (batches of a million
    keys): one Arrow sort, then a binary search over it for each file's lower bound."""
    keys = pa.concat_arrays(column.chunks) if column.num_chunks else pa.array([], column.type)
    values = keys.take(pc.array_sort_indices(keys))
    n = len(values)
    out = []
    for f in files:
        lower, upper = (f.lower_bounds or {}).get(field_id), (f.upper_bounds or {}).get(field_id)
        if lower is None or upper is None or not n:
            out.append(f)
            continue
        lo, hi = from_bytes(field_type, lower), from_bytes(field_type, upper)
        left, right = 0, n  # first index whose value is >= lo
        while left < right:
            mid = (left + right) // 2
            if values[mid].as_py() < lo:
                left = mid + 1
            else:
                right = mid
        if left < n and values[left].as_py() <= hi:
            out.append(f)
    return out


def _comparable(bound: Any, sample: Any) -> Any:
    if isinstance(sample, bytes) and not isinstance(bound, bytes):
        return getattr(bound, "bytes", bound)
    return bound


def _hits(file_keys: pa.Table, touched: pa.Table, keys: tuple[str, ...]) -> pa.Array:
    """Row numbers of ``file_keys`` whose key is among ``touched``."""
    left = storage_keys(file_keys, keys).append_column(_ROW, pa.array(range(file_keys.num_rows), pa.int64()))
    right = storage_keys(touched, keys)
    joined = left.join(right, keys=list(keys), join_type="left semi", use_threads=False)
    return joined.column(_ROW).combine_chunks() if joined.num_rows else pa.array([], pa.int64())


class PendingOverwrite:
    """One copy-on-write commit, assembled from any number of folded chunks in bounded memory.

    ``live`` is the table as the commit will leave it so far: the snapshot's files not yet
    replaced, plus the files this overwrite has written. Each chunk rewrites the live files
    that hold one of its keys, one file at a time (its survivors are written at once), then
    writes its new images; a file written by an earlier chunk and hit again is simply
    replaced (it was never committed, so it is deleted). Memory is one chunk plus one data
    file, whatever the size of the transaction or the table. :meth:`commit` swaps everything
    in with one snapshot; :meth:`abandon` deletes what was written, for a batch that fails
    before its commit starts (never after: a commit whose outcome is unknown may have landed).
    """

    def __init__(self, target: IcebergTarget, backfill: Backfill | None = None):
        self.target = target
        self.backfill = backfill
        self.live: list[DataFile] = target.data_files()
        self._committed = {f.file_path for f in self.live}
        self.removed: list[DataFile] = []  # committed files the commit takes out
        self.upserted = self.deleted = 0

    @property
    def added(self) -> list[DataFile]:
        """The files this overwrite wrote that are still live."""
        return [f for f in self.live if f.file_path not in self._committed]

    def apply(self, folded: Folded) -> None:
        """Apply one folded chunk (chunks in commit order) to the live files."""
        target = self.target
        keys = target.key_columns
        if folded.truncate:
            self.drop_all()
        touched = folded.touched_keys
        old_rows: list[pa.Table] = []
        if touched.num_rows and self.live:
            candidates = {f.file_path for f in _candidate_files(target, self.live, touched)}
            live: list[DataFile] = []
            for f in self.live:
                hit_rows = (_hits(target.read_file(f, list(keys)), touched, keys)
                            if f.file_path in candidates else [])
                if len(hit_rows) == 0:
                    live.append(f)
                    continue
                full = target.conform(target.read_file(f))
                mask = pc.is_in(pa.array(range(full.num_rows), pa.int64()), value_set=hit_rows)
                old_rows.append(full.take(hit_rows))
                self.drop(f)
                live += self.write(full.filter(pc.invert(mask)))
            self.live = live
        upserts = folded.upserts
        if upserts.num_rows and pc.any(pc.is_valid(upserts.column(UNCHANGED))).as_py():
            upserts = _fill_unchanged_from_table(upserts, old_rows, keys, target.info.display_name,
                                                 folded.moved_from)
        schema = target.arrow_schema()
        self.live += self.write(upserts.drop_columns([UNCHANGED]).select(schema.names).cast(schema))
        self.upserted += upserts.num_rows
        self.deleted += folded.delete_keys.num_rows

    def commit(self, *, lsn: int, system_id: str) -> MergeResult:
        """Swap the rewritten files in with one snapshot at ``lsn`` (the backfill, if any,
        also rewrites every untouched file whose rows it changes)."""
        if self.backfill is not None:
            rewritten = {f.file_path for f in self.removed}
            live = []
            for f in self.live:
                if f.file_path in self._committed and f.file_path not in rewritten:
                    data = self.target.conform(self.target.read_file(f))
                    if self.backfill.touches(data):
                        self.drop(f)
                        live += self.write(data)
                        continue
                live.append(f)
            self.live = live
        added = self.added
        self.target.commit_files(delete=self.removed, add=added, lsn=lsn, system_id=system_id)
        return MergeResult(rows_upserted=self.upserted, rows_deleted=self.deleted,
                           files_rewritten=len(self.removed), files_added=len(added))

    def abandon(self) -> None:
        """Delete the files written for a commit that will not happen (best effort; the
        maintenance's orphan sweep gets any left)."""
        for f in self.added:
            self._delete_uncommitted(f)
        self.live = []

    def drop_all(self) -> None:
        """Empty the table (a TRUNCATE): every live file is dropped."""
        for f in self.live:
            self.drop(f)
        self.live = []

    def drop(self, f: DataFile) -> None:
        """Take ``f`` out of the table: a committed file is removed by the commit, a file
        written for this commit is deleted now."""
        if f.file_path in self._committed:
            self.removed.append(f)
        else:
            self._delete_uncommitted(f)

    def _delete_uncommitted(self, f: DataFile) -> None:
        try:
            self.target.table.io.delete(f.file_path)
        except OSError:
            pass

    def write(self, data: pa.Table) -> list[DataFile]:
        """Write ``data`` as new files for this commit (backfilled, if there is a backfill);
        the caller adds them to ``live``."""
        if self.backfill is not None:
            data = self.backfill.fill(data)
        return self.target.write_data_files(data)


def _fill_unchanged_from_table(upserts: pa.Table, old_rows: list[pa.Table], keys: tuple[str, ...],
                               table_name: str, moved_from: dict[tuple, tuple]) -> pa.Table:
    """Fill unchanged-TOAST columns from the row currently in Iceberg (the old key's row when
    the key changed); refuse to guess."""
    previous: dict[tuple, dict] = {}
    for chunk in old_rows:
        for row in chunk.to_pylist():
            previous[tuple(row[k] for k in keys)] = row
    rows = upserts.to_pylist()
    for row in rows:
        missing = row[UNCHANGED]
        if not missing:
            continue
        key = tuple(row[k] for k in keys)
        old = previous.get(key) if key not in moved_from else previous.get(moved_from[key])
        if old is None:
            raise TerminalError(
                f"{table_name}: an UPDATE of key {key} left TOASTed column(s) {missing} unchanged, "
                "but no earlier value of that row is known (not in this batch, not in Iceberg). "
                "Refusing to write a wrong row; re-snapshot this table.")
        for col in missing:
            row[col] = old[col]
        row[UNCHANGED] = None
    return pa.Table.from_pylist(rows, schema=upserts.schema)
