"""Row comparison of one key range: PostgreSQL rows and Iceberg rows in the same Arrow schema.

Both sides arrive converted to the Iceberg table's Arrow schema (the PostgreSQL side through
the snapshot path's converters), so equal values are equal Arrow values. A chunk whose two
sorted tables are equal in Arrow needs no further work; otherwise rows are compared one by
one (NaN equals NaN here, as both value paths store one canonical NaN). Key ranges are
expressed as pyiceberg row filters in lexicographic key order, which for strings is byte
order: the PostgreSQL side is read ``COLLATE "C"`` to match.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import pyarrow as pa
from pyiceberg.expressions import (
    AlwaysTrue, And, BooleanExpression, EqualTo, GreaterThan, In, LessThan, LessThanOrEqual, Or,
)

Key = tuple[Any, ...]


@dataclass
class ChunkDiff:
    """Keys that differ in one comparison, by kind."""

    missing: list[Key] = field(default_factory=list)  # in PostgreSQL, not in Iceberg
    extra: list[Key] = field(default_factory=list)  # in Iceberg, not in PostgreSQL (or once too often)
    different: list[Key] = field(default_factory=list)  # in both, some value differs

    def keys(self) -> list[Key]:
        """Every differing key, in key order."""
        return sorted(set(self.missing) | set(self.extra) | set(self.different), key=_sort_key)

    def __bool__(self) -> bool:
        return bool(self.missing or self.extra or self.different)


def _norm(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, list):
        return tuple(_norm(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _norm(v)) for k, v in value.items()))
    return value


def _sort_key(key: Key) -> tuple:
    return tuple((v is None, str(type(v)), v if v is not None else 0) for v in key)


def rows_by_key(data: pa.Table, keys: Sequence[str]) -> dict[Key, list[tuple]]:
    """Normalized rows grouped by their key."""
    names = data.column_names
    positions = [names.index(k) for k in keys]
    out: dict[Key, list[tuple]] = {}
    for row in data.to_pylist():
        values = tuple(_norm(row[n]) for n in names)
        out.setdefault(tuple(values[p] for p in positions), []).append(values)
    return out


def compare_tables(source: pa.Table, iceberg: pa.Table, keys: Sequence[str]) -> ChunkDiff:
    """Compare two tables of the same schema holding the same key range."""
    order = [(k, "ascending") for k in keys]
    if source.num_rows == iceberg.num_rows:
        if source.sort_by(order).combine_chunks().equals(iceberg.sort_by(order).combine_chunks()):
            return ChunkDiff()
    pg, ice = rows_by_key(source, keys), rows_by_key(iceberg, keys)
    diff = ChunkDiff()
    for key, rows in pg.items():
        theirs = ice.get(key)
        if theirs is None:
            diff.missing.append(key)
        elif rows[0] not in theirs:
            diff.different.append(key)
    for key, theirs in ice.items():
        if key not in pg or len(theirs) > len(pg[key]):
            diff.extra.append(key)
    for found in (diff.missing, diff.extra, diff.different):
        found.sort(key=_sort_key)
    return diff


def _after(keys: Sequence[str], bound: Key, inclusive: bool) -> BooleanExpression:
    """key > bound (or >=), lexicographically."""
    first, rest = keys[0], keys[1:]
    if not rest:
        return GreaterThan(first, bound[0]) if not inclusive else Or(GreaterThan(first, bound[0]),
                                                                     EqualTo(first, bound[0]))
    return Or(GreaterThan(first, bound[0]), And(EqualTo(first, bound[0]), _after(rest, bound[1:], inclusive)))


def _up_to(keys: Sequence[str], bound: Key) -> BooleanExpression:
    """key <= bound, lexicographically."""
    first, rest = keys[0], keys[1:]
    if not rest:
        return LessThanOrEqual(first, bound[0])
    return Or(LessThan(first, bound[0]), And(EqualTo(first, bound[0]), _up_to(rest, bound[1:])))


def range_filter(keys: Sequence[str], lower: Key | None, upper: Key | None) -> BooleanExpression:
    """Rows with lower < key <= upper (an absent bound is open)."""
    parts = []
    if lower is not None:
        parts.append(_after(keys, lower, inclusive=False))
    if upper is not None:
        parts.append(_up_to(keys, upper))
    if not parts:
        return AlwaysTrue()
    return parts[0] if len(parts) == 1 else And(parts[0], parts[1])


def keys_filter(keys: Sequence[str], values: Sequence[Key]) -> BooleanExpression:
    """Rows whose key is one of ``values`` (non-empty)."""
    if len(keys) == 1:
        return In(keys[0], {v[0] for v in values}) if len(values) > 1 else EqualTo(keys[0], values[0][0])
    terms = []
    for value in values:
        eqs = [EqualTo(k, v) for k, v in zip(keys, value)]
        terms.append(eqs[0] if len(eqs) == 1 else And(*eqs))
    return terms[0] if len(terms) == 1 else Or(*terms)


def format_key(keys: Sequence[str], value: Key) -> str:
    """``id=5`` or ``order_id=1, line=2`` for messages."""
    return ", ".join(f"{k}={v!s}" for k, v in zip(keys, value))
