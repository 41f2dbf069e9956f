"""Watch partitioned source tables for changes that send no row changes, and re-copy them.

Under ``publish_via_partition_root`` PostgreSQL sends nothing for ATTACH PARTITION (the
attached rows appear), DETACH PARTITION (they vanish) or a TRUNCATE of one partition. The
watch reads each partitioned table's leaf partitions and their ``relfilenode`` (which a
TRUNCATE replaces) every few seconds; when that set changes, it reports a
``partitions_changed`` event and submits a :class:`~pg2iceberg.runtime.commands.Snapshot`
of the table, which re-copies it at an exact position (see live_actions.py). A VACUUM FULL or
CLUSTER also replaces relfilenodes: the re-copy is then unneeded but harmless. The last
reading is kept in the coordinator's ``meta``, so a change made while pg2iceberg was stopped
is caught at the next start.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Callable

import psycopg

from pg2iceberg.runtime import commands as c
from pg2iceberg.stream.coordinator import Coordinator

if TYPE_CHECKING:
    from pg2iceberg.runtime.supervisor import Supervisor

log = logging.getLogger("pg2iceberg")
CHECK_INTERVAL_S = 5.0
META_PREFIX = "partitions:"  # coordinator meta key of a table's last leaves reading
Leaves = frozenset[tuple[int, int, str]]  # (oid, relfilenode, name)

_LEAVES_SQL = """
SELECT c.oid, c.relfilenode, c.relname
FROM pg_partition_tree(%s::regclass) t JOIN pg_class c ON c.oid = t.relid
WHERE t.isleaf
"""


def read_leaves(conn: psycopg.Connection, oid: int) -> Leaves:
    """The leaf partitions of a partitioned table with their storage identity."""
    return frozenset((int(r[0]), int(r[1]), str(r[2])) for r in conn.execute(_LEAVES_SQL, (oid,)))


def describe_change(before: Leaves, after: Leaves) -> dict[str, list[str]]:
    """What happened between two readings: attached, detached and rewritten (truncated) leaves."""
    old = {oid: (node, name) for oid, node, name in before}
    new = {oid: (node, name) for oid, node, name in after}
    return {
        "attached": sorted(new[o][1] for o in new.keys() - old.keys()),
        "detached": sorted(old[o][1] for o in old.keys() - new.keys()),
        "truncated": sorted(new[o][1] for o in new.keys() & old.keys() if new[o][0] != old[o][0]),
    }


class PartitionWatch:
    """Re-copies a partitioned table whenever its partitions change under the stream."""

    def __init__(self, sup: "Supervisor", connect: Callable[[], psycopg.Connection],
                 tables: dict[str, int], coordinator: Coordinator):
        self.sup = sup
        self.connect = connect
        self.tables = tables  # configured name -> oid of the partitioned source table
        self.coordinator = coordinator
        self.seen: dict[str, Leaves] = {}
        self.resync: set[str] = set()

    def _last(self, name: str) -> Leaves | None:
        if name not in self.seen:
            stored = self.coordinator.get_meta(META_PREFIX + name)
            if stored is None:
                return None
            self.seen[name] = frozenset((int(o), int(n), str(r)) for o, n, r in json.loads(stored))
        return self.seen[name]

    def run(self) -> None:
        """Check every few seconds until the pipeline stops."""
        conn = None
        try:
            while not self.sup.stop_event.wait(CHECK_INTERVAL_S):
                try:
                    conn = conn or self.connect()
                    self.check(conn)
                except psycopg.Error as exc:
                    log.warning("partition check failed (will retry): %s", exc)
                    if conn is not None:
                        conn.close()
                    conn = None
        finally:
            if conn is not None:
                conn.close()

    def check(self, conn: psycopg.Connection) -> None:
        """One reading; submits re-copies of the tables whose partitions changed."""
        for name, oid in self.tables.items():
            leaves = read_leaves(conn, oid)
            before = self._last(name)
            if leaves == before:
                continue
            self.seen[name] = leaves
            self.coordinator.set_meta(META_PREFIX + name, json.dumps(sorted(leaves)))
            if before is not None:
                self.sup.events.emit("partitions_changed", table=name, **describe_change(before, leaves))
                self.resync.add(name)
        for name in sorted(self.resync):
            if self.sup.submit(c.Snapshot(table=name)):
                self.resync.discard(name)
