"""Read a source table for the initial copy: ADBC (binary COPY) into Arrow, in key order.

Rows come in primary-key order so a copy can resume after the last key it stored; each batch
carries the text form of its last key for that. Memory stays bounded: ADBC streams record
batches and nothing here holds more than one.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import adbc_driver_postgresql.dbapi as adbc
import pyarrow as pa

from pg2iceberg.iceberg.typemap import ColumnType
from pg2iceberg.source.connection import session_dsn
from pg2iceberg.source.schema import TableInfo
from pg2iceberg.sqlident import quote_ident

KEY_PREFIX = "__pg2iceberg_key_"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


_INTEGER_KEYS = {"int2", "int4", "int8"}  # their Arrow value prints as PostgreSQL prints it


def integer_keys(info: TableInfo) -> bool:
    """Whether every key column is an integer, whose text the batch itself gives."""
    return bool(info.primary_key) and all(info.column(k).type_name in _INTEGER_KEYS for k in info.primary_key)


def select_sql(info: TableInfo, columns: Sequence[ColumnType], after_key: Sequence[str] | None) -> str:
    """The keyset query: every column, the key as text (unless it is all integers), rows after
    ``after_key`` in key order."""
    keys = [quote_ident(k) for k in info.primary_key]
    exprs = [c.select_sql() for c in columns]
    exprs += [check for c in columns if (check := c.check_sql()) is not None]
    if not integer_keys(info):
        exprs += [f"{k}::text AS {quote_ident(KEY_PREFIX + str(i))}" for i, k in enumerate(keys)]
    sql = f"SELECT {', '.join(exprs)} FROM {info.qualified_sql}"
    if not keys:
        return sql  # a table without a key is read in one pass (its copy restarts, never resumes)
    if after_key is not None:
        types = [info.column(k).type_display for k in info.primary_key]
        values = [f"{_literal(v)}::{t}" for v, t in zip(after_key, types)]
        sql += f" WHERE ({', '.join(keys)}) > ({', '.join(values)})"
    # Qualified: the table's columns, not the select list's same-named (bounded) expressions,
    # so the primary key's index gives the order.
    return sql + f" ORDER BY {', '.join(f'{info.qualified_sql}.{k}' for k in keys)}"


class SnapshotReader:
    """One ADBC connection in a REPEATABLE READ transaction, optionally on an exported snapshot."""

    def __init__(self, dsn: str, snapshot_name: str | None):
        self.conn = adbc.connect(session_dsn(dsn, application_name="pg2iceberg-snapshot"))
        cur = self.conn.cursor()
        cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        if snapshot_name:
            cur.execute(f"SET TRANSACTION SNAPSHOT {_literal(snapshot_name)}")
        cur.close()

    def read(self, info: TableInfo, columns: Sequence[ColumnType],
             after_key: Sequence[str] | None) -> Iterator[tuple[pa.RecordBatch, list[str]]]:
        """Yield (batch, text of the batch's last key), in key order."""
        in_batch = integer_keys(info)
        nkeys = 0 if in_batch else len(info.primary_key)
        cur = self.conn.cursor()
        try:
            cur.execute(select_sql(info, columns, after_key))
            reader = cur.fetch_record_batch()
            for batch in reader:
                if batch.num_rows == 0:
                    continue
                if in_batch:
                    last = [batch.column(k)[-1].as_py() for k in info.primary_key]
                else:
                    last = [batch.column(batch.num_columns - nkeys + i)[-1].as_py() for i in range(nkeys)]
                yield batch.select(range(batch.num_columns - nkeys)), [str(v) for v in last]
        finally:
            cur.close()

    def close(self) -> None:
        """End the transaction and close."""
        try:
            self.conn.rollback()
        finally:
            self.conn.close()
