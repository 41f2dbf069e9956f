"""Pure decoder of PostgreSQL's ``pgoutput`` logical replication protocol.

This module owns exactly one thing: turning the payload of one ``XLogData``
message (the bytes after the replication framing) into one immutable Python
message object. It does no I/O, keeps no catalog and never interprets column
values beyond UTF-8 decoding text columns; mapping ``rel_id`` to a relation and
text values to typed values belongs to the caller.

Supported: protocol version 1 (``B C O R Y I U D T M``) plus the protocol-2
streaming messages (``S E c A``). Inside a streamed block (between Stream Start
and Stream Stop) ``R Y I U D T M`` carry a leading xid; the decoder tracks that
with ``PgOutputDecoder.in_stream``, so one decoder must see every message of a
replication connection, in order.

Tuple values are ``None`` (SQL NULL, kind ``'n'``), ``UNCHANGED`` (an unchanged
TOASTed value that was not sent, kind ``'u'``), ``str`` (text format, ``'t'``)
or ``bytes`` (binary format, ``'b'``). LSNs and xids are ints; timestamps stay
int microseconds since 2000-01-01 UTC (see ``pg_timestamp_to_datetime``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, fields
from datetime import datetime, timedelta, timezone
from typing import Callable, Final, TypeAlias, TypeVar

__all__ = [
    "UNCHANGED", "ProtocolError", "PgOutputDecoder", "pg_timestamp_to_datetime",
    "Begin", "Commit", "Origin", "RelationColumn", "Relation", "TypeInfo", "Insert",
    "Update", "Delete", "Truncate", "LogicalMessage", "StreamStart", "StreamStop",
    "StreamCommit", "StreamAbort", "Message", "Value",
]


class _Unchanged:
    """Type of the ``UNCHANGED`` sentinel; pickling and copying return the same object."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "UNCHANGED"

    def __reduce__(self) -> str:
        return "UNCHANGED"


UNCHANGED: Final = _Unchanged()
"""Value of a column whose unchanged TOASTed value was not sent (kind ``'u'``)."""

Value: TypeAlias = "str | bytes | None | _Unchanged"
_T = TypeVar("_T")
PG_EPOCH: Final = datetime(2000, 1, 1, tzinfo=timezone.utc)


class ProtocolError(ValueError):
    """The bytes are not a well-formed pgoutput message."""


def pg_timestamp_to_datetime(us: int) -> datetime:
    """Convert PostgreSQL microseconds since 2000-01-01 UTC to an aware datetime."""
    return PG_EPOCH + timedelta(microseconds=us)


_dc = dataclass(frozen=True, slots=True)


@_dc
class Begin:
    final_lsn: int
    commit_ts: int
    xid: int


@_dc
class Commit:
    flags: int
    commit_lsn: int
    end_lsn: int
    commit_ts: int


@_dc
class Origin:
    lsn: int
    name: str


@_dc
class RelationColumn:
    is_key: bool
    name: str
    type_oid: int
    type_mod: int


@_dc
class Relation:
    rel_id: int
    namespace: str
    name: str
    replica_identity: str
    columns: tuple[RelationColumn, ...]
    xid: int | None = None


@_dc
class TypeInfo:
    oid: int
    namespace: str
    name: str
    xid: int | None = None


@_dc
class Insert:
    rel_id: int
    new: tuple[Value, ...]
    xid: int | None = None


@_dc
class Update:
    rel_id: int
    old: tuple[Value, ...] | None
    old_kind: str | None
    new: tuple[Value, ...]
    xid: int | None = None


@_dc
class Delete:
    rel_id: int
    old: tuple[Value, ...]
    old_kind: str
    xid: int | None = None


@_dc
class Truncate:
    rel_ids: tuple[int, ...]
    cascade: bool
    restart_identity: bool
    xid: int | None = None


@_dc
class LogicalMessage:
    transactional: bool
    lsn: int
    prefix: str
    content: bytes
    xid: int | None = None


@_dc
class StreamStart:
    xid: int
    first_segment: bool


@_dc
class StreamStop:
    pass


@_dc
class StreamCommit:
    xid: int
    flags: int
    commit_lsn: int
    end_lsn: int
    commit_ts: int


@_dc
class StreamAbort:
    xid: int
    subxid: int


Message: TypeAlias = (
    Begin | Commit | Origin | Relation | TypeInfo | Insert | Update | Delete | Truncate
    | LogicalMessage | StreamStart | StreamStop | StreamCommit | StreamAbort
)

_U16 = struct.Struct(">H").unpack_from
_U32 = struct.Struct(">I").unpack_from
_U64 = struct.Struct(">Q").unpack_from
_BEGIN = struct.Struct(">QqI").unpack_from
_COMMIT = struct.Struct(">BQQq").unpack_from
_COLUMN = struct.Struct(">Ii").unpack_from
_MESSAGE = struct.Struct(">BQ").unpack_from
_STREAM_COMMIT = struct.Struct(">IBQQq").unpack_from
_STREAM_START = struct.Struct(">IB").unpack_from
_II = struct.Struct(">II").unpack_from
_STOP: Final = StreamStop()


def _fast_ctor(cls: type[_T]) -> Callable[..., _T]:
    """Positional constructor for a frozen slotted dataclass that skips the generated
    ``__init__`` (it calls ``object.__setattr__`` per field; this is ~1.7x faster).
    Used only for the hot row-change messages, which have no defaults to apply."""
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    ns: dict[str, object] = {"_alloc": object.__new__, "_cls": cls}
    ns.update({f"_set_{n}": getattr(cls, n).__set__ for n in names})
    sets = "".join(f"    _set_{n}(_o, {n})\n" for n in names)
    exec(f"def make({', '.join(names)}):\n    _o = _alloc(_cls)\n{sets}    return _o\n", ns)
    return ns["make"]  # type: ignore[return-value]


_new_insert = _fast_ctor(Insert)
_new_update = _fast_ctor(Update)
_new_delete = _fast_ctor(Delete)


def _cstring(buf: bytes, pos: int) -> tuple[str, int]:
    """Read a NUL-terminated UTF-8 string at ``pos``; return it and the offset after the NUL."""
    end = buf.index(b"\0", pos)
    return buf[pos:end].decode(), end + 1


def _tuple(buf: bytes, pos: int) -> tuple[tuple[Value, ...], int]:
    """Read TupleData at ``pos``; return the values and the offset after them."""
    (n,) = _U16(buf, pos)
    pos += 2
    values: list[Value] = []
    append = values.append
    u32 = _U32
    for _ in range(n):
        kind = buf[pos]
        if kind == 116:  # 't'
            start = pos + 5
            pos = start + u32(buf, pos + 1)[0]
            append(buf[start:pos].decode())
        elif kind == 110:  # 'n'
            pos += 1
            append(None)
        elif kind == 117:  # 'u'
            pos += 1
            append(UNCHANGED)
        elif kind == 98:  # 'b'
            start = pos + 5
            pos = start + u32(buf, pos + 1)[0]
            append(buf[start:pos])
        else:
            raise ProtocolError(f"unknown tuple column kind {chr(kind)!r} at offset {pos}")
    if pos > len(buf):
        raise ProtocolError("tuple data runs past the end of the message")
    return tuple(values), pos


class PgOutputDecoder:
    """Decode pgoutput messages of one replication connection, in order.

    Attributes:
        in_stream: True between Stream Start and Stream Stop, where messages
            that can belong to a streamed transaction carry a leading xid.
    """

    __slots__ = ("in_stream", "_dispatch")

    def __init__(self) -> None:
        self.in_stream: bool = False
        self._dispatch: dict[int, Callable[[bytes], Message]] = {
            ord("B"): self._begin, ord("C"): self._commit, ord("O"): self._origin,
            ord("R"): self._relation, ord("Y"): self._type, ord("I"): self._insert,
            ord("U"): self._update, ord("D"): self._delete, ord("T"): self._truncate,
            ord("M"): self._message, ord("S"): self._stream_start,
            ord("E"): self._stream_stop, ord("c"): self._stream_commit,
            ord("A"): self._stream_abort,
        }

    def decode(self, buf: bytes | bytearray | memoryview) -> Message:
        """Decode one message; raise ``ProtocolError`` if it is unknown or malformed."""
        if type(buf) is not bytes:
            buf = bytes(buf)
        if not buf:
            raise ProtocolError("empty pgoutput message")
        handler = self._dispatch.get(buf[0])
        if handler is None:
            raise ProtocolError(f"unknown pgoutput message type {chr(buf[0])!r} (0x{buf[0]:02x})")
        try:
            return handler(buf)
        except ProtocolError:
            raise
        except (struct.error, IndexError, ValueError) as exc:
            raise ProtocolError(f"malformed pgoutput {chr(buf[0])!r} message: {exc}") from exc

    def _xid(self, buf: bytes) -> tuple[int | None, int]:
        """Leading xid of a message that may be streamed, and the offset after it."""
        if self.in_stream:
            return _U32(buf, 1)[0], 5
        return None, 1

    def _begin(self, buf: bytes) -> Begin:
        return Begin(*_BEGIN(buf, 1))

    def _commit(self, buf: bytes) -> Commit:
        return Commit(*_COMMIT(buf, 1))

    def _origin(self, buf: bytes) -> Origin:
        return Origin(_U64(buf, 1)[0], _cstring(buf, 9)[0])

    def _relation(self, buf: bytes) -> Relation:
        xid, pos = self._xid(buf)
        (rel_id,) = _U32(buf, pos)
        namespace, pos = _cstring(buf, pos + 4)
        name, pos = _cstring(buf, pos)
        replica_identity = chr(buf[pos])
        (ncols,) = _U16(buf, pos + 1)
        pos += 3
        columns = []
        for _ in range(ncols):
            flags = buf[pos]
            col_name, pos = _cstring(buf, pos + 1)
            type_oid, type_mod = _COLUMN(buf, pos)
            pos += 8
            columns.append(RelationColumn(bool(flags & 1), col_name, type_oid, type_mod))
        return Relation(rel_id, namespace, name, replica_identity, tuple(columns), xid)

    def _type(self, buf: bytes) -> TypeInfo:
        xid, pos = self._xid(buf)
        (oid,) = _U32(buf, pos)
        namespace, pos = _cstring(buf, pos + 4)
        return TypeInfo(oid, namespace, _cstring(buf, pos)[0], xid)

    def _insert(self, buf: bytes) -> Insert:
        if self.in_stream:
            xid, rel_id = _II(buf, 1)
            pos = 9
        else:
            xid = None
            (rel_id,) = _U32(buf, 1)
            pos = 5
        if buf[pos] != 78:  # 'N'
            raise ProtocolError(f"Insert: expected 'N', got {chr(buf[pos])!r}")
        return _new_insert(rel_id, _tuple(buf, pos + 1)[0], xid)

    def _update(self, buf: bytes) -> Update:
        xid, pos = self._xid(buf)
        (rel_id,) = _U32(buf, pos)
        pos += 4
        kind = buf[pos]
        old: tuple[Value, ...] | None = None
        old_kind: str | None = None
        if kind == 75 or kind == 79:  # 'K' / 'O'
            old_kind = chr(kind)
            old, pos = _tuple(buf, pos + 1)
            kind = buf[pos]
        if kind != 78:  # 'N'
            raise ProtocolError(f"Update: expected 'N', got {chr(kind)!r}")
        return _new_update(rel_id, old, old_kind, _tuple(buf, pos + 1)[0], xid)

    def _delete(self, buf: bytes) -> Delete:
        xid, pos = self._xid(buf)
        (rel_id,) = _U32(buf, pos)
        kind = buf[pos + 4]
        if kind != 75 and kind != 79:
            raise ProtocolError(f"Delete: expected 'K' or 'O', got {chr(kind)!r}")
        return _new_delete(rel_id, _tuple(buf, pos + 5)[0], chr(kind), xid)

    def _truncate(self, buf: bytes) -> Truncate:
        xid, pos = self._xid(buf)
        (nrels,) = _U32(buf, pos)
        options = buf[pos + 4]
        rel_ids = struct.unpack_from(f">{nrels}I", buf, pos + 5)
        return Truncate(rel_ids, bool(options & 1), bool(options & 2), xid)

    def _message(self, buf: bytes) -> LogicalMessage:
        xid, pos = self._xid(buf)
        flags, lsn = _MESSAGE(buf, pos)
        prefix, pos = _cstring(buf, pos + 9)
        (length,) = _U32(buf, pos)
        content = buf[pos + 4:pos + 4 + length]
        if len(content) != length:
            raise ProtocolError("logical message content runs past the end of the message")
        return LogicalMessage(bool(flags & 1), lsn, prefix, content, xid)

    def _stream_start(self, buf: bytes) -> StreamStart:
        xid, first = _STREAM_START(buf, 1)
        self.in_stream = True
        return StreamStart(xid, first == 1)

    def _stream_stop(self, buf: bytes) -> StreamStop:
        self.in_stream = False
        return _STOP

    def _stream_commit(self, buf: bytes) -> StreamCommit:
        return StreamCommit(*_STREAM_COMMIT(buf, 1))

    def _stream_abort(self, buf: bytes) -> StreamAbort:
        return StreamAbort(*_II(buf, 1))  # protocol 4 appends abort_lsn/abort_ts: ignored
