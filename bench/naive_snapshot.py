"""The snapshot benchmark's baseline, as a process of its own: the naive way to copy a table.

ADBC ``SELECT *`` -> ``fetch_arrow_table()``, numeric columns cast to decimal, one
``table.append()`` into a fresh pyiceberg SQL-catalog table. Imports only what that needs,
so its process start-up is a fair comparison for pg2iceberg's. Prints the seconds from its
connect to the append's end. Usage: ``naive_snapshot.py URL FOLDER`` (run by
``bench_snapshot.py``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import adbc_driver_postgresql.dbapi as adbc
import pyarrow as pa
from pyiceberg.catalog import load_catalog


def baseline(url: str, folder: Path) -> float:
    """Seconds for ADBC read + one pyiceberg append of the whole table."""
    folder.mkdir(parents=True)
    start = time.perf_counter()
    with adbc.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT * FROM public.bench")
        data = cur.fetch_arrow_table()
    # numeric arrives as an opaque (string) extension column: cast it to decimal
    columns = []
    for i, field in enumerate(data.schema):
        col = data.column(i)
        if field.name == "amount":
            if isinstance(col.type, pa.ExtensionType):
                col = pa.chunked_array([c.storage for c in col.chunks], col.type.storage_type)
            col = col.cast(pa.decimal128(12, 2))
        columns.append(col)
    data = pa.table(columns, names=data.schema.names)
    catalog = load_catalog("baseline", type="sql", uri=f"sqlite:///{folder}/catalog.db",
                           warehouse=f"file://{folder}/warehouse")
    catalog.create_namespace("bench")
    table = catalog.create_table(("bench", "bench"), schema=data.schema)
    table.append(data)
    return time.perf_counter() - start


if __name__ == "__main__":
    print(baseline(sys.argv[1], Path(sys.argv[2])))
