"""Apply a batch to a table without a key (REPLICA IDENTITY FULL): full-row matching.

Rows are a multiset: the source may hold the same row several times, and Iceberg must hold
it exactly as often. Under REPLICA IDENTITY FULL pgoutput sends the whole old row of every
UPDATE and DELETE, so each change is "one copy of row R goes" and/or "one copy of row S
comes". Multiset additions and removals commute, so a batch reduces to a net count per
distinct row image; removals then take away that many copies from the Iceberg files (the
first files that hold them), additions are appended, all in ONE commit with the position.
A big batch is applied chunk by chunk into that one commit (the worker's pending
overwrite), so memory stays bounded: the net count is per chunk, files are read one at a time.
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
from pyiceberg.manifest import DataFile

from pg2iceberg.errors import TerminalError
from pg2iceberg.iceberg.tables import IcebergTarget
from pg2iceberg.materializer.merge import PendingOverwrite
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


def apply_keyless(overwrite: PendingOverwrite, changes: pa.Table) -> None:
    """Apply one chunk of ``changes`` (stream order, table schema + ``_op``/``_unchanged``) to
    the pending commit: removals take copies out of the live files (committed ones, or ones
    an earlier chunk wrote), one file at a time; additions are written as new files."""
    target = overwrite.target
    columns = [f.name for f in target.schema().fields]
    schema = target.arrow_schema()
    counts, images, truncated = net_changes(changes, columns)
    removals = Counter({k: -n for k, n in counts.items() if n < 0})
    additions = [images[k] for k, n in counts.items() if n > 0 for _ in range(n)]
    removed = sum(removals.values())
    if truncated:
        if removals:
            raise _diverged(target, removals)
        overwrite.drop_all()
    else:
        live: list[DataFile] = []
        for i, f in enumerate(overwrite.live):
            if not removals:
                live += overwrite.live[i:]
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
            if len(keep) == len(rows):
                live.append(f)
                continue
            overwrite.drop(f)
            if keep:
                live += overwrite.write(pa.Table.from_pylist(keep, schema=schema))
        overwrite.live = live
        if removals:
            raise _diverged(target, removals)
    if additions:
        overwrite.live += overwrite.write(pa.Table.from_pylist(additions, schema=schema))
    overwrite.upserted += len(additions)
    overwrite.deleted += removed


def _diverged(target: IcebergTarget, removals: Counter) -> TerminalError:
    sample = next(iter(removals))
    return TerminalError(
        f"{target.info.display_name}: {sum(removals.values())} row(s) deleted or updated in the source "
        f"are not in the Iceberg table (e.g. {sample!r}): it no longer equals the source. Re-copy it "
        "(the console's snapshot action, or drop the Iceberg table and restart)")
