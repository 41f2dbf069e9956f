"""PostgreSQL types → Iceberg types, and the two value paths into one Arrow form.

Values reach Iceberg by two roads: the initial snapshot reads binary COPY through ADBC into
Arrow, the stream carries pgoutput's text form. Both roads end in the same converter per
column, so they cannot disagree: types whose ADBC form is exact (integers, floats, booleans,
strings, uuid, bytea) are taken natively on the snapshot path and parsed from text on the
stream path; every other type is selected as its output-function text on the snapshot path
(``format('%s', col)``, which — unlike ``col::text`` — is exactly what pgoutput sends, e.g.
``192.168.1.1`` for inet rather than ``192.168.1.1/32``), so both roads parse the very same
text with the very same code.

The mapping follows the contract: smallint/integer → int, bigint → long, real → float,
double → double, numeric(p≤38,s) → decimal(p,s), unconstrained numeric → decimal(38,18),
boolean → boolean, text-like → string, date/time/timestamp/timestamptz, uuid, bytea → binary,
json/jsonb → string, one-dimensional arrays → list, enums and anything else → string (the
text PostgreSQL shows, e.g. char(n) blank-padded, intervals in ISO 8601). Values a type cannot
hold are refused (:class:`ValueError_`), never rounded or replaced: see :mod:`textvalues`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pyarrow as pa
from pyiceberg.types import (
    BinaryType, BooleanType, DateType, DecimalType, DoubleType, FloatType, IcebergType,
    IntegerType, ListType, LongType, StringType, TimestampType, TimestamptzType, TimeType,
    UUIDType,
)

from pg2iceberg.errors import TerminalError
from pg2iceberg.iceberg.textvalues import canonical_nan, text_converter
from pg2iceberg.source.schema import ColumnInfo
from pg2iceberg.sqlident import quote_ident

__all__ = ["ColumnType", "ValueError_", "column_type", "convert_column", "numeric_type",
           "snapshot_converter", "text_converter", "UNCONSTRAINED_NUMERIC"]

UNCONSTRAINED_NUMERIC = (38, 18)

# base typname → (iceberg type factory, taken natively from ADBC on the snapshot path).
# date/timestamp/time are read as text on the snapshot path too: their ±infinity, BC years
# and 24:00:00 have no exact Arrow form and must be refused identically on both paths.
_SCALARS: dict[str, tuple[Callable[[], IcebergType], bool]] = {
    "int2": (IntegerType, True), "int4": (IntegerType, True), "int8": (LongType, True),
    "float4": (FloatType, True), "float8": (DoubleType, True), "bool": (BooleanType, True),
    "text": (StringType, True), "varchar": (StringType, True), "bpchar": (StringType, True),
    "name": (StringType, True), "date": (DateType, True), "time": (TimeType, False),
    "timestamp": (TimestampType, True), "timestamptz": (TimestamptzType, True),
    "uuid": (UUIDType, True), "bytea": (BinaryType, True),
    "json": (StringType, False), "jsonb": (StringType, False),
}
# Native types with values Iceberg cannot hold (±infinity, years outside 1..9999): the snapshot
# query reads them only inside these bounds and flags the rest (see ColumnType.check_sql).
_BOUNDS = {
    "date": ("'0001-01-01'::date", "'10000-01-01'::date"),
    "timestamp": ("'0001-01-01 00:00'::timestamp", "'10000-01-01 00:00'::timestamp"),
    "timestamptz": ("'0001-01-01 00:00+00'::timestamptz", "'10000-01-01 00:00+00'::timestamptz"),
}
CHECK_PREFIX = "__pg2iceberg_check_"
# Array element types whose array text is not comma-delimited (box uses ';'): such arrays are
# kept whole, as their text, rather than split wrongly.
_NOT_COMMA_DELIMITED = frozenset({"box"})


@dataclass(frozen=True, slots=True)
class ColumnType:
    """How one source column is stored in Iceberg and converted on both paths."""

    column: ColumnInfo
    iceberg_type: IcebergType
    native_snapshot: bool  # True: ADBC's Arrow value is exact; False: read its output text

    def select_sql(self) -> str:
        """The expression that reads this column on the snapshot path.

        Non-native columns are read as their type output function's text (what pgoutput
        sends): ``format('%s', x)`` calls that function, and ``num_nulls`` keeps SQL NULL apart
        from a composite value whose fields are all NULL.
        """
        ident = quote_ident(self.column.name)
        if self.native_snapshot:
            valid = self._valid_sql()
            return ident if valid is None else f"CASE WHEN {valid} THEN {ident} END AS {ident}"
        return f"CASE WHEN num_nulls({ident}) = 0 THEN format('%s', {ident}) END AS {ident}"

    @property
    def check_name(self) -> str:
        """The snapshot query's column flagging this column's unrepresentable values."""
        return CHECK_PREFIX + self.column.name

    def check_sql(self) -> str | None:
        """The snapshot query's check of a native column with unrepresentable values: the
        text of each such value (what pgoutput would send), NULL for every other row."""
        valid = self._valid_sql()
        if not self.native_snapshot or valid is None:
            return None
        ident = quote_ident(self.column.name)
        return f"CASE WHEN NOT ({valid}) THEN {ident}::text END AS {quote_ident(self.check_name)}"

    def _valid_sql(self) -> str | None:
        bounds = _BOUNDS.get(self.column.type_name or "") if not self.column.is_array else None
        if bounds is None:
            return None
        ident = quote_ident(self.column.name)
        return f"isfinite({ident}) AND {ident} >= {bounds[0]} AND {ident} < {bounds[1]}"


def numeric_type(typmod: int) -> IcebergType:
    """decimal(p,s) for numeric(p,s) with p ≤ 38, decimal(38,18) when unconstrained.

    PostgreSQL 15 also allows a negative scale (numeric(5,-2): integers rounded to hundreds)
    and a scale above the precision (numeric(3,5): |x| < 0.001); both are stored in the
    smallest decimal that holds every value exactly: decimal(p-s, 0) and decimal(s, s).
    Precisions beyond Iceberg's 38 digits are kept as their text (string).
    """
    if typmod < 0:
        return DecimalType(*UNCONSTRAINED_NUMERIC)
    precision = ((typmod - 4) >> 16) & 0xFFFF
    scale = (((typmod - 4) & 0x7FF) ^ 1024) - 1024  # an 11-bit signed field
    if scale < 0:
        precision, scale = precision - scale, 0
    elif scale > precision:
        precision = scale
    if precision > 38:
        return StringType()
    return DecimalType(precision, scale)


def _scalar_type(type_name: str | None, type_kind: str | None,
                 typmod: int) -> tuple[IcebergType, bool]:
    """(Iceberg type, native on the snapshot path) of a non-array base type."""
    if type_kind != "b":  # enums, ranges, composites, ...: never mistaken for a built-in name
        return StringType(), False
    if type_name == "numeric":
        return numeric_type(typmod), False
    if type_name in _SCALARS:
        factory, native = _SCALARS[type_name]
        return factory(), native
    return StringType(), False


def column_type(col: ColumnInfo) -> ColumnType:
    """Map a source column to its Iceberg type and conversion path."""
    if col.is_array:
        if col.elem_type_name in _NOT_COMMA_DELIMITED:
            return ColumnType(col, StringType(), native_snapshot=False)
        elem, _ = _scalar_type(col.elem_type_name, col.elem_type_kind, col.typmod)
        return ColumnType(col, ListType(element_id=-1, element_type=elem, element_required=False),
                          native_snapshot=False)
    itype, native = _scalar_type(col.type_name, col.type_kind, col.typmod)
    return ColumnType(col, itype, native_snapshot=native)


# -- conversion ---------------------------------------------------------------------------


class ValueError_(TerminalError):
    """A source value that its Iceberg type cannot hold (never rounded, never replaced)."""


def snapshot_converter(ctype: ColumnType,
                       arrow_type: pa.DataType) -> Callable[[pa.Array], pa.Array]:
    """Return a function turning the snapshot path's Arrow column into ``arrow_type``."""
    if not ctype.native_snapshot:
        text_fn = text_converter(ctype.iceberg_type, arrow_type)
        return lambda arr: text_fn(_storage(arr).cast(pa.string()))
    if isinstance(ctype.iceberg_type, UUIDType):
        return lambda arr: _storage(arr).cast(pa.binary(16))
    if isinstance(ctype.iceberg_type, (FloatType, DoubleType)):
        # PostgreSQL keeps a NaN's bits (inf - inf is a negative NaN on x86); its text is just
        # "NaN". Both paths store the one canonical NaN.
        return lambda arr: canonical_nan(_storage(arr).cast(arrow_type))
    return lambda arr: _storage(arr).cast(arrow_type)


def refuse_flagged(ctype: ColumnType, flagged: pa.Array, arrow_type: pa.DataType, where: str) -> None:
    """Raise for the values a snapshot query flagged (``check_sql``), exactly as the text path
    refuses them; do nothing when none is flagged."""
    texts = _storage(flagged).drop_null()
    if len(texts) == 0:
        return
    convert_column(text_converter(ctype.iceberg_type, arrow_type), texts, where)
    raise ValueError_(f"{where}: value cannot be stored in Iceberg: {texts[0].as_py()}")


def _storage(arr: pa.Array) -> pa.Array:
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return arr.storage if isinstance(arr.type, pa.BaseExtensionType) else arr


def convert_column(fn: Callable[[pa.Array], pa.Array], arr: pa.Array, where: str) -> pa.Array:
    """Apply a converter, turning any failure into an error that names table and column."""
    try:
        return fn(arr)
    except (pa.ArrowException, ValueError, TypeError) as exc:
        raise ValueError_(f"{where}: value cannot be stored in Iceberg: {exc}") from exc
