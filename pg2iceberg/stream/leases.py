"""Per-table leases in the coordinator (``{schema}.leases``): who may commit to a table now.

Contract: a lease row names a table, its holder and an expiry. At most one unexpired holder
exists per table: :meth:`Leases.acquire` succeeds only when the row is missing, expired, or
already held by the same holder, in one statement. A holder that dies loses its lease at the
expiry, so nobody is blocked forever. Leases avoid wasted work and commit races (a long
compaction against a 1 s materializer); they are not what keeps data safe: every Iceberg
commit still checks, optimistically, that the snapshot it read is still current.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from contextlib import contextmanager
from typing import Callable, ContextManager, Iterator

import psycopg

from pg2iceberg.sqlident import quote_ident

_DDL = """
CREATE SCHEMA IF NOT EXISTS {s};
CREATE TABLE IF NOT EXISTS {s}.leases (
  table_name text PRIMARY KEY, holder text NOT NULL, purpose text NOT NULL,
  acquired_at timestamptz NOT NULL DEFAULT now(), expires_at timestamptz NOT NULL,
  waiting text, waiting_until timestamptz)
"""


MATERIALIZE = "materialize"


def holder_id(purpose: str) -> str:
    """A holder name unique to this process and call (``compact@host:pid:abcd``)."""
    return f"{purpose}@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Leases:
    """Lease rows on one coordinator connection (use it from one thread)."""

    def __init__(self, conn: psycopg.Connection, schema: str):
        self.conn = conn
        self.schema = schema
        self.s = quote_ident(schema)
        self._ready = False

    def ensure(self) -> None:
        """Create the lease table when missing (serialized, so concurrent starts are fine)."""
        if self._ready:
            return
        with self.conn.transaction():
            self.conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.schema,))
            for statement in _DDL.split(";"):
                if statement.strip():
                    self.conn.execute(statement.replace("{s}", self.s))
        self._ready = True

    def acquire(self, table_name: str, holder: str, ttl_s: float, purpose: str = "", *,
                queue: bool = False) -> bool:
        """Take (or renew) the lease of ``table_name``; False when someone else holds it.

        Materializers do not exclude each other (purpose ``materialize``): which worker applies
        a table is the assignment's business, fenced by Iceberg's optimistic commit, so a dead
        worker's lease never blocks the worker that takes its tables over. A holder that renews
        is refused once another holder queued (``queue=True``) for the table, so a busy
        materializer hands the table over between two batches. A queued request lapses after
        ``ttl_s`` (a dead waiter blocks nobody for long).
        """
        self.ensure()
        row = self.conn.execute(
            f"INSERT INTO {self.s}.leases AS l (table_name, holder, purpose, expires_at) "
            "VALUES (%s, %s, %s, now() + make_interval(secs => %s)) ON CONFLICT (table_name) DO UPDATE "
            "SET holder = EXCLUDED.holder, purpose = EXCLUDED.purpose, expires_at = EXCLUDED.expires_at, "
            "acquired_at = CASE WHEN l.holder = EXCLUDED.holder AND l.expires_at >= now() "
            "THEN l.acquired_at ELSE now() END, "
            "waiting = CASE WHEN l.waiting = EXCLUDED.holder THEN NULL ELSE l.waiting END "
            "WHERE (l.holder = EXCLUDED.holder OR l.expires_at < now() "
            "OR (l.purpose = %s AND EXCLUDED.purpose = %s)) "
            "AND (l.waiting IS NULL OR l.waiting = EXCLUDED.holder OR l.waiting_until < now()) "
            "RETURNING holder",
            (table_name, holder, purpose or holder.split("@", 1)[0], ttl_s, MATERIALIZE, MATERIALIZE),
        ).fetchone()
        if row is None and queue:
            self.conn.execute(
                f"UPDATE {self.s}.leases SET waiting = %s, waiting_until = now() + make_interval(secs => %s) "
                "WHERE table_name = %s AND (waiting IS NULL OR waiting = %s OR waiting_until < now())",
                (holder, ttl_s, table_name, holder))
        return row is not None

    def release(self, table_name: str, holder: str) -> None:
        """Give the lease back (only if ``holder`` has it); a queued request stays."""
        self.ensure()
        self.conn.execute(
            f"UPDATE {self.s}.leases SET expires_at = '-infinity' WHERE table_name = %s AND holder = %s",
            (table_name, holder))

    def unqueue(self, table_name: str, holder: str) -> None:
        """Withdraw ``holder``'s queued request, if any."""
        self.ensure()
        self.conn.execute(f"UPDATE {self.s}.leases SET waiting = NULL WHERE table_name = %s AND waiting = %s",
                          (table_name, holder))

    def holder(self, table_name: str) -> str | None:
        """The unexpired holder of ``table_name``'s lease, or None."""
        self.ensure()
        row = self.conn.execute(
            f"SELECT holder FROM {self.s}.leases WHERE table_name = %s AND expires_at >= now()",
            (table_name,)).fetchone()
        return str(row[0]) if row else None

    @contextmanager
    def held(self, table_name: str, holder: str, ttl_s: float, *, wait_s: float = 0.0,
             poll_s: float = 0.2, purpose: str = "") -> Iterator[bool]:
        """Hold the lease for the ``with`` body, queueing for it up to ``wait_s``; yields False
        (holding nothing) if it stayed busy."""
        deadline = time.monotonic() + wait_s
        got = self.acquire(table_name, holder, ttl_s, purpose, queue=wait_s > 0)
        while not got and time.monotonic() < deadline:
            time.sleep(poll_s)
            got = self.acquire(table_name, holder, ttl_s, purpose, queue=True)
        try:
            yield got
        finally:
            if got:
                self.release(table_name, holder)
            elif wait_s > 0:
                self.unqueue(table_name, holder)

    @contextmanager
    def turns(self, table_name: str, holder: str, ttl_s: float,
              purpose: str = "") -> Iterator[Callable[[], bool]]:
        """Yields ``keep()``: True while ``holder`` may go on (it takes or renews the lease).

        ``keep()`` turns False once another holder has the lease or queued for it; the lease
        is released when the ``with`` block ends.
        """
        taken: list[bool] = []

        def keep() -> bool:
            ok = self.acquire(table_name, holder, ttl_s, purpose)
            if ok:
                taken.append(True)
            return ok

        try:
            yield keep
        finally:
            if taken:
                self.release(table_name, holder)


def table_guard(conn: psycopg.Connection, schema: str, holder: str,
                ttl_s: float = 120.0) -> Callable[[str], ContextManager[Callable[[], bool]]]:
    """A materializer's guard: ``with guard(table) as keep:`` apply batches ``while keep()``."""
    leases = Leases(conn, schema)
    return lambda table_name: leases.turns(table_name, holder, ttl_s, purpose=MATERIALIZE)
