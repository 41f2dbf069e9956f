"""Source schema changes → Iceberg schema evolution: what may change in place, what is refused.

A schema change is seen only through pgoutput's Relation messages (sent before the table's
next row change after the DDL), and every stream file records the relation it was decoded
under (:class:`pg2iceberg.stream.files.StagedRelation`). A materializer batch therefore knows
the relation of each of its files; the last one is the table's schema after the batch.
:func:`plan_evolution` compares that with the Iceberg table and returns a :class:`SchemaPlan`.

Rules (the source column ↔ Iceberg field match is by name; a RENAME therefore shows as a
drop and an add — the old column's data stays in older snapshots, the new one is backfilled):

- ADD COLUMN → a new optional field (``update_schema().add_column``: pyiceberg takes ids from
  the table's ``last-column-id``, so an id is never reused, not even for a dropped name),
  moved to the source's position, and **backfilled**: PostgreSQL fills existing rows with
  the default without writing any WAL (a volatile default rewrites the table, also without
  logical changes), so the values existing rows show can only be read back from the source.
- DROP COLUMN → ``delete_column`` (older snapshots keep the data). A name that disappears
  from a relation and comes back later in the same batch is a drop and a new add.
- Widening → Iceberg promotion (``update_column``): int → long (smallint/integer → bigint),
  float → double (real → double precision), decimal(p,s) → decimal(p2,s) with p2 ≥ p, and the
  same for array elements. These keep every stored value exactly as PostgreSQL converts it.
  A change that keeps the Iceberg type but not the text (char(n) → text drops the padding,
  json → jsonb reformats, timestamp(6) → timestamp(0) rounds, ...) is backfilled too;
  int2/int4/int8 among themselves, float4 → float8, numeric → numeric of the same scale and
  text/varchar among themselves keep values and need no backfill.
- Refused with a :class:`TerminalError` naming table, column, old → new type and the way out
  (nothing is committed): narrowing (long → int, double → float, smaller precision), any
  scale change, cross-family changes (int → text, ...), any type change of a primary-key
  column that changes its Iceberg type or its values, a primary key that gains, loses or
  drops a column.

Atomicity: the plan is staged in the same Iceberg transaction as the batch's data (see
``IcebergTarget.begin_change``), together with the table property ``pg2iceberg.source-types``
(the relation's type oids and modifiers, which is how the next batch knows the previous
source types). Either the new schema, the backfilled values, the batch and its position land
in one commit, or nothing does and a restart plans the same change again.

Backfill races (see :mod:`pg2iceberg.materializer.backfill`): the backfill reads each row's
*current* value, which may be newer than the batch's position L. Every change after L is
still in the stream and is applied later on top of it (last image per key wins; a change
after L carries the whole row, including the new column), so the table converges to the
source exactly as a resumed initial copy does. A row deleted after L reads as absent (NULL)
until its delete is applied. Stream images of the batch are overwritten by the backfill for
the same reason: the value read is at least as new as theirs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Mapping, Sequence

from pyiceberg.schema import Schema
from pyiceberg.table import Transaction
from pyiceberg.types import DecimalType, DoubleType, FloatType, IcebergType, IntegerType, ListType, LongType

from pg2iceberg.errors import TerminalError
from pg2iceberg.iceberg.typemap import ColumnType, column_type
from pg2iceberg.source.schema import ColumnInfo
from pg2iceberg.stream.files import StagedRelation

SOURCE_TYPES_PROPERTY = "pg2iceberg.source-types"

_INTS = frozenset({"int2", "int4", "int8"})
_STRINGS = frozenset({"text", "varchar"})

Path = tuple[str, ...]


def encode_source_types(pairs: Sequence[tuple[str, int, int]]) -> str:
    """The property value for columns given as (name, type oid, type modifier), in order."""
    return json.dumps([[n, o, m] for n, o, m in pairs])


def decode_source_types(value: str | None) -> list[tuple[str, int, int]] | None:
    """Inverse of :func:`encode_source_types`; None when the property is absent."""
    if not value:
        return None
    return [(str(n), int(o), int(m)) for n, o, m in json.loads(value)]


def relation_types(relation: StagedRelation) -> list[tuple[str, int, int]]:
    """(name, type oid, modifier) of each column of a staged relation."""
    return [(c.name, c.type_oid, c.type_mod) for c in relation.columns]


@dataclass(frozen=True, slots=True)
class SchemaPlan:
    """How one batch changes its Iceberg table (empty when nothing changes)."""

    final: tuple[ColumnType, ...]  # the table's columns after the batch, in source order
    adds: tuple[ColumnType, ...] = ()
    drops: tuple[str, ...] = ()
    promotions: tuple[tuple[Path, IcebergType], ...] = ()
    reorder: bool = False
    backfill: tuple[str, ...] = ()  # columns whose values are read back from the source
    source_types: str = ""  # new value of SOURCE_TYPES_PROPERTY ("" = unchanged)

    @property
    def empty(self) -> bool:
        """True when the batch needs no schema or property change."""
        return not (self.adds or self.drops or self.promotions or self.reorder
                    or self.backfill or self.source_types)

    def apply(self, txn: Transaction) -> None:
        """Stage the plan in ``txn`` (drops first, so a re-added name gets a new id)."""
        if self.drops:
            with txn.update_schema() as update:
                for name in self.drops:
                    update.delete_column(name)
        if self.adds or self.promotions or self.reorder:
            with txn.update_schema() as update:
                for ctype in self.adds:
                    update.add_column(ctype.column.name, ctype.iceberg_type, required=False)
                for path, new_type in self.promotions:
                    update.update_column(path, new_type)
                if self.reorder:
                    names = [c.column.name for c in self.final]
                    update.move_first(names[0])
                    for before, name in zip(names, names[1:]):
                        update.move_after(name, before)
        if self.source_types:
            txn.set_properties({SOURCE_TYPES_PROPERTY: self.source_types})

    def summary(self) -> dict[str, object]:
        """What changed, for the ``schema_changed`` event."""
        return {"added": [c.column.name for c in self.adds], "dropped": list(self.drops),
                "promoted": {".".join(p): str(t) for p, t in self.promotions},
                "backfilled": list(self.backfill)}


def same_type(a: IcebergType, b: IcebergType) -> bool:
    """Equal Iceberg types, ignoring the field ids inside lists."""
    if isinstance(a, ListType) and isinstance(b, ListType):
        return same_type(a.element_type, b.element_type)
    return a == b


def promotions(old: IcebergType, new: IcebergType, path: Path) -> list[tuple[Path, IcebergType]] | None:
    """The Iceberg promotions turning ``old`` into ``new`` ([] when equal); None if impossible."""
    if same_type(old, new):
        return []
    if isinstance(old, IntegerType) and isinstance(new, LongType):
        return [(path, new)]
    if isinstance(old, FloatType) and isinstance(new, DoubleType):
        return [(path, new)]
    if (isinstance(old, DecimalType) and isinstance(new, DecimalType) and old.scale == new.scale
            and new.precision >= old.precision):
        return [(path, new)]
    if isinstance(old, ListType) and isinstance(new, ListType):
        return promotions(old.element_type, new.element_type, (*path, "element"))
    return None


def keeps_values(old: ColumnInfo, new: ColumnInfo) -> bool:
    """True when PostgreSQL's conversion from ``old`` to ``new`` keeps every value's meaning
    as Iceberg stores it (so stored values need no backfill after the type change)."""
    if (old.type_oid, old.typmod) == (new.type_oid, new.typmod):
        return True
    if old.is_array != new.is_array:
        return False
    if old.is_array:
        pairs = (old.elem_type_name, old.elem_type_kind, new.elem_type_name, new.elem_type_kind)
    else:
        pairs = (old.type_name, old.type_kind, new.type_name, new.type_kind)
    old_name, old_kind, new_name, new_kind = pairs
    if old_kind != "b" or new_kind != "b":
        return False
    if old_name == new_name and old.typmod == new.typmod:
        return True  # a domain and its base type, or the same type by another oid
    return ((old_name in _INTS and new_name in _INTS) or (old_name, new_name) == ("float4", "float8")
            or old_name == new_name == "numeric" or (old_name in _STRINGS and new_name in _STRINGS))


def _refuse(table: str, iceberg_name: str, column: str, old: str, new: str, reason: str) -> TerminalError:
    return TerminalError(
        f"{table}: column {column!r} changed from {old} to {new}: {reason}; Iceberg cannot apply "
        f"this in place and nothing was committed. Way out: stop pg2iceberg, drop the Iceberg table "
        f"{iceberg_name} (for example catalog.drop_table('{iceberg_name}') in pyiceberg, or DROP TABLE "
        "in your query engine), then start pg2iceberg again: a configured table that is missing from "
        "the catalog is created with the new schema and copied again from the source.")


def _describe(info: ColumnInfo | None, itype: IcebergType) -> str:
    return f"{info.type_display} (Iceberg {itype})" if info is not None else f"Iceberg {itype}"


def plan_evolution(*, table: str, iceberg_name: str, schema: Schema, keys: Sequence[str],
                   recorded: Mapping[str, ColumnInfo] | None, stored_types: str | None,
                   relations: Sequence[tuple[StagedRelation, tuple[ColumnType, ...]]]) -> SchemaPlan:
    """Plan the evolution of ``schema`` to the last of ``relations`` (each with its resolved
    column types, in batch order); raise :class:`TerminalError` for a refused change.

    ``recorded`` holds the source types the table was last evolved (or created) with, when
    known; they decide whether a type change that keeps the Iceberg type needs a backfill.
    ``stored_types`` is the raw property value they were decoded from.
    """
    last_relation, final = relations[-1]
    final_by_name = {c.column.name: c for c in final}
    if last_relation.replica_identity == "d":
        flagged = [c.name for c in last_relation.columns if c.is_key]
        if set(flagged) != set(keys):
            raise TerminalError(
                f"{table}: the primary key changed from ({', '.join(keys)}) to ({', '.join(flagged)}); "
                "Iceberg identifier fields cannot follow that in place and nothing was committed. Way out: "
                f"stop pg2iceberg, drop the Iceberg table {iceberg_name}, then start pg2iceberg again: a "
                "configured table that is missing from the catalog is copied again from the source.")
    for key in keys:
        if key not in final_by_name:
            raise _refuse(table, iceberg_name, key, "a primary-key column", "dropped",
                          "the primary key lost a column")
    current = {f.name: f for f in schema.fields}
    adds: list[ColumnType] = []
    drops: list[str] = [name for name in current if name not in final_by_name]
    promos: list[tuple[Path, IcebergType]] = []
    backfill: list[str] = []
    for ctype in final:
        name, new_type = ctype.column.name, ctype.iceberg_type
        # Relations of this batch since the column (last) appeared: its current incarnation.
        history: list[ColumnInfo] = []
        readded = False
        for relation, ctypes in reversed(relations[:-1]):
            found = next((c for c in ctypes if c.column.name == name), None)
            if found is None:
                readded = True
                break
            history.append(found.column)
        field = current.get(name)
        if field is not None and readded:
            if name in keys:
                raise _refuse(table, iceberg_name, name, "a primary-key column", "dropped and added again",
                              "the primary key lost a column")
            drops.append(name)
            field = None
        if field is None:
            adds.append(ctype)
            backfill.append(name)
            continue
        old_info = recorded.get(name) if recorded is not None else None
        steps = promotions(field.field_type, new_type, (name,))
        if steps is None or (steps and name in keys):
            why = "a primary-key column's type must stay the same" if steps else "not a widening"
            raise _refuse(table, iceberg_name, name, _describe(old_info, field.field_type),
                          _describe(ctype.column, new_type), why)
        promos.extend(steps)
        if old_info is not None:
            history.append(old_info)
        for old in history:
            old_type = column_type(old).iceberg_type
            if promotions(old_type, new_type, (name,)) is None:
                raise _refuse(table, iceberg_name, name, _describe(old, old_type),
                              _describe(ctype.column, new_type), "not a widening")
            if not keeps_values(old, ctype.column):
                if name in keys:
                    raise _refuse(table, iceberg_name, name, _describe(old, old_type),
                                  _describe(ctype.column, new_type),
                                  "a primary-key column's values would change")
                if name not in backfill:
                    backfill.append(name)
    kept = [f.name for f in schema.fields if f.name not in drops] + [c.column.name for c in adds]
    new_types = encode_source_types(relation_types(last_relation))
    return SchemaPlan(final=final, adds=tuple(adds), drops=tuple(drops), promotions=tuple(promos),
                      reorder=kept != [c.column.name for c in final], backfill=tuple(backfill),
                      source_types="" if new_types == stored_types else new_types)
