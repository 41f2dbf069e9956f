"""Read the current values of some columns of a source table, with their keys, as text.

Used after a schema change that PostgreSQL applied to existing rows without logical changes
(ADD COLUMN with a default, a rewriting type change): those values reach Iceberg only by
reading them back. One ADBC connection with the pinned session settings runs one statement
(so one consistent snapshot) that selects the key columns and the wanted columns only, as
the text their type output functions write — exactly what pgoutput sends, so the stream
path's converters turn them into the same values. Only rows where a wanted column is not
NULL are read (NULL is what a new Iceberg column holds anyway); batches stream in, and only
their text columns are kept.
"""

from __future__ import annotations

from typing import Sequence

import adbc_driver_postgresql.dbapi as adbc
import pyarrow as pa

from pg2iceberg.source.connection import session_dsn
from pg2iceberg.sqlident import quote_ident


def _text(column: str) -> str:
    ident = quote_ident(column)
    return f"CASE WHEN num_nulls({ident}) = 0 THEN format('%s', {ident}) END AS {ident}"


def values_sql(table_sql: str, keys: Sequence[str], columns: Sequence[str]) -> str:
    """The statement: key and wanted columns as output text, rows with a wanted value only."""
    exprs = ", ".join(_text(c) for c in [*keys, *columns])
    wanted = ", ".join(quote_ident(c) for c in columns)
    return f"SELECT {exprs} FROM {table_sql} WHERE num_nulls({wanted}) < {len(columns)}"


def read_current_values(dsn: str, table_sql: str, keys: Sequence[str], columns: Sequence[str]) -> pa.Table:
    """Key and ``columns`` text of every row of ``table_sql`` with a non-NULL wanted value."""
    conn = adbc.connect(session_dsn(dsn, application_name="pg2iceberg-backfill"))
    try:
        cur = conn.cursor()
        try:
            cur.execute(values_sql(table_sql, keys, columns))
            reader = cur.fetch_record_batch()
            names = [*keys, *columns]
            batches = [pa.Table.from_batches([b]).cast(pa.schema([(n, pa.string()) for n in names]))
                       for b in reader if b.num_rows]
        finally:
            cur.close()
        conn.rollback()
    finally:
        conn.close()
    if not batches:
        return pa.table({n: pa.array([], pa.string()) for n in [*keys, *columns]})
    return pa.concat_tables(batches)
