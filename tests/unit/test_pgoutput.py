"""Unit tests of the pgoutput decoder, on hand-crafted protocol bytes."""

from __future__ import annotations

import copy
import dataclasses
import pickle
import struct
from datetime import datetime, timezone

import pytest

from pg2iceberg.source.pgoutput import (
    UNCHANGED,
    Begin,
    Commit,
    Delete,
    Insert,
    LogicalMessage,
    Origin,
    PgOutputDecoder,
    ProtocolError,
    Relation,
    RelationColumn,
    StreamAbort,
    StreamCommit,
    StreamStart,
    StreamStop,
    Truncate,
    TypeInfo,
    Update,
    pg_timestamp_to_datetime,
)

XID = 0xFFFF_FFF0  # above 2**31: xids are unsigned
LSN = 0x16_B374_D848
TS = 757_382_400_123_456  # 2024-01-01T00:00:00.123456Z in µs since 2000-01-01


# --- byte builders ---------------------------------------------------------------


def cstr(s: str) -> bytes:
    return s.encode() + b"\0"


def xid_prefix(xid: int | None) -> bytes:
    return b"" if xid is None else struct.pack(">I", xid)


def tup(*cols: object) -> bytes:
    """TupleData: None -> 'n', UNCHANGED -> 'u', str -> 't', bytes -> 'b'."""
    out = struct.pack(">h", len(cols))
    for c in cols:
        if c is None:
            out += b"n"
        elif c is UNCHANGED:
            out += b"u"
        elif isinstance(c, str):
            raw = c.encode()
            out += b"t" + struct.pack(">i", len(raw)) + raw
        else:
            assert isinstance(c, bytes)
            out += b"b" + struct.pack(">i", len(c)) + c
    return out


def begin_msg() -> bytes:
    return b"B" + struct.pack(">QqI", LSN, TS, XID)


def commit_msg(flags: int = 0) -> bytes:
    return b"C" + struct.pack(">bQQq", flags, LSN, LSN + 48, TS)


def relation_msg(xid: int | None = None) -> bytes:
    body = struct.pack(">I", 16385) + cstr("public") + cstr("orders") + b"d"
    cols = [(1, "id", 23, -1), (0, "note", 25, -1), (0, "price", 1700, 655366)]
    body += struct.pack(">h", len(cols))
    for flags, name, oid, mod in cols:
        body += struct.pack(">b", flags) + cstr(name) + struct.pack(">Ii", oid, mod)
    return b"R" + xid_prefix(xid) + body


def insert_msg(*cols: object, xid: int | None = None, rel_id: int = 16385) -> bytes:
    return b"I" + xid_prefix(xid) + struct.pack(">I", rel_id) + b"N" + tup(*cols)


def stream_start_msg(xid: int = XID, first: int = 1) -> bytes:
    return b"S" + struct.pack(">Ib", xid, first)


@pytest.fixture
def dec() -> PgOutputDecoder:
    return PgOutputDecoder()


# --- transaction framing -----------------------------------------------------------


def test_begin(dec: PgOutputDecoder) -> None:
    assert dec.decode(begin_msg()) == Begin(final_lsn=LSN, commit_ts=TS, xid=XID)


def test_commit(dec: PgOutputDecoder) -> None:
    assert dec.decode(commit_msg()) == Commit(
        flags=0, commit_lsn=LSN, end_lsn=LSN + 48, commit_ts=TS
    )


def test_origin(dec: PgOutputDecoder) -> None:
    msg = b"O" + struct.pack(">Q", LSN) + cstr("node_ä")
    assert dec.decode(msg) == Origin(lsn=LSN, name="node_ä")


def test_max_lsn_is_unsigned(dec: PgOutputDecoder) -> None:
    msg = b"B" + struct.pack(">QqI", 2**64 - 1, -1, 2**32 - 1)
    assert dec.decode(msg) == Begin(2**64 - 1, -1, 2**32 - 1)


# --- catalog messages --------------------------------------------------------------


def test_relation(dec: PgOutputDecoder) -> None:
    rel = dec.decode(relation_msg())
    assert rel == Relation(
        rel_id=16385,
        namespace="public",
        name="orders",
        replica_identity="d",
        columns=(
            RelationColumn(is_key=True, name="id", type_oid=23, type_mod=-1),
            RelationColumn(is_key=False, name="note", type_oid=25, type_mod=-1),
            RelationColumn(is_key=False, name="price", type_oid=1700, type_mod=655366),
        ),
        xid=None,
    )
    assert isinstance(rel.columns, tuple)


def test_relation_without_columns(dec: PgOutputDecoder) -> None:
    msg = b"R" + struct.pack(">I", 7) + cstr("s") + cstr("t") + b"n" + struct.pack(">h", 0)
    assert dec.decode(msg) == Relation(7, "s", "t", "n", (), None)


def test_type(dec: PgOutputDecoder) -> None:
    msg = b"Y" + struct.pack(">I", 99_001) + cstr("public") + cstr("mood")
    assert dec.decode(msg) == TypeInfo(oid=99_001, namespace="public", name="mood", xid=None)


# --- row changes and tuple column kinds ------------------------------------------


def test_insert_every_column_kind(dec: PgOutputDecoder) -> None:
    msg = insert_msg("42", None, UNCHANGED, b"\x00\xff\x01", "héllo", "")
    got = dec.decode(msg)
    assert got == Insert(rel_id=16385, new=("42", None, UNCHANGED, b"\x00\xff\x01", "héllo", ""))
    assert type(got.new) is tuple
    assert got.new[2] is UNCHANGED
    assert type(got.new[3]) is bytes and type(got.new[0]) is str


def test_insert_zero_columns(dec: PgOutputDecoder) -> None:
    assert dec.decode(insert_msg()) == Insert(16385, (), None)


def test_insert_value_with_nul_and_large_oid(dec: PgOutputDecoder) -> None:
    msg = insert_msg("a\0b", b"\0", rel_id=0xFFFF_FFFE)
    assert dec.decode(msg) == Insert(0xFFFF_FFFE, ("a\0b", b"\0"), None)


def test_update_without_old(dec: PgOutputDecoder) -> None:
    msg = b"U" + struct.pack(">I", 5) + b"N" + tup("1", UNCHANGED)
    assert dec.decode(msg) == Update(rel_id=5, old=None, old_kind=None, new=("1", UNCHANGED))


@pytest.mark.parametrize("kind", ["K", "O"])
def test_update_with_old(dec: PgOutputDecoder, kind: str) -> None:
    msg = b"U" + struct.pack(">I", 5) + kind.encode() + tup("1", None) + b"N" + tup("2", "x")
    assert dec.decode(msg) == Update(5, ("1", None), kind, ("2", "x"), None)


@pytest.mark.parametrize("kind", ["K", "O"])
def test_delete(dec: PgOutputDecoder, kind: str) -> None:
    msg = b"D" + struct.pack(">I", 5) + kind.encode() + tup("1", None, b"\x01")
    assert dec.decode(msg) == Delete(rel_id=5, old=("1", None, b"\x01"), old_kind=kind)


@pytest.mark.parametrize(
    ("options", "cascade", "restart"),
    [(0, False, False), (1, True, False), (2, False, True), (3, True, True)],
)
def test_truncate(dec: PgOutputDecoder, options: int, cascade: bool, restart: bool) -> None:
    msg = b"T" + struct.pack(">Ib", 3, options) + struct.pack(">3I", 10, 11, 0xFFFF_FFFF)
    assert dec.decode(msg) == Truncate((10, 11, 0xFFFF_FFFF), cascade, restart, None)


@pytest.mark.parametrize("flags", [0, 1])
def test_logical_message(dec: PgOutputDecoder, flags: int) -> None:
    content = b"\x00payload\xff"
    msg = b"M" + struct.pack(">bQ", flags, LSN) + cstr("pg2iceberg") + struct.pack(
        ">i", len(content)
    ) + content
    assert dec.decode(msg) == LogicalMessage(bool(flags), LSN, "pg2iceberg", content, None)


# --- streaming (protocol 2) ----------------------------------------------------------


def test_stream_block_sets_and_clears_in_stream(dec: PgOutputDecoder) -> None:
    assert dec.in_stream is False
    assert dec.decode(stream_start_msg(first=1)) == StreamStart(xid=XID, first_segment=True)
    assert dec.in_stream is True
    assert dec.decode(b"E") == StreamStop()
    assert dec.in_stream is False
    assert dec.decode(stream_start_msg(first=0)) == StreamStart(XID, False)
    assert dec.in_stream is True


def test_streamed_messages_carry_xid(dec: PgOutputDecoder) -> None:
    dec.decode(stream_start_msg())
    rel = dec.decode(relation_msg(xid=XID))
    assert isinstance(rel, Relation) and rel.xid == XID and rel.name == "orders"
    typ = b"Y" + struct.pack(">II", XID, 77) + cstr("s") + cstr("t")
    assert dec.decode(typ) == TypeInfo(77, "s", "t", XID)
    assert dec.decode(insert_msg("1", None, xid=XID)) == Insert(16385, ("1", None), XID)
    upd = b"U" + struct.pack(">II", XID, 5) + b"O" + tup("1") + b"N" + tup("2")
    assert dec.decode(upd) == Update(5, ("1",), "O", ("2",), XID)
    upd_plain = b"U" + struct.pack(">II", XID, 5) + b"N" + tup(UNCHANGED)
    assert dec.decode(upd_plain) == Update(5, None, None, (UNCHANGED,), XID)
    dele = b"D" + struct.pack(">II", XID, 5) + b"K" + tup("1")
    assert dec.decode(dele) == Delete(5, ("1",), "K", XID)
    trunc = b"T" + struct.pack(">IIbI", XID, 1, 1, 10)
    assert dec.decode(trunc) == Truncate((10,), True, False, XID)
    msg = b"M" + struct.pack(">IbQ", XID, 1, LSN) + cstr("p") + struct.pack(">i", 2) + b"hi"
    assert dec.decode(msg) == LogicalMessage(True, LSN, "p", b"hi", XID)
    assert dec.decode(b"E") == StreamStop()
    # after Stream Stop the same kind of message has no xid again
    assert dec.decode(insert_msg("1")) == Insert(16385, ("1",), None)


def test_stream_commit(dec: PgOutputDecoder) -> None:
    msg = b"c" + struct.pack(">IbQQq", XID, 0, LSN, LSN + 8, TS)
    assert dec.decode(msg) == StreamCommit(
        xid=XID, flags=0, commit_lsn=LSN, end_lsn=LSN + 8, commit_ts=TS
    )


def test_stream_abort(dec: PgOutputDecoder) -> None:
    assert dec.decode(b"A" + struct.pack(">II", XID, XID + 1)) == StreamAbort(XID, XID + 1)


def test_stream_abort_protocol4_trailer_ignored(dec: PgOutputDecoder) -> None:
    msg = b"A" + struct.pack(">IIQq", XID, 9, LSN, TS)
    assert dec.decode(msg) == StreamAbort(xid=XID, subxid=9)


# --- input types, errors, helpers ------------------------------------------------


@pytest.mark.parametrize("wrap", [bytearray, memoryview])
def test_accepts_bytearray_and_memoryview(dec: PgOutputDecoder, wrap: type) -> None:
    got = dec.decode(wrap(insert_msg("1", b"\x02")))
    assert got == Insert(16385, ("1", b"\x02"), None)
    assert type(got.new[1]) is bytes


def test_unknown_message_type(dec: PgOutputDecoder) -> None:
    with pytest.raises(ProtocolError, match="'Z'"):
        dec.decode(b"Z\x00\x00")
    assert issubclass(ProtocolError, ValueError)


def test_empty_message(dec: PgOutputDecoder) -> None:
    with pytest.raises(ProtocolError):
        dec.decode(b"")


def test_unknown_tuple_kind(dec: PgOutputDecoder) -> None:
    msg = b"I" + struct.pack(">I", 1) + b"N" + struct.pack(">h", 1) + b"x"
    with pytest.raises(ProtocolError, match="'x'"):
        dec.decode(msg)


@pytest.mark.parametrize(
    "msg",
    [
        begin_msg()[:-1],
        commit_msg()[:10],
        b"O" + struct.pack(">Q", LSN) + b"no-nul",
        relation_msg()[:-3],
        insert_msg("hello")[:-2],  # text value cut short
        insert_msg("a", "b")[:-6],  # second column missing
        b"I" + struct.pack(">I", 1) + b"X" + tup("1"),  # not 'N'
        b"U" + struct.pack(">I", 1) + b"K" + tup("1") + b"X" + tup("2"),
        b"D" + struct.pack(">I", 1) + b"N" + tup("1"),  # delete needs K or O
        b"T" + struct.pack(">Ib", 3, 0) + struct.pack(">I", 10),
        b"M" + struct.pack(">bQ", 1, LSN) + cstr("p") + struct.pack(">i", 10) + b"short",
        b"S\x00\x00",
        b"A" + struct.pack(">I", 1),
        b"R" + struct.pack(">I", 1) + b"\xff\xfe\0" + cstr("t") + b"d" + struct.pack(">h", 0),
    ],
)
def test_malformed_messages_raise_protocol_error(dec: PgOutputDecoder, msg: bytes) -> None:
    with pytest.raises(ProtocolError):
        dec.decode(msg)


def test_unchanged_sentinel() -> None:
    assert repr(UNCHANGED) == "UNCHANGED"
    assert pickle.loads(pickle.dumps(UNCHANGED)) is UNCHANGED
    assert copy.deepcopy(UNCHANGED) is UNCHANGED
    assert UNCHANGED is not None and UNCHANGED != ""


def test_messages_are_frozen_slotted_dataclasses(dec: PgOutputDecoder) -> None:
    ins = dec.decode(insert_msg("1"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        ins.rel_id = 2  # type: ignore[misc]
    assert not hasattr(ins, "__dict__")
    assert hash(ins) == hash(Insert(16385, ("1",), None))


def test_pg_timestamp_to_datetime() -> None:
    assert pg_timestamp_to_datetime(0) == datetime(2000, 1, 1, tzinfo=timezone.utc)
    got = pg_timestamp_to_datetime(TS)
    assert got == datetime(2024, 1, 1, 0, 0, 0, 123456, tzinfo=timezone.utc)
    assert got.tzinfo is not None and got.utcoffset().total_seconds() == 0
    assert pg_timestamp_to_datetime(-1) == datetime(
        1999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc
    )
