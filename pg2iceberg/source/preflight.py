"""Pre-flight checks of the source server, and the publication/slot set-up.

Every check names what is missing and how to fix it; nothing is changed by the checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import psycopg

from pg2iceberg.config import TableConfig
from pg2iceberg.errors import TerminalError
from pg2iceberg.source.key_override import apply_key_override
from pg2iceberg.source.schema import TableInfo, describe_table
from pg2iceberg.sqlident import quote_ident


@dataclass(frozen=True, slots=True)
class SlotInfo:
    """A replication slot as pg_replication_slots shows it."""

    name: str
    plugin: str | None
    active_pid: int | None
    confirmed_flush_lsn: str | None
    wal_status: str | None


def check_server(conn: psycopg.Connection, *, needs_slot: bool) -> None:
    """Server version ≥ 13, wal_level=logical, free slots and senders, privileges."""
    version = int(conn.execute("SHOW server_version_num").fetchone()[0])  # type: ignore[index]
    if version < 130000:
        raise TerminalError(f"PostgreSQL {version // 10000} is too old: pg2iceberg needs 13 or newer")
    if not needs_slot:
        return
    wal_level = conn.execute("SHOW wal_level").fetchone()[0]  # type: ignore[index]
    if wal_level != "logical":
        raise TerminalError(
            f"wal_level is '{wal_level}', logical replication needs 'logical': run "
            "ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL")
    row = conn.execute(
        "SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
    if not row or not row[0]:
        raise TerminalError("the source user lacks the REPLICATION attribute: run "
                            "ALTER ROLE <user> WITH REPLICATION")


def check_free_slot(conn: psycopg.Connection) -> None:
    """Before creating a slot: a free replication slot and WAL sender must exist."""
    used, limit = conn.execute(
        "SELECT (SELECT count(*) FROM pg_replication_slots), "
        "current_setting('max_replication_slots')::int").fetchone()  # type: ignore[misc]
    if used >= limit:
        raise TerminalError(f"all {limit} replication slots are in use: raise max_replication_slots "
                            "or drop an unused slot (SELECT * FROM pg_replication_slots)")


def describe_tables(conn: psycopg.Connection, names: Sequence[tuple[str, str]],
                    key_overrides: Mapping[tuple[str, str], tuple[str, ...]] | None = None) -> list[TableInfo]:
    """Describe every configured table; a missing or unreplicable one is an error naming it.

    ``key_overrides`` maps (schema, table) to a configured ``primary_key`` (see key_override.py).
    """
    infos, problems = [], []
    for schema, table in names:
        info = describe_table(conn, schema, table)
        display = f"{schema}.{table}"
        if info is None:
            problems.append(f"table {display} does not exist (or is not a table)")
            continue
        override = (key_overrides or {}).get((schema, table))
        if override:
            try:
                info = apply_key_override(conn, info, override)
            except ValueError as exc:
                problems.append(str(exc))
                continue
        if not info.primary_key and info.replica_identity != "f":
            problems.append(
                f"table {display} has no primary key; pg2iceberg needs one to match rows: add one "
                f"(ALTER TABLE {info.qualified_sql} ADD PRIMARY KEY (...)), or let PostgreSQL send whole "
                f"rows (ALTER TABLE {info.qualified_sql} REPLICA IDENTITY FULL; rows then match on every "
                f"column), or, when a unique index on NOT NULL columns exists, name them in the config "
                f"(tables[{display}].primary_key)")
            continue
        row = conn.execute("SELECT has_table_privilege(%s, 'SELECT')", (info.oid,)).fetchone()
        if not row or not row[0]:
            problems.append(f"the source user cannot SELECT from {display}: GRANT SELECT ON "
                            f"{info.qualified_sql} TO <user>")
            continue
        infos.append(info)
    if problems:
        raise TerminalError("; ".join(problems))
    return infos


def describe_configured(conn: psycopg.Connection, tables: Sequence[TableConfig]) -> list[TableInfo]:
    """:func:`describe_tables` for configured tables, with their ``primary_key`` overrides."""
    return describe_tables(conn, [(t.schema, t.table) for t in tables],
                           {(t.schema, t.table): t.primary_key for t in tables if t.primary_key})


def ensure_publication(conn: psycopg.Connection, name: str, tables: Sequence[TableInfo]) -> bool:
    """Create the publication, or add the tables it lacks. Returns True when created here."""
    exists = conn.execute("SELECT puballtables FROM pg_publication WHERE pubname = %s", (name,)).fetchone()
    qualified = ", ".join(t.qualified_sql for t in tables)
    if exists is None:
        conn.execute(f"CREATE PUBLICATION {quote_ident(name)} FOR TABLE {qualified} "
                     "WITH (publish_via_partition_root = true)")
        return True
    if exists[0]:
        return False
    present = {(r[0], r[1]) for r in conn.execute(
        "SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = %s", (name,))}
    missing = [t for t in tables if (t.schema, t.name) not in present]
    if missing:
        conn.execute(f"ALTER PUBLICATION {quote_ident(name)} ADD TABLE "
                     + ", ".join(t.qualified_sql for t in missing))
    return False


def find_slot(conn: psycopg.Connection, name: str) -> SlotInfo | None:
    """The slot called ``name``, or None."""
    row = conn.execute(
        "SELECT slot_name, plugin, active_pid, confirmed_flush_lsn::text, wal_status "
        "FROM pg_replication_slots WHERE slot_name = %s", (name,)).fetchone()
    return SlotInfo(*row) if row else None
