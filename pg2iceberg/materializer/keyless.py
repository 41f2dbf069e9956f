"""Apply a batch to a table without a key (REPLICA IDENTITY FULL): full-row matching.

Rows are a multiset: the source may hold the same row several times, and Iceberg must hold
it exactly as often. Under REPLICA IDENTITY FULL pgoutput sends the whole old row of every
UPDATE and DELETE, so each change is "one copy of row R goes" and/or "one copy of row S
comes". Multiset additions and removals commute, so a batch reduces to a net count per
distinct row image; removals then take away that many copies from the Iceberg files (the
first files that hold them), additions are appended, all in ONE commit with the position.
A removal that finds no copy means Iceberg no longer equals the source: that is a terminal
error (re-snapshot the table), never a silent skip.

Unchanged TOASTed columns of an UPDATE's new row are taken from its old row, which comes
right before it in the stream (PostgreSQL sends the full old row under FULL).

This path is row-by-row Python over the batch and over the files holding removed rows; it
is meant for the tables that have no key, which are rarely the big ones.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, Iterable

import pyarrow as pa

from pg2iceberg.errors import TerminalError
from pg2iceberg.iceberg.tables import IcebergTarget
from pg2iceberg.materializer.merge import MergeResult
from pg2iceberg.stream.files import OP_COLUMN, UNCHANGED_COLUMN, Op

_NAN = ("NaN",)  # a stand-in that equals itself, for float NaN inside row identities


def _identity(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_identity(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _identity(v)) for k, v in value.items()))
    if isinstance(value, float) and math.isnan(value):
        return _NAN
    return value


def row_identity(row: dict[str, Any], columns: Iterable[str]) -> tuple:
    """A hashable identity of a row's values (lists as tuples, NaN equal to NaN)."""
    return tuple(_identity(row[c]) for c in columns)


def net_changes(changes: pa.Table, columns: list[str]) -> tuple[Counter, dict[tuple, dict], bool]:
    """The batch's net count per row image, an example row per image, and whether it truncates."""
    counts: Counter = Counter()
    images: dict[tuple, dict] = {}
    truncated = False
    previous: dict[str, Any] | None = None
    for row in changes.to_pylist():
        op = row[OP_COLUMN]
        if op == Op.TRUNCATE:
            counts.clear()
            images.clear()
            truncated = True
            previous = None
            continue
        values = {c: row[c] for c in columns}
        removal = op in (Op.DELETE, Op.MOVE)
        if not removal and row[UNCHANGED_COLUMN]:
            if previous is None:
                raise TerminalError(f"an update without its old row in {columns!r}: "
                                    "the table's REPLICA IDENTITY is no longer FULL")
            for name in row[UNCHANGED_COLUMN]:
                values[name] = previous[name]
        key = row_identity(values, columns)
        images.setdefault(key, values)
        counts[key] += -1 if removal else 1
        previous = values if removal else None
    return counts, images, truncated


def apply_keyless(target: IcebergTarget, changes: pa.Table, *, lsn: int, system_id: str) -> MergeResult:
    """Apply ``changes`` (stream order, table schema + ``_op``/``_unchanged``) in one commit."""
    columns = [f.name for f in target.schema().fields]
    counts, images, truncated = net_changes(changes, columns)
    removals = Counter({k: -n for k, n in counts.items() if n < 0})
    additions = [images[k] for k, n in counts.items() if n > 0 for _ in range(n)]
    files = target.data_files()
    deleted_files, added_files = (list(files) if truncated else []), []
    removed = sum(removals.values())
    if truncated and removals:
        raise _diverged(target, removals)
    if not truncated:
        for f in files:
            if not removals:
                break
            rows = target.conform(target.read_file(f)).to_pylist()
            keep = []
            for row in rows:
                key = row_identity(row, columns)
                if removals.get(key, 0) > 0:
                    removals[key] -= 1
                    if removals[key] == 0:
                        del removals[key]
                else:
                    keep.append(row)
            if len(keep) != len(rows):
                deleted_files.append(f)
                if keep:
                    added_files += target.write_data_files(pa.Table.from_pylist(keep, schema=target.arrow_schema()))
        if removals:
            raise _diverged(target, removals)
    if additions:
        added_files += target.write_data_files(pa.Table.from_pylist(additions, schema=target.arrow_schema()))
    target.commit_files(delete=deleted_files, add=added_files, lsn=lsn, system_id=system_id)
    return MergeResult(rows_upserted=len(additions), rows_deleted=removed,
                       files_rewritten=len(deleted_files), files_added=len(added_files))


def _diverged(target: IcebergTarget, removals: Counter) -> TerminalError:
    sample = next(iter(removals))
    return TerminalError(
        f"{target.info.display_name}: {sum(removals.values())} row(s) deleted or updated in the source "
        f"are not in the Iceberg table (e.g. {sample!r}): it no longer equals the source. Re-copy it "
        "(the console's snapshot action, or drop the Iceberg table and restart)")
