"""The schema-evolution rules: which source type changes become Iceberg promotions, which
need a backfill, which are refused, and how a batch's relations become one plan."""

from __future__ import annotations

import pytest
from pyiceberg.schema import Schema
from pyiceberg.types import (
    DecimalType, DoubleType, FloatType, IntegerType, ListType, LongType, NestedField, StringType,
)

from pg2iceberg.errors import TerminalError
from pg2iceberg.iceberg.evolution import keeps_values, plan_evolution, promotions
from pg2iceberg.iceberg.typemap import ColumnType, column_type
from pg2iceberg.source.schema import ColumnInfo
from pg2iceberg.stream.files import SourceColumn, StagedRelation

OIDS = {"int2": 21, "int4": 23, "int8": 20, "float4": 700, "float8": 701, "numeric": 1700,
        "text": 25, "varchar": 1043, "bpchar": 1042, "json": 114, "jsonb": 3802}
DISPLAY = {"int2": "smallint", "int4": "integer", "int8": "bigint", "text": "text"}


def col(name: str, type_name: str, typmod: int = -1) -> ColumnInfo:
    return ColumnInfo(name=name, attnum=1, type_oid=OIDS[type_name], type_name=type_name,
                      type_display=DISPLAY.get(type_name, type_name), typmod=typmod, not_null=False,
                      type_kind="b", elem_type_name=None, elem_type_kind=None, generated=False)


def numeric(p: int, s: int) -> int:
    return ((p << 16) | s) + 4


def relation(*columns: ColumnInfo, keys: tuple[str, ...] = ("id",)) -> tuple[StagedRelation, tuple[ColumnType, ...]]:
    staged = StagedRelation(tuple(SourceColumn(c.name, c.type_oid, c.typmod, c.name in keys) for c in columns), "d")
    return staged, tuple(column_type(c) for c in columns)


SCHEMA = Schema(NestedField(1, "id", LongType(), required=True), NestedField(2, "a", IntegerType()),
                NestedField(3, "b", StringType()), identifier_field_ids=[1])
ID, A, B = col("id", "int8"), col("a", "int4"), col("b", "text")


def plan(*relations: tuple[StagedRelation, tuple[ColumnType, ...]]):  # noqa: ANN201
    return plan_evolution(table="public.t", iceberg_name="ns.t", schema=SCHEMA, keys=("id",),
                          recorded={"id": ID, "a": A, "b": B}, stored_types=None, relations=list(relations))


def test_promotions_are_iceberg_widenings_only() -> None:
    assert promotions(IntegerType(), LongType(), ("c",)) == [(("c",), LongType())]
    assert promotions(FloatType(), DoubleType(), ("c",)) == [(("c",), DoubleType())]
    assert promotions(DecimalType(6, 2), DecimalType(12, 2), ("c",)) == [(("c",), DecimalType(12, 2))]
    assert promotions(DecimalType(6, 2), DecimalType(12, 3), ("c",)) is None  # scale change
    assert promotions(LongType(), IntegerType(), ("c",)) is None
    assert promotions(IntegerType(), StringType(), ("c",)) is None
    old = ListType(element_id=5, element_type=IntegerType(), element_required=False)
    new = ListType(element_id=-1, element_type=LongType(), element_required=False)
    assert promotions(old, new, ("c",)) == [(("c", "element"), LongType())]


def test_keeps_values() -> None:
    assert keeps_values(col("c", "int4"), col("c", "int8"))
    assert keeps_values(col("c", "float4"), col("c", "float8"))
    assert keeps_values(col("c", "varchar", 14), col("c", "text"))
    assert keeps_values(col("c", "numeric", numeric(6, 2)), col("c", "numeric", numeric(9, 2)))
    assert not keeps_values(col("c", "bpchar", 9), col("c", "text"))  # char(n) padding goes
    assert not keeps_values(col("c", "json"), col("c", "jsonb"))  # jsonb reformats


def test_add_drop_and_reorder() -> None:
    p = plan(relation(ID, col("b2", "text"), A))  # b renamed to b2 and moved before a
    assert [c.column.name for c in p.adds] == ["b2"] and p.drops == ("b",)
    assert p.backfill == ("b2",) and p.reorder


def test_a_name_that_disappears_and_returns_in_a_batch_is_a_new_column() -> None:
    p = plan(relation(ID, B), relation(ID, A, B))
    assert p.drops == ("a",) and [c.column.name for c in p.adds] == ["a"] and p.backfill == ("a",)


def test_rewriting_change_with_the_same_iceberg_type_is_backfilled() -> None:
    p = plan(relation(ID, A, col("b", "json")))
    assert p.backfill == ("b",) and not p.promotions and not p.adds


def test_unchanged_relation_plans_only_the_recorded_types() -> None:
    p = plan(relation(ID, A, B))
    assert not (p.adds or p.drops or p.promotions or p.reorder or p.backfill)


@pytest.mark.parametrize("changed,words", [
    (relation(ID, col("a", "int4"), col("b", "int4")), ["'b'", "text", "integer"]),  # cross-family
    (relation(col("id", "int4"), A, B), ["'id'", "bigint", "integer"]),  # narrowing a key
    (relation(col("id", "numeric", numeric(20, 0)), A, B), ["'id'", "numeric"]),
    (relation(ID, A, B, keys=("id", "a")), ["primary key", "(id)", "(id, a)"]),
    (relation(A, B, keys=("a",)), ["primary key"]),
])
def test_refusals_name_table_column_types_and_the_way_out(changed, words: list[str]) -> None:  # noqa: ANN001
    with pytest.raises(TerminalError) as err:
        plan(changed)
    message = str(err.value)
    assert "public.t" in message and "drop the Iceberg table ns.t" in message
    for word in words:
        assert word in message
