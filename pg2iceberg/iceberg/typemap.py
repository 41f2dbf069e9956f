"""PostgreSQL types → Iceberg types, and the two value paths into one Arrow form.

Values reach Iceberg by two roads: the initial snapshot reads binary COPY through ADBC into
Arrow, the stream carries pgoutput's text form. Both roads end in the same converter per
column, so they cannot disagree: types whose ADBC form is exact (integers, floats, booleans,
strings, dates, times, timestamps, bytea, uuid, json) are taken natively on the snapshot
path and parsed from text on the stream path; every other type (numeric, arrays, enums,
intervals, inet, money, ...) is selected as ``col::text`` on the snapshot path, so both roads
parse the very same text with the very same code.

The mapping follows the contract: smallint/integer → int, bigint → long, real → float,
double → double, numeric(p≤38,s) → decimal(p,s), unconstrained numeric → decimal(38,18),
boolean → boolean, text-like → string, date/time/timestamp/timestamptz, uuid, bytea → binary,
json/jsonb → string, one-dimensional arrays → list, enums and anything else → string.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Callable

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.types import (
    BinaryType, BooleanType, DateType, DecimalType, DoubleType, FloatType, IcebergType,
    IntegerType, ListType, LongType, StringType, TimestampType, TimestamptzType, TimeType,
    UUIDType,
)

from pg2iceberg.errors import TerminalError
from pg2iceberg.sqlident import quote_ident
from pg2iceberg.source.schema import ColumnInfo

UNCONSTRAINED_NUMERIC = (38, 18)

# typname → (iceberg type factory, taken natively from ADBC on the snapshot path)
_SCALARS: dict[str, tuple[Callable[[], IcebergType], bool]] = {
    "int2": (IntegerType, True), "int4": (IntegerType, True), "int8": (LongType, True),
    "float4": (FloatType, True), "float8": (DoubleType, True), "bool": (BooleanType, True),
    "text": (StringType, True), "varchar": (StringType, True), "bpchar": (StringType, True),
    "name": (StringType, True), "date": (DateType, False), "time": (TimeType, True),
    "timestamp": (TimestampType, False), "timestamptz": (TimestamptzType, False),
    "uuid": (UUIDType, True), "bytea": (BinaryType, True),
    "json": (StringType, False), "jsonb": (StringType, False),
}
# date/timestamp are read as text on the snapshot path too: their ±infinity have no exact
# Arrow form and must be refused identically on both paths.


@dataclass(frozen=True, slots=True)
class ColumnType:
    """How one source column is stored in Iceberg and converted on both paths."""

    column: ColumnInfo
    iceberg_type: IcebergType
    native_snapshot: bool  # True: ADBC's Arrow value is exact; False: select col::text

    def select_sql(self) -> str:
        """The expression that reads this column on the snapshot path."""
        ident = quote_ident(self.column.name)
        return ident if self.native_snapshot else f"{ident}::text AS {ident}"


def numeric_type(typmod: int) -> IcebergType:
    """decimal(p,s) for numeric(p,s) with p ≤ 38, decimal(38,18) when unconstrained."""
    if typmod < 0:
        return DecimalType(*UNCONSTRAINED_NUMERIC)
    precision, scale = ((typmod - 4) >> 16) & 0xFFFF, (typmod - 4) & 0xFFFF
    if precision > 38 or scale > precision:
        return StringType()
    return DecimalType(precision, scale)


def _element_type(type_name: str, type_kind: str | None, typmod: int) -> IcebergType:
    if type_name == "numeric":
        return numeric_type(typmod)
    if type_name in _SCALARS:
        return _SCALARS[type_name][0]()
    return StringType()


def column_type(col: ColumnInfo) -> ColumnType:
    """Map a source column to its Iceberg type and conversion path."""
    if col.is_array:
        elem = _element_type(col.elem_type_name or "", col.elem_type_kind, col.typmod)
        return ColumnType(col, ListType(element_id=-1, element_type=elem, element_required=False),
                          native_snapshot=False)
    if col.type_name == "numeric":
        return ColumnType(col, numeric_type(col.typmod), native_snapshot=False)
    if col.type_name in _SCALARS:
        factory, native = _SCALARS[col.type_name]
        return ColumnType(col, factory(), native_snapshot=native)
    return ColumnType(col, StringType(), native_snapshot=False)


# -- conversion ---------------------------------------------------------------------------


class ValueError_(TerminalError):
    """A source value that its Iceberg type cannot hold (never rounded, never replaced)."""


def _fail(where: str, detail: str) -> ValueError_:
    return ValueError_(f"{where}: {detail}")


def _text_to_bool(arr: pa.Array) -> pa.Array:
    return pc.equal(arr, "t")


def _text_to_time(arr: pa.Array) -> pa.Array:
    stamped = pc.binary_join_element_wise("1970-01-01 ", arr, "")
    micros = pc.cast(pc.cast(stamped, pa.timestamp("us")), pa.int64())
    return pc.cast(micros, pa.time64("us"))


def _per_value(fn: Callable[[str], object], arrow_type: pa.DataType) -> Callable[[pa.Array], pa.Array]:
    def convert(arr: pa.Array) -> pa.Array:
        return pa.array([None if v is None else fn(v) for v in arr.to_pylist()], type=arrow_type)
    return convert


def _bytea(text: str) -> bytes:
    if not text.startswith("\\x"):
        raise ValueError(f"bytea not in hex form: {text[:20]!r}")
    return bytes.fromhex(text[2:])


def _uuid(text: str) -> bytes:
    return uuid.UUID(text).bytes


def _check_infinity(arr: pa.Array, kind: str) -> None:
    bad = pc.any(pc.match_substring(arr, "infinity")).as_py()
    if bad:
        raise ValueError(f"{kind} 'infinity' has no Iceberg representation")


def text_converter(itype: IcebergType, arrow_type: pa.DataType) -> Callable[[pa.Array], pa.Array]:
    """Return a function turning a string array of PostgreSQL text values into ``arrow_type``."""
    if isinstance(itype, BooleanType):
        return _text_to_bool
    if isinstance(itype, TimeType):
        return _text_to_time
    if isinstance(itype, BinaryType):
        return _per_value(_bytea, arrow_type)
    if isinstance(itype, UUIDType):
        return _per_value(_uuid, pa.binary(16))
    if isinstance(itype, DecimalType):
        def to_decimal(arr: pa.Array) -> pa.Array:
            if pc.any(pc.is_in(arr, pa.array(["NaN", "Infinity", "-Infinity"]))).as_py():
                raise ValueError("NaN or Infinity does not fit an Iceberg decimal")
            return pc.cast(arr, arrow_type)
        return to_decimal
    if isinstance(itype, DateType):
        def to_date(arr: pa.Array) -> pa.Array:
            _check_infinity(arr, "date")
            return pc.cast(arr, arrow_type)
        return to_date
    if isinstance(itype, (TimestampType, TimestamptzType)):
        def to_timestamp(arr: pa.Array) -> pa.Array:
            _check_infinity(arr, "timestamp")
            return pc.cast(arr, arrow_type)
        return to_timestamp
    if isinstance(itype, ListType):
        from pg2iceberg.iceberg.pgarray import parse_array

        elem_convert = text_converter(itype.element_type, arrow_type.value_type)

        def to_list(arr: pa.Array) -> pa.Array:
            parsed = [None if v is None else parse_array(v) for v in arr.to_pylist()]
            offsets, flat, mask = [0], [], []
            for items in parsed:
                mask.append(items is None)
                flat.extend(items or ())
                offsets.append(len(flat))
            values = elem_convert(pa.array(flat, type=pa.string()))
            return pa.LargeListArray.from_arrays(
                pa.array(offsets, pa.int64()), values, type=arrow_type,
                mask=pa.array(mask, pa.bool_()))
        return to_list
    return lambda arr: pc.cast(arr, arrow_type)


def snapshot_converter(ctype: ColumnType, arrow_type: pa.DataType) -> Callable[[pa.Array], pa.Array]:
    """Return a function turning the snapshot path's Arrow column into ``arrow_type``."""
    if not ctype.native_snapshot:
        text_fn = text_converter(ctype.iceberg_type, arrow_type)
        return lambda arr: text_fn(_storage(arr).cast(pa.string()))
    if isinstance(ctype.iceberg_type, UUIDType):
        return lambda arr: _storage(arr)
    return lambda arr: _storage(arr).cast(arrow_type)


def _storage(arr: pa.Array) -> pa.Array:
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return arr.storage if isinstance(arr.type, pa.ExtensionType) else arr


def convert_column(fn: Callable[[pa.Array], pa.Array], arr: pa.Array, where: str) -> pa.Array:
    """Apply a converter, turning any failure into an error that names table and column."""
    try:
        return fn(arr)
    except (pa.ArrowInvalid, ValueError, TypeError) as exc:
        raise _fail(where, f"value cannot be stored in Iceberg: {exc}") from exc
