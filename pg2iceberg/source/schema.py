"""What a source table looks like: columns, types, primary key, replica identity.

Read from the system catalogs with bound parameters only (never string-built SQL), so odd
schema, table and column names need no special care here.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from pg2iceberg.sqlident import quote_ident


@dataclass(frozen=True, slots=True)
class ColumnInfo:
    """One column of a source table, with its type resolved through domains."""

    name: str
    attnum: int
    type_oid: int
    type_name: str  # base type's typname, e.g. "int4", "numeric", "_text" (domains resolved)
    type_display: str  # format_type() of the declared type, e.g. "numeric(10,2)"
    typmod: int
    not_null: bool
    type_kind: str  # pg_type.typtype of the base type: b base, e enum, r range, c composite, ...
    elem_type_name: str | None  # for arrays: the element's typname (domains resolved)
    elem_type_kind: str | None
    generated: bool  # a stored generated column (pgoutput omits it on PostgreSQL 15)

    @property
    def is_array(self) -> bool:
        """True for a one-dimensional array column."""
        return self.elem_type_name is not None


@dataclass(frozen=True, slots=True)
class TableInfo:
    """A source table as the catalogs describe it now."""

    oid: int
    schema: str
    name: str
    columns: tuple[ColumnInfo, ...]
    primary_key: tuple[str, ...]
    replica_identity: str  # d default, f full, i index, n nothing
    relkind: str  # r table, p partitioned table

    @property
    def qualified_sql(self) -> str:
        """The table's name quoted for SQL: ``"schema"."table"``."""
        return f"{quote_ident(self.schema)}.{quote_ident(self.name)}"

    @property
    def display_name(self) -> str:
        """``schema.table`` for messages."""
        return f"{self.schema}.{self.name}"

    def column(self, name: str) -> ColumnInfo:
        """Return the column called ``name``."""
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)


_COLUMNS_SQL = """
SELECT a.attname, a.attnum, a.atttypid,
       bt.typname, format_type(a.atttypid, a.atttypmod),
       CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END,
       a.attnotnull OR (t.typtype = 'd' AND t.typnotnull),
       bt.typtype,
       CASE WHEN bt.typcategory = 'A' THEN ebt.typname END,
       CASE WHEN bt.typcategory = 'A' THEN ebt.typtype END,
       a.attgenerated <> ''
FROM pg_attribute a
JOIN pg_type t ON t.oid = a.atttypid
JOIN pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
LEFT JOIN pg_type et ON et.oid = bt.typelem AND bt.typcategory = 'A'
LEFT JOIN pg_type ebt ON ebt.oid = CASE WHEN et.typtype = 'd' THEN et.typbasetype ELSE et.oid END
WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""

_PK_SQL = """
SELECT a.attname
FROM pg_index i
JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON true
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indrelid = %s AND i.indisprimary
ORDER BY k.ord
"""


def find_table_oid(conn: psycopg.Connection, schema: str, table: str) -> tuple[int, str, str] | None:
    """Return (oid, relkind, relreplident) of ``schema.table``, or None when it does not exist."""
    row = conn.execute(
        "SELECT c.oid, c.relkind, c.relreplident FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p')",
        (schema, table),
    ).fetchone()
    return (int(row[0]), str(row[1]), str(row[2])) if row else None


def describe_table(conn: psycopg.Connection, schema: str, table: str) -> TableInfo | None:
    """Describe ``schema.table`` from the catalogs; None when it does not exist."""
    found = find_table_oid(conn, schema, table)
    if found is None:
        return None
    oid, relkind, replident = found
    columns = tuple(
        ColumnInfo(
            name=r[0], attnum=int(r[1]), type_oid=int(r[2]), type_name=r[3], type_display=r[4],
            typmod=int(r[5]), not_null=bool(r[6]), type_kind=r[7], elem_type_name=r[8],
            elem_type_kind=r[9], generated=bool(r[10]),
        )
        for r in conn.execute(_COLUMNS_SQL, (oid,)).fetchall()
    )
    primary_key = tuple(r[0] for r in conn.execute(_PK_SQL, (oid,)).fetchall())
    return TableInfo(oid=oid, schema=schema, name=table, columns=columns,
                     primary_key=primary_key, replica_identity=replident, relkind=relkind)


_TYPE_SQL = """
SELECT bt.typname, format_type(t.oid, %(typmod)s),
       CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE %(typmod)s END,
       t.typtype = 'd' AND t.typnotnull, bt.typtype,
       CASE WHEN bt.typcategory = 'A' THEN ebt.typname END,
       CASE WHEN bt.typcategory = 'A' THEN ebt.typtype END
FROM pg_type t
JOIN pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
LEFT JOIN pg_type et ON et.oid = bt.typelem AND bt.typcategory = 'A'
LEFT JOIN pg_type ebt ON ebt.oid = CASE WHEN et.typtype = 'd' THEN et.typbasetype ELSE et.oid END
WHERE t.oid = %(oid)s
"""


def describe_column_type(conn: psycopg.Connection, name: str, position: int, type_oid: int,
                         typmod: int) -> ColumnInfo | None:
    """A column known only by name, type oid and modifier (as a Relation message gives them),
    resolved like :func:`describe_table` resolves columns; None when the type no longer exists.

    ``attnum`` is the column's 1-based position in the message, not its catalog number.
    """
    row = conn.execute(_TYPE_SQL, {"oid": type_oid, "typmod": typmod}).fetchone()
    if row is None:
        return None
    return ColumnInfo(name=name, attnum=position, type_oid=type_oid, type_name=row[0],
                      type_display=row[1], typmod=int(row[2]), not_null=bool(row[3]),
                      type_kind=row[4], elem_type_name=row[5], elem_type_kind=row[6], generated=False)
