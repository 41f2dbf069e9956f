"""Source fidelity end to end: unchanged TOASTed values, partitioned Iceberg tables, odd names."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pyarrow.parquet as pq
import pytest

from harness import Run, assert_same, catalog, write_config


@pytest.mark.parametrize("identity", ["DEFAULT", "FULL"])
def test_unchanged_toasted_values_are_kept(pg_url: str, tmp_path: Path, identity: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE doc (id int PRIMARY KEY, title text, body text, n int)")
        conn.execute(f"ALTER TABLE doc REPLICA IDENTITY {identity}")
        conn.execute("ALTER TABLE doc ALTER COLUMN body SET STORAGE EXTERNAL")  # out of line, never compressed
        conn.execute("INSERT INTO doc SELECT g, 't' || g, repeat(md5(g::text), 200), 0 FROM generate_series(1, 300) g")
    run = Run(write_config(tmp_path, pg_url, ["public.doc"]))
    try:
        run.wait_caught_up(pg_url)
        with psycopg.connect(pg_url, autocommit=True) as conn:
            # body unchanged: pgoutput sends 'u'; the old value comes from the Iceberg row
            conn.execute("UPDATE doc SET n = n + 1 WHERE id % 2 = 0")
            with conn.transaction():  # ... or from an earlier change of the same key in the batch
                conn.execute("UPDATE doc SET body = repeat('new', 3000) WHERE id = 7")
                conn.execute("UPDATE doc SET title = 'again' WHERE id = 7")
                conn.execute("INSERT INTO doc VALUES (1000, 'fresh', repeat('z', 9000), 0)")
                conn.execute("UPDATE doc SET n = 5 WHERE id = 1000")
            conn.execute("UPDATE doc SET id = id + 2000 WHERE id BETWEEN 10 AND 12")  # key moves, body 'u'
        run.wait_caught_up(pg_url)
        assert_same(pg_url, tmp_path, "public.doc", "doc", "id")
    finally:
        assert run.stop() == 0


def test_partitioned_iceberg_table_moves_rows_between_partitions(pg_url: str, tmp_path: Path) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE ev (id bigint PRIMARY KEY, region text, at timestamptz, v int)")
        conn.execute("INSERT INTO ev SELECT g, CASE WHEN g % 3 = 0 THEN 'eu' ELSE 'us' END, "
                     "timestamptz '2024-01-01' + g * interval '7 hours', g FROM generate_series(1, 600) g")
    config = write_config(tmp_path, pg_url, ["public.ev"])
    config.write_text(config.read_text() + '    iceberg:\n      partition: ["region", "day(at)", "bucket[4](id)"]\n')
    run = Run(config)
    try:
        run.wait_caught_up(pg_url)
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("UPDATE ev SET region = 'ap' WHERE id % 5 = 0")  # to another partition
            conn.execute("UPDATE ev SET at = at + interval '30 days' WHERE id % 7 = 0")
            conn.execute("UPDATE ev SET id = id + 10000 WHERE id % 11 = 0")  # another bucket
            conn.execute("DELETE FROM ev WHERE id % 13 = 0")
        run.wait_caught_up(pg_url)
        assert_same(pg_url, tmp_path, "public.ev", "ev", "id")
    finally:
        assert run.stop() == 0
    table = catalog(tmp_path).load_table(("pg2iceberg", "ev"))
    assert [str(f.transform) for f in table.spec().fields] == ["identity", "day", "bucket[4]"]
    regions = set()
    for task in table.scan().plan_files():  # every data file holds rows of its partition only
        region = tuple(task.file.partition)[0]
        with table.io.new_input(task.file.file_path).open() as stream:
            assert set(pq.read_table(stream, columns=["region"]).column(0).to_pylist()) == {region}
        regions.add(region)
    assert regions == {"eu", "us", "ap"}


ODD_SCHEMA = 'My "Schema".v2'
ODD_TABLE = 'Order Lines.ünïcode'


def test_odd_identifiers_are_quoted_everywhere(pg_url: str, tmp_path: Path) -> None:
    schema_sql, table_sql = '"My ""Schema"".v2"', '"Order Lines.ünïcode"'
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema_sql}")
        conn.execute(f'CREATE TABLE {schema_sql}.{table_sql} ("Key" int, "select" text, "a.b" int, '
                     '"spa ce" text, "qu""ote" text, "ñ" int, PRIMARY KEY ("Key", "select"))')
        conn.execute(f"INSERT INTO {schema_sql}.{table_sql} SELECT g, 's' || g, g, 'x y', 'q\"', g "
                     "FROM generate_series(1, 200) g")
    config = write_config(tmp_path, pg_url, [])
    text = config.read_text().replace("tables:\n", "")
    config.write_text(text + "tables:\n  - name: '" + schema_sql.replace("'", "''") + "." + table_sql + "'\n"
                      "    iceberg:\n      name: odd\n")
    run = Run(config)
    try:
        run.wait_caught_up(pg_url)
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f'UPDATE {schema_sql}.{table_sql} SET "spa ce" = NULL, "ñ" = -1 WHERE "Key" % 3 = 0')
            conn.execute(f'UPDATE {schema_sql}.{table_sql} SET "select" = "select" || \'!\' WHERE "Key" < 10')
            conn.execute(f'DELETE FROM {schema_sql}.{table_sql} WHERE "Key" > 190')
        run.wait_caught_up(pg_url)
        assert_same(pg_url, tmp_path, f"{schema_sql}.{table_sql}", "odd", '"Key", "select"')
    finally:
        assert run.stop() == 0
