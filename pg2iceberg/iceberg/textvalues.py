"""PostgreSQL output text → Arrow values of an Iceberg type, refusing what does not fit.

The input is a string array of the text PostgreSQL's type output functions write under the
pinned session settings (TimeZone UTC, DateStyle ISO, extra_float_digits 3, bytea hex):
what pgoutput sends, and what the snapshot path selects for every non-native column. A value
the Iceberg type cannot hold exactly raises ``ValueError`` with the reason (the caller adds
table and column); nothing is rounded, clamped or replaced by a placeholder:

- numeric NaN / ±Infinity, and numerics with more integer or fractional digits than the
  decimal holds (an unconstrained numeric is decimal(38,18));
- date / timestamp ±infinity, and years before 1 AD or after 9999 (BC dates, 5-digit years);
- time 24:00:00 (Iceberg times end at 23:59:59.999999);
- multi-dimensional arrays.
"""

from __future__ import annotations

import uuid
from decimal import Decimal, InvalidOperation
from typing import Callable

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.types import (
    BinaryType, BooleanType, DateType, DecimalType, DoubleType, FloatType, IcebergType,
    ListType, TimestampType, TimestamptzType, TimeType, UUIDType,
)

from pg2iceberg.iceberg.pgarray import parse_array

Converter = Callable[[pa.Array], pa.Array]


def text_converter(itype: IcebergType, arrow_type: pa.DataType) -> Converter:
    """Return a function turning a string array of PostgreSQL text values into ``arrow_type``.

    ``arrow_type`` is the storage type for extension types (uuid → fixed_size_binary(16)).
    """
    if isinstance(itype, ListType):
        return _list_converter(itype, arrow_type)
    if isinstance(itype, BooleanType):
        return lambda arr: pc.equal(arr, "t")
    if isinstance(itype, (FloatType, DoubleType)):
        return lambda arr: canonical_nan(pc.cast(arr, arrow_type))
    if isinstance(itype, DecimalType):
        return _decimal_converter(itype, arrow_type)
    if isinstance(itype, (DateType, TimestampType, TimestamptzType)):
        return _datetime_converter(itype, arrow_type)
    if isinstance(itype, TimeType):
        return _to_time
    if isinstance(itype, BinaryType):
        return _per_value(_bytea, arrow_type)
    if isinstance(itype, UUIDType):
        return _per_value(lambda text: uuid.UUID(text).bytes, pa.binary(16))
    return lambda arr: pc.cast(arr, arrow_type)  # integers and strings


def canonical_nan(arr: pa.Array) -> pa.Array:
    """Every NaN replaced by the one canonical quiet NaN (NULLs stay NULL)."""
    nan = pc.is_nan(arr)
    if not pc.any(nan).as_py():
        return arr
    return pc.if_else(nan, pa.scalar(float("nan"), arr.type), arr)


# -- per type ------------------------------------------------------------------------------


def _refuse_if(arr: pa.Array, mask: pa.Array, reason: str) -> None:
    """Raise ValueError naming the first value selected by ``mask``."""
    if pc.any(mask).as_py():
        value = pc.filter(arr, mask)[0].as_py()
        raise ValueError(f"{_short(value)}: {reason}")


def _decimal_converter(itype: DecimalType, arrow_type: pa.DataType) -> Converter:
    def convert(arr: pa.Array) -> pa.Array:
        special = pc.is_in(arr, value_set=pa.array(["NaN", "Infinity", "-Infinity"]))
        _refuse_if(arr, special, f"numeric NaN and Infinity have no Iceberg {itype} form")
        try:
            return pc.cast(arr, arrow_type)
        except pa.ArrowInvalid:
            for text in arr.to_pylist():
                problem = None if text is None else _decimal_misfit(text, itype)
                if problem:
                    raise ValueError(f"{_short(text)}: {problem}") from None
            raise
    return convert


def _decimal_misfit(text: str, itype: DecimalType) -> str | None:
    """Why ``text`` does not fit ``itype`` exactly, or None when it does."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    hint = ("; an unconstrained numeric is stored as decimal(38,18) — declare the column "
            "numeric(p,s) to choose another" if (itype.precision, itype.scale) == (38, 18) else "")
    exponent = int(value.normalize().as_tuple().exponent) if value else 0
    fraction = max(0, -exponent)
    if fraction > itype.scale:
        return (f"{fraction} fractional digits do not fit Iceberg {itype} "
                f"(at most {itype.scale}; values are never rounded){hint}")
    whole = len(str(abs(int(value)))) if abs(value) >= 1 else 0
    if whole > itype.precision - itype.scale:
        return (f"{whole} integer digits do not fit Iceberg {itype} "
                f"(at most {itype.precision - itype.scale}){hint}")
    return None


def _datetime_converter(itype: IcebergType, arrow_type: pa.DataType) -> Converter:
    kind = {DateType: "date", TimestampType: "timestamp",
            TimestamptzType: "timestamptz"}[type(itype)]

    def convert(arr: pa.Array) -> pa.Array:
        _refuse_if(arr, pc.match_substring(arr, "infinity"),
                   f"{kind} ±infinity has no Iceberg representation")
        _refuse_if(arr, pc.match_substring_regex(arr, r" BC$|^\d{5}"),
                   f"{kind} year outside 1..9999 (BC, or beyond 9999) is refused: "
                   "Iceberg readers cannot all represent it")
        return pc.cast(arr, arrow_type)
    return convert


def _to_time(arr: pa.Array) -> pa.Array:
    _refuse_if(arr, pc.starts_with(arr, "24:"),
               "time 24:00:00 has no Iceberg representation (Iceberg times end at 23:59:59.999999)")
    stamped = pc.binary_join_element_wise("1970-01-01 ", arr, "")
    micros = pc.cast(pc.cast(stamped, pa.timestamp("us")), pa.int64())
    return pc.cast(micros, pa.time64("us"))


def _per_value(fn: Callable[[str], object], arrow_type: pa.DataType) -> Converter:
    def convert(arr: pa.Array) -> pa.Array:
        return pa.array([None if v is None else fn(v) for v in arr.to_pylist()], type=arrow_type)
    return convert


def _bytea(text: str) -> bytes:
    if not text.startswith("\\x"):
        raise ValueError(f"bytea not in hex form (bytea_output must be hex): {_short(text)}")
    return bytes.fromhex(text[2:])


def _list_converter(itype: ListType, arrow_type: pa.DataType) -> Converter:
    value_type = arrow_type.value_type
    extension = value_type if isinstance(value_type, pa.BaseExtensionType) else None
    elem_convert = text_converter(
        itype.element_type, extension.storage_type if extension else value_type)

    def convert(arr: pa.Array) -> pa.Array:
        offsets, flat, mask = [0], [], []
        for text in arr.to_pylist():
            items = None if text is None else parse_array(text)
            mask.append(items is None)
            flat.extend(items or ())
            offsets.append(len(flat))
        values = elem_convert(pa.array(flat, type=pa.string()))
        if extension is not None:
            values = pa.ExtensionArray.from_storage(extension, values)
        return pa.LargeListArray.from_arrays(
            pa.array(offsets, pa.int64()), values, type=arrow_type, mask=pa.array(mask, pa.bool_()))
    return convert


def _short(value: object) -> str:
    text = str(value)
    return repr(text if len(text) <= 60 else text[:57] + "...")
