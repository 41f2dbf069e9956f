"""The logical replication connection: slot, exported snapshot, COPY BOTH message loop.

Durability contract: :meth:`ReplicationConnection.send_status` reports a flush position to
the server, which lets it recycle WAL up to there and never resend what lies before it. The
caller (the WAL writer) passes only positions whose changes are durably registered in the
stream; nothing in this module acks on its own.
"""

from __future__ import annotations

import select
import struct
import time
from dataclasses import dataclass
from typing import Iterator

import psycopg
from psycopg import pq

from pg2iceberg.errors import TerminalError, TransientError
from pg2iceberg.lsn import format_lsn, parse_lsn
from pg2iceberg.source.connection import connect
from pg2iceberg.source.pgoutput import PG_EPOCH
from pg2iceberg.sqlident import quote_ident

_PG_EPOCH_US = int(PG_EPOCH.timestamp()) * 1_000_000  # PostgreSQL's epoch in Unix µs
_XLOG_HEADER = struct.Struct("!QQq")
_KEEPALIVE = struct.Struct("!Qq?")
_STATUS = struct.Struct("!cQQQq?")


@dataclass(frozen=True, slots=True)
class SystemIdentity:
    """What IDENTIFY_SYSTEM tells: the cluster's identifier and its current WAL position."""

    system_id: str
    timeline: int
    wal_lsn: int


@dataclass(frozen=True, slots=True)
class CreatedSlot:
    """A freshly created slot: changes after ``consistent_lsn`` will be streamed, and the
    exported ``snapshot_name`` sees exactly what committed before it (while this connection
    stays idle)."""

    consistent_lsn: int
    snapshot_name: str


@dataclass(frozen=True, slots=True)
class XLogData:
    """One pgoutput message with the WAL position it was sent at."""

    wal_start: int
    wal_end: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class Keepalive:
    """The server's heartbeat: its WAL end, and whether it wants a status reply now."""

    wal_end: int
    reply_requested: bool


def _now_pg_us() -> int:
    return int(time.time() * 1_000_000) - _PG_EPOCH_US


class ReplicationConnection:
    """A ``replication=database`` connection to the source."""

    def __init__(self, dsn: str, slot_name: str):
        self.slot_name = slot_name
        try:
            self.conn = connect(dsn, replication=True, application_name="pg2iceberg-wal")
        except psycopg.OperationalError as exc:
            raise TransientError(f"cannot open a replication connection: {exc}") from exc
        self._streaming = False

    def close(self) -> None:
        """Close the connection (the server marks the slot inactive)."""
        self.conn.close()

    def identify_system(self) -> SystemIdentity:
        """Run IDENTIFY_SYSTEM."""
        row = self.conn.execute("IDENTIFY_SYSTEM").fetchone()
        assert row is not None
        return SystemIdentity(system_id=str(row[0]), timeline=int(row[1]), wal_lsn=parse_lsn(row[2]))

    def create_slot(self, *, temporary: bool = False) -> CreatedSlot:
        """Create the logical slot (pgoutput) with an exported snapshot.

        A temporary slot lives as long as this connection; it serves only to take a snapshot
        whose exact position is known (a live re-copy of a table).
        """
        kind = "TEMPORARY LOGICAL" if temporary else "LOGICAL"
        try:
            row = self.conn.execute(
                f"CREATE_REPLICATION_SLOT {quote_ident(self.slot_name)} {kind} pgoutput "
                "(SNAPSHOT 'export')"
            ).fetchone()
        except psycopg.errors.DuplicateObject as exc:
            raise TransientError(f"replication slot {self.slot_name!r} appeared concurrently") from exc
        except psycopg.Error as exc:
            raise TerminalError(
                f"cannot create replication slot {self.slot_name!r}: {exc}. Check "
                "max_replication_slots and that the user has the REPLICATION attribute."
            ) from exc
        assert row is not None
        return CreatedSlot(consistent_lsn=parse_lsn(row[1]), snapshot_name=str(row[2]))

    def start(self, publication: str, start_lsn: int = 0) -> None:
        """Enter COPY BOTH mode streaming pgoutput protocol 1 from ``start_lsn``."""
        pub = quote_ident(publication).replace("'", "''")
        command = (
            f"START_REPLICATION SLOT {quote_ident(self.slot_name)} LOGICAL {format_lsn(start_lsn)} "
            f"(proto_version '1', publication_names '{pub}')"
        )
        result = self.conn.pgconn.exec_(command.encode())
        if result.status != pq.ExecStatus.COPY_BOTH:
            message = (result.error_message or b"").decode(errors="replace").strip()
            if "is active for PID" in message:
                raise TerminalError(
                    f"replication slot {self.slot_name!r} is in use by another process ({message}); "
                    "stop the other pg2iceberg first")
            raise TerminalError(f"START_REPLICATION failed: {message}")
        self._streaming = True

    def messages(self, timeout_s: float) -> Iterator[XLogData | Keepalive]:
        """Yield what has arrived, waiting at most ``timeout_s`` for the first message."""
        pgconn = self.conn.pgconn
        waited = False
        while True:
            nbytes, data = pgconn.get_copy_data(1)
            if nbytes == 0:
                if waited:
                    return
                ready, _, _ = select.select([pgconn.socket], [], [], timeout_s)
                waited = True
                if not ready:
                    return
                pgconn.consume_input()
                continue
            if nbytes < 0:
                message = (pgconn.error_message or b"").decode(errors="replace").strip()
                raise TransientError(f"replication stream ended: {message or 'server closed it'}")
            kind = data[0]
            if kind == 0x77:  # 'w'
                wal_start, wal_end, _ = _XLOG_HEADER.unpack_from(data, 1)
                yield XLogData(wal_start, wal_end, bytes(data[25:]))
            elif kind == 0x6B:  # 'k'
                wal_end, _, reply = _KEEPALIVE.unpack_from(data, 1)
                yield Keepalive(wal_end, reply)

    def send_status(self, flushed_lsn: int, *, reply: bool = False) -> None:
        """Report ``flushed_lsn`` as written, flushed and applied."""
        msg = _STATUS.pack(b"r", flushed_lsn, flushed_lsn, flushed_lsn, _now_pg_us(), reply)
        pgconn = self.conn.pgconn
        if pgconn.put_copy_data(msg) != 1 or pgconn.flush() != 0:
            raise TransientError("cannot send standby status to the server")
