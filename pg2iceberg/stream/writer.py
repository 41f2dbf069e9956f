"""The WAL writer: buffer committed transactions from pgoutput, stage them as stream files.

Speed: a row change is buffered as its raw message bytes (only its rel id is read); a
buffer is decoded column by column when it is written (:mod:`pg2iceberg.source.tuple_columns`),
so the per-message cost stays near the cost of receiving the message. Only an Update that
carries its old tuple (a key change, REPLICA IDENTITY FULL) is decoded on arrival.

Durability contract:
- A stream file is registered in the coordinator (``log``) only after it is durably written,
  and only when every transaction it holds has committed; registration and the advance of
  ``checkpoint.flushed_lsn`` happen in one coordinator transaction.
- The slot is acked (standby status) only up to ``flushed_lsn``, after registration. So a
  crash at any moment either replays a transaction from the slot or finds it registered.
- A transaction whose commit lies before ``flushed_lsn`` is already registered (the ack to
  the server may have been lost in a crash) and is dropped when the server resends it.
- Flushes happen only on transaction boundaries. A transaction bigger than ``flush_rows`` or
  ``flush_bytes`` (payload plus ``ROW_OVERHEAD_BYTES`` a row) is spilled to part files while
  it is received (memory stays bounded, and so do the parts the materializer reads); the parts are
  registered together with the rest at its commit, so nobody sees half a transaction.
- A stream file never spans a change of its table's relation (columns, types, identity): a
  Relation message that differs from the buffered one closes the buffer first, and every
  file records the relation it was decoded under (see :mod:`pg2iceberg.stream.files`).
- When the publication is idle, the writer still advances ``flushed_lsn`` and the slot to
  the server's WAL position (on ``flush_interval``), so a quiet table never pins WAL.
"""

from __future__ import annotations

import struct
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Callable

import pyarrow as pa

from pg2iceberg.source import pgoutput as po
from pg2iceberg.source.replication import Keepalive, ReplicationConnection, XLogData
from pg2iceberg.source.tuple_columns import decode_tuples, encode_tuple
from pg2iceberg.stream.coordinator import Coordinator, NewLogEntry
from pg2iceberg.stream.files import (
    OP_COLUMN, UNCHANGED_COLUMN, Op, SourceColumn, StagedRelation, StreamStore, table_dir_name,
)


@dataclass
class _Relation:
    table_name: str
    columns: tuple[str, ...]
    key_idx: tuple[int, ...]
    staged: StagedRelation


@dataclass
class _TableBuffer:
    """Changes of one table awaiting staging: each row is the raw TupleData of a pgoutput
    message (at ``starts[i]`` in ``messages[i]``), decoded column by column only when the
    buffer is written (:func:`decode_tuples`)."""

    table_name: str
    columns: tuple[str, ...]
    relation: StagedRelation
    messages: list[bytes] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)
    ops: list[int] = field(default_factory=list)
    first_lsn: int = 0

    def __len__(self) -> int:
        return len(self.ops)

    def add_raw(self, op: int, message: bytes, start: int) -> None:
        """A row whose TupleData ends ``message``, starting at ``start``."""
        self.messages.append(message)
        self.starts.append(start)
        self.ops.append(op)

    def add(self, op: int, values: tuple) -> None:
        """A row built in Python (values as the per-message decoder returns them)."""
        self.add_raw(op, encode_tuple(values), 0)

    def truncate_to(self, n: int) -> None:
        del self.messages[n:], self.starts[n:], self.ops[n:]

    def to_arrow(self) -> pa.Table:
        decoded = decode_tuples(self.messages, self.starts, len(self.columns))
        arrays = [pa.array(self.ops, pa.int8()), decoded.unchanged_names(self.columns), *decoded.values]
        table = pa.Table.from_arrays(arrays, names=[OP_COLUMN, UNCHANGED_COLUMN, *self.columns])
        return table.replace_schema_metadata(self.relation.to_metadata())


# What one buffered row costs in memory beyond its payload (a bytes object and three list
# slots, ~60 bytes, plus its share of the columnar copy made when it is written): a
# transaction spills to part files once payload + this per row reaches ``flush_bytes``.
ROW_OVERHEAD_BYTES = 100
STATUS_INTERVAL_S = 10.0
_ROW_KINDS = frozenset(b"IUD")
_U32 = struct.Struct(">I").unpack_from  # standby status at least this often, even when nothing was flushed


@dataclass(frozen=True, slots=True)
class FlushPolicy:
    """When to stage buffered changes."""

    interval_s: float
    rows: int
    bytes: int


@dataclass
class WriterStats:
    """Counters the supervisor reads for status (plain ints, replaced not mutated in place)."""

    server_lsn: int = 0
    flushed_lsn: int = 0
    changes: int = 0
    transactions: int = 0
    buffered_rows: int = 0
    last_flush_at: float = 0.0


class WalWriter:
    """Runs the replication loop until ``stop`` is set; see the module docstring."""

    def __init__(self, *, repl: ReplicationConnection, coordinator: Coordinator, store: StreamStore,
                 slot_name: str, tables: dict[tuple[str, str], str], flushed_lsn: int,
                 policy: Callable[[], FlushPolicy],
                 on_flush: Callable[[list[NewLogEntry], int], None] | None = None):
        self.repl = repl
        self.coordinator = coordinator
        self.store = store
        self.slot_name = slot_name
        self.tables = tables
        self.policy = policy
        self._policy = policy()
        self.on_flush = on_flush
        self.decoder = po.PgOutputDecoder()
        self.relations: dict[int, _Relation] = {}
        self.buffers: dict[str, _TableBuffer] = {}
        self.pending: list[NewLogEntry] = []  # spilled parts awaiting their commit
        self.stats = WriterStats(flushed_lsn=flushed_lsn, server_lsn=flushed_lsn)
        self._committed_lsn = flushed_lsn  # end of the last transaction fully buffered
        self._in_tx = False
        self._skip_tx = False
        self._tx_marks: dict[str, int] = {}
        self._buffered_bytes = 0
        self._buffered_rows = 0
        self._last_flush = time.monotonic()
        self._last_status = 0.0

    # -- main loop -----------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Stream, buffer and flush until ``stop`` is set; then flush what is committed."""
        decoder = self.decoder
        while not stop.is_set():
            self._policy = self.policy()  # read once per drained burst, not per message
            spill_bytes, spill_rows = self._policy.bytes, self._policy.rows
            for item in self.repl.messages(timeout_s=0.2):
                if isinstance(item, XLogData):
                    payload = item.payload
                    if payload[0] in _ROW_KINDS and not decoder.in_stream:
                        self._row(payload, item.wal_start)
                    else:
                        self._handle(decoder.decode(payload), item)
                    if item.wal_end > self.stats.server_lsn:
                        self.stats.server_lsn = item.wal_end
                elif isinstance(item, Keepalive):
                    self.stats.server_lsn = max(self.stats.server_lsn, item.wal_end)
                    if item.reply_requested:
                        self.repl.send_status(self.stats.flushed_lsn)
                if self._in_tx and (self._buffered_rows >= spill_rows or
                                    self._buffered_bytes + self._buffered_rows * ROW_OVERHEAD_BYTES >= spill_bytes):
                    self._spill()
            self._maybe_flush(idle=True)
        if not self._in_tx:
            self.flush()

    def _row(self, payload: bytes, lsn: int) -> None:
        """The hot path: an Insert, Update or Delete is buffered as raw bytes, undecoded.

        Every Insert and Delete, and an Update without an old tuple, ends with the one tuple
        that is staged, right after the kind byte, rel id and tuple tag. An Update that
        carries its old tuple (a key change, or REPLICA IDENTITY FULL) is decoded here,
        because what is staged depends on the values (:meth:`_update_with_old`).
        """
        rel = self.relations.get(_U32(payload, 1)[0])
        if rel is None or self._skip_tx:
            return
        buf = self._buffer(rel, lsn)
        kind = payload[0]
        if kind == 73:  # 'I'
            buf.add_raw(Op.INSERT, payload, 6)
        elif kind == 68:  # 'D': the key ('K') or the whole old row ('O')
            buf.add_raw(Op.DELETE, payload, 6)
        elif payload[5] == 78:  # 'U' with the new tuple only
            buf.add_raw(Op.UPDATE, payload, 6)
        else:
            self._update_with_old(rel, buf, self.decoder.decode(payload))
        self.stats.changes += 1
        self._buffered_rows += 1
        self._buffered_bytes += len(payload)

    @staticmethod
    def _update_with_old(rel: _Relation, buf: _TableBuffer, msg: po.Update) -> None:
        # The old row goes first when the key changed, and always when PostgreSQL sends
        # whole rows as the identity (REPLICA IDENTITY FULL: rows match on every column).
        full_row = len(rel.key_idx) == len(rel.columns)
        new = msg.new
        if msg.old_kind == "O" and po.UNCHANGED in new:
            # A whole old row (REPLICA IDENTITY FULL) holds the unchanged TOASTed values.
            new = tuple(o if n is po.UNCHANGED else n for o, n in zip(msg.old, new))
        if full_row:
            buf.add(Op.DELETE, msg.old)
        elif any(msg.old[i] != new[i] for i in rel.key_idx):
            buf.add(Op.MOVE, msg.old)  # the new image may inherit from the old key
        buf.add(Op.UPDATE, new)

    def _handle(self, msg: object, item: XLogData) -> None:
        if isinstance(msg, po.Begin):
            self._in_tx = True
            self._skip_tx = msg.final_lsn < self.stats.flushed_lsn
            self._tx_marks = {name: len(buf) for name, buf in self.buffers.items()}
        elif isinstance(msg, po.Commit):
            self._in_tx = False
            if self._skip_tx:
                for name, buf in self.buffers.items():
                    buf.truncate_to(self._tx_marks.get(name, 0))
                return
            self._committed_lsn = msg.end_lsn
            self.stats.transactions += 1
            if self.pending:
                self.flush()
            else:
                self._maybe_flush(idle=False)
        elif isinstance(msg, (po.Insert, po.Update, po.Delete)):
            # Only inside a streamed block (protocol 2), which the writer does not request.
            raise po.ProtocolError("a streamed transaction's change arrived; pg2iceberg uses protocol 1")
        elif isinstance(msg, po.Relation):
            self._relation(msg, item.wal_start)
        elif isinstance(msg, po.Truncate):
            if self._skip_tx:
                return
            for rel_id in msg.rel_ids:
                rel = self.relations.get(rel_id)
                if rel is not None:
                    buf = self._buffer(rel, item.wal_start)
                    buf.add(Op.TRUNCATE, (None,) * len(rel.columns))
                    self.stats.changes += 1
                    self._buffered_rows += 1

    def _relation(self, msg: po.Relation, lsn: int) -> None:
        name = self.tables.get((msg.namespace, msg.name))
        if name is None:
            self.relations.pop(msg.rel_id, None)
            return
        columns = tuple(c.name for c in msg.columns)
        key_idx = tuple(i for i, c in enumerate(msg.columns) if c.is_key)
        staged = StagedRelation(tuple(SourceColumn(c.name, c.type_oid, c.type_mod, c.is_key)
                                      for c in msg.columns), msg.replica_identity)
        self.relations[msg.rel_id] = _Relation(name, columns, key_idx, staged)
        buf = self.buffers.get(name)
        if buf is not None and buf.relation != staged:
            # The table's columns or types changed: what is buffered was decoded under the old
            # relation, so it goes to a file of its own that records that relation.
            if len(buf):
                self.pending.append(self._write(buf))
            del self.buffers[name]

    def _buffer(self, rel: _Relation, lsn: int) -> _TableBuffer:
        buf = self.buffers.get(rel.table_name)
        if buf is None:
            buf = self.buffers[rel.table_name] = _TableBuffer(rel.table_name, rel.columns, rel.staged,
                                                                  first_lsn=lsn)
            self._tx_marks.setdefault(rel.table_name, 0)
        return buf

    # -- flushing ------------------------------------------------------------------------

    def _maybe_flush(self, *, idle: bool) -> None:
        policy = self._policy
        due = time.monotonic() - self._last_flush >= policy.interval_s
        if self._in_tx:
            return
        if self._buffered_rows >= policy.rows or self._buffered_bytes >= policy.bytes:
            self.flush()
        elif due and (self._buffered_rows or self.pending):
            self.flush()
        elif due and idle and self.stats.server_lsn > self.stats.flushed_lsn:
            # Nothing buffered and outside any transaction: everything up to the server's
            # position is either staged or not ours. Advance, so the slot does not pin WAL.
            self._committed_lsn = max(self._committed_lsn, self.stats.server_lsn)
            self.flush()

    def _write(self, buf: _TableBuffer) -> NewLogEntry:
        data = buf.to_arrow()
        path = self.store.new_path(table_dir_name(buf.table_name), buf.first_lsn)
        size = self.store.write(path, data)
        return NewLogEntry(buf.table_name, path, buf.first_lsn, 0, data.num_rows, size)

    def _spill(self) -> None:
        """Write the buffers of a transaction in progress to part files (registered at commit)."""
        for buf in self.buffers.values():
            if len(buf):
                self.pending.append(self._write(buf))
        self.buffers.clear()
        self._tx_marks = {}
        self._buffered_bytes = self._buffered_rows = 0
        self._keep_alive()

    def _keep_alive(self) -> None:
        """Report the (unchanged) flushed position now and then while a long transaction is
        decoded, so the server's wal_sender_timeout never ends the connection."""
        if time.monotonic() - self._last_status > STATUS_INTERVAL_S:
            self.repl.send_status(self.stats.flushed_lsn)
            self._last_status = time.monotonic()

    def flush(self) -> None:
        """Stage every buffered committed change, register it, then ack the slot."""
        lsn = self._committed_lsn
        entries = list(self.pending)
        entries += [self._write(buf) for buf in self.buffers.values() if len(buf)]
        entries = [replace(e, last_lsn=lsn) for e in entries]  # every part completes at this commit
        if entries or lsn > self.stats.flushed_lsn:
            self.coordinator.register_flush(self.slot_name, entries, lsn)
        self.pending.clear()
        self.buffers.clear()
        self._buffered_bytes = self._buffered_rows = 0
        self._last_flush = time.monotonic()
        if lsn > self.stats.flushed_lsn or entries:
            self.stats.flushed_lsn = max(lsn, self.stats.flushed_lsn)
            self.repl.send_status(self.stats.flushed_lsn)
            self.stats.last_flush_at = time.time()
            if self.on_flush is not None:
                self.on_flush(entries, self.stats.flushed_lsn)
        else:
            self._keep_alive()
        self._last_status = time.monotonic()
