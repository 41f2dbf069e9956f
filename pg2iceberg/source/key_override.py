"""A configured ``primary_key:`` for a table that has none: checked, then used as its key.

The override is accepted only where PostgreSQL itself guarantees what a primary key would:
the columns exist and are NOT NULL, a valid unique index covers exactly them (no
expressions, no predicate), and the table's REPLICA IDENTITY is that index (or FULL), so
pgoutput sends the key of every updated or deleted row. Anything else is refused with the
statement that fixes it.
"""

from __future__ import annotations

from dataclasses import replace

import psycopg

from pg2iceberg.source.schema import TableInfo
from pg2iceberg.sqlident import quote_ident

_UNIQUE_INDEXES_SQL = """
SELECT c.relname, i.indisreplident,
       array(SELECT a.attname FROM unnest(i.indkey) k(attnum)
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum)
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid = %s AND i.indisunique AND i.indisvalid AND i.indpred IS NULL
  AND NOT (0 = ANY (i.indkey::int2[]))
"""


def apply_key_override(conn: psycopg.Connection, info: TableInfo, keys: tuple[str, ...]) -> TableInfo:
    """``info`` with ``keys`` as its primary key; ValueError with the fix when not allowed."""
    table = info.display_name
    if info.primary_key:
        if tuple(info.primary_key) == keys:
            return info
        raise ValueError(f"table {table} has a primary key ({', '.join(info.primary_key)}); "
                         "primary_key: is only for tables without one: remove it from the config")
    names = {c.name: c for c in info.columns}
    missing = [k for k in keys if k not in names]
    if missing:
        raise ValueError(f"primary_key of {table}: no column {', '.join(missing)}")
    nullable = [k for k in keys if not names[k].not_null]
    if nullable:
        fix = "; ".join(f"ALTER TABLE {info.qualified_sql} ALTER COLUMN {quote_ident(k)} SET NOT NULL"
                        for k in nullable)
        raise ValueError(f"primary_key of {table}: {', '.join(nullable)} may be NULL; run {fix}")
    indexes = conn.execute(_UNIQUE_INDEXES_SQL, (info.oid,)).fetchall()
    matching = [(name, is_identity) for name, is_identity, cols in indexes if set(cols) == set(keys)]
    if not matching:
        cols = ", ".join(quote_ident(k) for k in keys)
        raise ValueError(f"primary_key of {table}: no unique index on exactly ({', '.join(keys)}); "
                         f"run CREATE UNIQUE INDEX ON {info.qualified_sql} ({cols})")
    if info.replica_identity != "f" and not any(is_identity for _, is_identity in matching):
        raise ValueError(
            f"primary_key of {table}: PostgreSQL does not send that key for updates and deletes; run "
            f"ALTER TABLE {info.qualified_sql} REPLICA IDENTITY USING INDEX {quote_ident(matching[0][0])}")
    return replace(info, primary_key=keys)
