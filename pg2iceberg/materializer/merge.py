"""Apply a folded batch to an Iceberg table as ONE copy-on-write commit.

Pick the data files that may hold a changed key from the manifests' key bounds, read only
their key columns, and rewrite only the files with hits: their surviving rows plus the new
images are written as new files, and one overwrite snapshot swaps them in, carrying the
stream position in its summary. No equality deletes are ever written.

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


def merge_batch(target: IcebergTarget, folded: Folded, *, lsn: int, system_id: str,
                backfill: Backfill | None = None) -> MergeResult:
    """Commit ``folded`` (and ``backfill``, if any) to ``target`` in one snapshot at ``lsn``."""
    keys = target.key_columns
    schema = target.arrow_schema()
    upserts = folded.upserts
    files = target.data_files()
    touched = folded.touched_keys
    rewritten: list[DataFile] = []
    survivors: list[pa.Table] = []
    old_rows: list[pa.Table] = []
    if folded.truncate:
        rewritten = files
    elif touched.num_rows:
        for f in _candidate_files(target, files, touched):
            hit_rows = _hits(target.read_file(f, list(keys)), touched, keys)
            if len(hit_rows) == 0:
                continue
            full = target.conform(target.read_file(f))
            mask = pc.is_in(pa.array(range(full.num_rows), pa.int64()), value_set=hit_rows)
            survivors.append(full.filter(pc.invert(mask)))
            old_rows.append(full.take(hit_rows))
            rewritten.append(f)
    if upserts.num_rows and pc.any(pc.is_valid(upserts.column(UNCHANGED))).as_py():
        upserts = _fill_unchanged_from_table(upserts, old_rows, keys, target.info.display_name,
                                             folded.moved_from)
    images = upserts.drop_columns([UNCHANGED]).select(schema.names).cast(schema)
    new_data = pa.concat_tables([*survivors, images]) if survivors else images
    if backfill is not None:
        new_data = backfill.fill(new_data)
    added = target.write_data_files(new_data)
    if backfill is not None:
        done = {f.file_path for f in rewritten}
        for f in files:
            if f.file_path in done:
                continue
            data = target.conform(target.read_file(f))
            if backfill.touches(data):
                rewritten.append(f)
                added += target.write_data_files(backfill.fill(data))
    deleted_rows = folded.delete_keys.num_rows
    target.commit_files(delete=rewritten, add=added, lsn=lsn, system_id=system_id)
    return MergeResult(rows_upserted=upserts.num_rows, rows_deleted=deleted_rows,
                       files_rewritten=len(rewritten), files_added=len(added))


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
