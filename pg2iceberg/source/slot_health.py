"""The replication slot as the server sees it: positions, retained WAL, activity."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from pg2iceberg.lsn import parse_lsn


@dataclass(frozen=True, slots=True)
class SlotHealth:
    """One reading of ``pg_replication_slots`` and the server's WAL position."""

    server_lsn: int
    confirmed_lsn: int | None  # None when the slot does not exist
    retained_bytes: int | None  # WAL the server keeps for the slot (from restart_lsn)
    active: bool | None
    active_pid: int | None
    wal_status: str | None  # reserved, extended, unreserved, lost


_QUERY = """
SELECT pg_current_wal_lsn()::text, s.confirmed_flush_lsn::text,
       pg_wal_lsn_diff(pg_current_wal_lsn(), s.restart_lsn)::bigint, s.active, s.active_pid, s.wal_status
FROM (SELECT 1) one LEFT JOIN pg_replication_slots s ON s.slot_name = %s
"""


def read_slot_health(conn: psycopg.Connection, slot_name: str) -> SlotHealth:
    """Read the slot's health; the slot fields are None when it does not exist."""
    row = conn.execute(_QUERY, (slot_name,)).fetchone()
    assert row is not None
    server, confirmed, retained, active, pid, wal_status = row
    return SlotHealth(server_lsn=parse_lsn(server), confirmed_lsn=parse_lsn(confirmed) if confirmed else None,
                      retained_bytes=int(retained) if retained is not None else None, active=active,
                      active_pid=pid, wal_status=wal_status)
