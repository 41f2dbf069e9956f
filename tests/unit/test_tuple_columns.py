"""The columnar TupleData decoder gives exactly what the per-message decoder gives."""

from __future__ import annotations

import random
import struct

import pytest

from pg2iceberg.source.pgoutput import UNCHANGED, PgOutputDecoder, ProtocolError
from pg2iceberg.source.tuple_columns import decode_tuples, encode_tuple

REL = struct.pack(">I", 16385)
SAMPLES = [None, UNCHANGED, "", "x", "ünïcödé €", "🐘" * 3, "a" * 5000, "tab\there\nnewline",
           "-12345678901234567890.000001", "{\"nested\": {\"json\": [1, 2, {}]}}", "{}"]


def _rows(n: int, ncols: int, seed: int) -> list[tuple]:
    rng = random.Random(seed)
    return [tuple(rng.choice(SAMPLES) for _ in range(ncols)) for _ in range(n)]


def _insert(values: tuple) -> bytes:
    return b"I" + REL + b"N" + encode_tuple(values)


def _columns(rows: list[tuple], ncols: int) -> tuple[list[list], list[list]]:
    values = [[None if r[c] is UNCHANGED else r[c] for r in rows] for c in range(ncols)]
    unchanged = [[r[c] is UNCHANGED for r in rows] for c in range(ncols)]
    return values, unchanged


@pytest.mark.parametrize("ncols", [1, 3, 17])
def test_columns_match_the_per_message_decoder(ncols: int) -> None:
    rows = _rows(3000, ncols, seed=ncols)
    messages = [_insert(r) for r in rows]
    decoder = PgOutputDecoder()
    assert [decoder.decode(m).new for m in messages] == rows  # the reference agrees with the input
    decoded = decode_tuples(messages, [6] * len(messages), ncols)
    values, unchanged = _columns(rows, ncols)
    assert [a.to_pylist() for a in decoded.values] == values
    assert [a.to_pylist() for a in decoded.unchanged] == unchanged


def test_mixed_message_kinds_and_starts() -> None:
    """Inserts, deletes and new-tuple-only updates start their tuple at byte 6; rows built in
    Python (``encode_tuple``) at 0; all in one batch, in order."""
    rows = [("1", "a"), ("2", None), ("3", UNCHANGED), (None, None)]
    messages = [_insert(rows[0]), b"D" + REL + b"K" + encode_tuple(rows[1]),
                b"U" + REL + b"N" + encode_tuple(rows[2]), encode_tuple(rows[3])]
    decoded = decode_tuples(messages, [6, 6, 6, 0], 2)
    assert [a.to_pylist() for a in decoded.values] == [["1", "2", "3", None], ["a", None, None, None]]
    assert decoded.unchanged[1].to_pylist() == [False, False, True, False]


def test_unchanged_names_per_row() -> None:
    rows = [("1", UNCHANGED, UNCHANGED), ("2", "b", "c"), ("3", "b", UNCHANGED), ("4", None, "c")]
    decoded = decode_tuples([encode_tuple(r) for r in rows], [0] * 4, 3)
    assert decoded.unchanged_names(["id", "doc", "blob"]).to_pylist() == [
        ["doc", "blob"], None, ["blob"], None]
    plain = decode_tuples([encode_tuple(("1", "a"))], [0], 2)
    assert plain.unchanged_names(["id", "v"]).to_pylist() == [None]


def test_an_empty_batch_has_empty_columns() -> None:
    decoded = decode_tuples([], [], 2)
    assert [len(a) for a in decoded.values] == [0, 0]
    assert decoded.unchanged_names(["a", "b"]).to_pylist() == []


def test_a_trailing_null_at_the_buffer_end_is_read_in_bounds() -> None:
    decoded = decode_tuples([encode_tuple(("1", None))], [0], 2)
    assert [a.to_pylist() for a in decoded.values] == [["1"], [None]]


@pytest.mark.parametrize("message, ncols, error", [
    (encode_tuple(("1", "2")), 3, "does not have the relation's 3 columns"),
    (struct.pack(">H", 1) + b"b" + struct.pack(">I", 1) + b"x", 1, "binary tuples are not supported"),
    (struct.pack(">H", 1) + b"t" + struct.pack(">I", 9) + b"short", 1, "runs past the end"),
    (encode_tuple(("1",)) + b"extra", 1, "left over"),
    (struct.pack(">H", 2) + b"t" + struct.pack(">I", 1) + b"x", 2, "runs past the end"),  # a column short
    (struct.pack(">H", 1) + b"t\x00", 1, "runs past the end"),  # cut inside the length
    (struct.pack(">H", 1) + b"t" + struct.pack(">I", 2) + b"\xff\xfe", 1, "not valid UTF-8"),
])
def test_malformed_tuples_raise_protocol_errors(message: bytes, ncols: int, error: str) -> None:
    with pytest.raises(ProtocolError, match=error):
        decode_tuples([encode_tuple(("ok",) * ncols), message], [0, 0], ncols)
