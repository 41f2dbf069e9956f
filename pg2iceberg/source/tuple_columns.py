"""Columnar decoding of pgoutput TupleData: many rows of one relation into Arrow columns.

The per-message decoder (:mod:`pg2iceberg.source.pgoutput`) builds a Python ``str`` per
value, several microseconds a row. The WAL writer instead keeps each row-change message's
raw bytes and decodes a whole buffer here when it stages it, with pyarrow compute over all
rows at once: one pass per column, whatever the number of rows.

How: the messages become one Arrow binary array, whose value bytes are viewed as a
``uint8`` array. For each column in turn, a position per row points at that column's kind
byte (``t`` text, ``n`` null, ``u`` unchanged TOAST); the kind and the big-endian length are
gathered with ``take``; the values are cut out of the buffer with a list *view* (offset and
size per row) flattened into contiguous bytes, which become the column's string array; and
the position moves past the value. Values are checked as UTF-8 exactly as the
per-message decoder does.

Only text-format tuples are handled (pg2iceberg never asks for binary); anything else, or a
row whose column count or length does not add up, raises :class:`ProtocolError`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from pg2iceberg.source.pgoutput import UNCHANGED, ProtocolError, Value

_KIND_TEXT, _KIND_NULL, _KIND_UNCHANGED = 116, 110, 117  # 't' 'n' 'u'
_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")


@dataclass(frozen=True, slots=True)
class TupleColumns:
    """The decoded columns of a batch of tuples.

    ``values[i]`` is column ``i`` as strings (null for SQL NULL and for unchanged TOAST);
    ``unchanged[i]`` is a boolean array, true where column ``i`` was sent as unchanged.
    """

    num_rows: int
    values: list[pa.StringArray]
    unchanged: list[pa.BooleanArray]

    def unchanged_names(self, names: Sequence[str]) -> pa.ListArray:
        """Per row, the names of the columns sent as unchanged (null where there are none)."""
        list_type = pa.list_(pa.string())
        n = self.num_rows
        if not any(pc.any(m).as_py() for m in self.unchanged):
            return pa.nulls(n, list_type)
        k = len(names)
        per_row = pc.cast(self.unchanged[0], pa.int32())
        for mask in self.unchanged[1:]:
            per_row = pc.add(per_row, pc.cast(mask, pa.int32()))
        # Row-major (row, column) order: element i is row i // k, column i % k.
        index = _arange(n * k)
        row = pc.divide(index, k)
        col = pc.subtract(index, pc.multiply(row, k))
        flags = pc.take(pa.concat_arrays(self.unchanged), pc.add(pc.multiply(col, n), row))
        flat = pc.filter(pc.take(pa.array(names, pa.string()), col), flags)
        offsets = pa.concat_arrays([pa.array([0], pa.int32()), pc.cumulative_sum(per_row)])
        lists = pa.ListArray.from_arrays(offsets, flat)
        return pc.if_else(pc.greater(per_row, 0), lists, pa.scalar(None, list_type))


def encode_tuple(values: Sequence[Value]) -> bytes:
    """TupleData for ``values`` (the inverse of the decoders, for rows built in Python)."""
    parts = [_U16.pack(len(values))]
    for v in values:
        if v is None:
            parts.append(b"n")
        elif v is UNCHANGED:
            parts.append(b"u")
        else:
            raw = v.encode() if isinstance(v, str) else bytes(v)
            parts.append(b"t" + _U32.pack(len(raw)) + raw)
    return b"".join(parts)


def _gather(u8: pa.Array, at: pa.Array) -> pa.Array:
    return pc.take(u8, at).cast(pa.int64())


def decode_tuples(messages: Sequence[bytes], starts: Sequence[int], ncols: int) -> TupleColumns:
    """Decode the TupleData at ``starts[r]`` of each ``messages[r]``: ``ncols`` columns each.

    Each tuple must end its message (true of Insert, of Delete, and of an Update without an
    old tuple); rows built in Python pass ``encode_tuple`` bytes with start 0.
    """
    n = len(messages)
    if n == 0:
        return TupleColumns(0, [pa.array([], pa.string()) for _ in range(ncols)],
                            [pa.array([], pa.bool_()) for _ in range(ncols)])
    if len(starts) != n:
        raise ValueError("one start per message")
    try:
        return _decode(messages, starts, ncols)
    except pa.ArrowIndexError as exc:  # a read past the last message's end
        raise ProtocolError("tuple data runs past the end of the message") from exc


def _decode(messages: Sequence[bytes], starts: Sequence[int], ncols: int) -> TupleColumns:
    n = len(messages)
    binary = pa.array(messages, pa.large_binary())
    offsets = pa.Array.from_buffers(pa.int64(), n + 1, [None, binary.buffers()[1]])
    data = binary.buffers()[2]
    u8 = pa.Array.from_buffers(pa.uint8(), data.size, [None, data])
    row_start = offsets.slice(0, n)
    row_end = offsets.slice(1, n)

    pos = pc.add(row_start, pa.array(starts, pa.int64()))
    count = pc.add(pc.shift_left(_gather(u8, pos), 8), _gather(u8, pc.add(pos, 1)))
    if not pc.all(pc.equal(count, ncols)).as_py():
        raise ProtocolError(f"a tuple does not have the relation's {ncols} columns")
    pos = pc.add(pos, 2)

    values: list[pa.StringArray] = []
    unchanged: list[pa.BooleanArray] = []
    zero = pa.scalar(0, pa.int64())
    index = _arange(2 * n)
    evens = pc.multiply(index.slice(0, n), 2)
    pairs = pc.add(pc.shift_right(index, 1), pc.multiply(pc.bit_wise_and(index, 1), n))
    for _ in range(ncols):
        kind = _gather(u8, pos)
        is_text = pc.equal(kind, _KIND_TEXT)
        is_unchanged = pc.equal(kind, _KIND_UNCHANGED)
        known = pc.or_(pc.or_(is_text, is_unchanged), pc.equal(kind, _KIND_NULL))
        if not pc.all(known).as_py():
            raise ProtocolError("a tuple column is neither text, null nor unchanged "
                                "(binary tuples are not supported)")
        # The 4 length bytes exist only after a 't'; elsewhere read byte 0 and discard it.
        length_at = pc.if_else(is_text, pc.add(pos, 1), zero)
        length = zero
        for shift, k in ((24, 0), (16, 1), (8, 2), (0, 3)):
            byte = _gather(u8, pc.if_else(is_text, pc.add(length_at, k), zero))
            length = pc.add(length, pc.shift_left(byte, shift))
        length = pc.if_else(is_text, length, zero)
        value_start = pc.if_else(is_text, pc.add(pos, 5), pos)
        pos = pc.add(pos, pc.if_else(is_text, pc.add(length, 5), 1))
        if not pc.all(pc.less_equal(pos, row_end)).as_py():
            raise ProtocolError("tuple data runs past the end of the message")
        values.append(_cut(data, value_start, length, is_text, pairs, evens))
        unchanged.append(is_unchanged)
    if not pc.all(pc.equal(pos, row_end)).as_py():
        raise ProtocolError("bytes left over after a tuple's last column")
    return TupleColumns(n, values, unchanged)


def _arange(n: int) -> pa.Array:
    """0, 1, ..., n-1 as int64 (without a Python loop)."""
    if n == 0:
        return pa.array([], pa.int64())
    return pc.subtract(pc.cumulative_sum(pa.nulls(n, pa.int64()).fill_null(1)), 1)


def _cut(data: pa.Buffer, start: pa.Array, length: pa.Array, valid: pa.BooleanArray,
         pairs: pa.Array, evens: pa.Array) -> pa.StringArray:
    """The bytes ``data[start[r]:start[r]+length[r]]`` of every row as one string array, null
    where ``valid`` is false.

    The values lie in ``data`` in row order with gaps between them, so the offsets
    ``start0, end0, start1, end1, ...`` describe a binary array whose even elements are the
    values and whose odd elements are the gaps; ``take`` of the even ones (``evens``) copies
    the values into a fresh array. ``pairs`` is the take order that interleaves two arrays of
    n; a null row's (empty) value sits at its kind byte, which keeps the offsets monotonic.
    """
    n = len(start)
    end = pc.add(start, length)
    bounds = pc.take(pa.concat_arrays([start, end]), pairs)
    segments = pa.Array.from_buffers(pa.large_binary(), 2 * n - 1, [None, bounds.buffers()[1], data])
    values = pc.take(segments, evens)
    strings = pa.Array.from_buffers(pa.large_string(), n, [valid.buffers()[1], *values.buffers()[1:]])
    try:
        strings.validate(full=True)
    except pa.ArrowInvalid as exc:
        raise ProtocolError(f"a text value is not valid UTF-8: {exc}") from exc
    return strings.cast(pa.string())
