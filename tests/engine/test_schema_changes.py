"""Source schema changes while streaming: ADD/DROP/RENAME COLUMN, widening, refusals.

Every step runs the real pipeline against the real PostgreSQL and compares the whole table
(PostgreSQL vs pyiceberg vs DuckDB) once it has caught up. A schema change reaches the
pipeline only with the table's next row change, so every DDL below is followed by one.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from pyiceberg.types import DecimalType, DoubleType, ListType, LongType, StringType

from harness import Run, assert_same, catalog, duckdb_rows, iceberg_rows, source_rows, write_config

SEED = """
CREATE TABLE public.t (id bigint PRIMARY KEY, name text, qty bigint, price numeric(8,2));
INSERT INTO public.t SELECT g, 'n' || g, g % 7, g * 0.25 FROM generate_series(1, 2000) g;
UPDATE public.t SET name = NULL WHERE id % 11 = 0;
"""


def _sql(url: str, *statements: str, transaction: bool = False) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        if transaction:
            with conn.transaction():
                for statement in statements:
                    conn.execute(statement)
        else:
            for statement in statements:
                conn.execute(statement)


def _caught_up(run: Run, url: str) -> None:
    """Wait until every change committed so far is in Iceberg."""
    run.wait_caught_up(url)


def _start(url: str, folder: Path, seed: str = SEED, *, compare: bool = True) -> Run:
    _sql(url, seed)
    run = Run(write_config(folder, url, ["public.t"]))
    try:
        _caught_up(run, url)
        if compare:
            assert_same(url, folder, "public.t", "t", "id")
    except BaseException:
        run.kill()
        raise
    return run


def _table(folder: Path):  # noqa: ANN202 - pyiceberg Table
    return catalog(folder).load_table(("pg2iceberg", "t"))


@pytest.mark.parametrize("default", ["", "DEFAULT 'fixed'", "DEFAULT md5(random()::text)"],
                         ids=["no_default", "constant_default", "volatile_default"])
def test_add_column_existing_rows_show_the_source_value(pg_url: str, tmp_path: Path, default: str) -> None:
    run = _start(pg_url, tmp_path)
    try:
        _sql(pg_url, "UPDATE t SET qty = qty + 100 WHERE id % 5 = 0")  # staged before the change
        _sql(pg_url,  # one transaction: rows changed before and after the ADD in one batch
             "UPDATE t SET name = 'before' WHERE id BETWEEN 10 AND 20",
             "INSERT INTO t VALUES (5001, 'new before', 1, 1.5)",
             f"ALTER TABLE t ADD COLUMN extra text {default}",
             "UPDATE t SET name = 'after' WHERE id BETWEEN 15 AND 30",
             "UPDATE t SET extra = 'set ' || id WHERE id BETWEEN 25 AND 40",
             "INSERT INTO t (id, name, qty, price) VALUES (5002, 'new after', 2, 2.5)",
             "DELETE FROM t WHERE id BETWEEN 50 AND 60", transaction=True)
        _sql(pg_url, "UPDATE t SET extra = NULL WHERE id = 26", "DELETE FROM t WHERE id = 27")
        _caught_up(run, pg_url)
        assert_same(pg_url, tmp_path, "public.t", "t", "id")
        changed = run.events("schema_changed")
        assert [e["added"] for e in changed] == [["extra"]]
        assert changed[0]["backfilled"] == ["extra"]
        _sql(pg_url, "UPDATE t SET extra = 'later' WHERE id = 1")  # a plain batch afterwards
        _caught_up(run, pg_url)
        assert_same(pg_url, tmp_path, "public.t", "t", "id")
    finally:
        assert run.stop() == 0, run.stderr()[-3000:]


def test_add_column_with_volatile_timestamp_default_backfills_every_row(pg_url: str, tmp_path: Path) -> None:
    run = _start(pg_url, tmp_path)
    try:
        _sql(pg_url, "ALTER TABLE t ADD COLUMN seen timestamptz DEFAULT clock_timestamp(), "
                     "ADD COLUMN n int DEFAULT 7 NOT NULL",
             "UPDATE t SET qty = -1 WHERE id = 3")
        _caught_up(run, pg_url)
        assert_same(pg_url, tmp_path, "public.t", "t", "id")
    finally:
        assert run.stop() == 0, run.stderr()[-3000:]


def test_drop_column_leaves_current_schema_older_snapshots_keep_it(pg_url: str, tmp_path: Path) -> None:
    run = _start(pg_url, tmp_path)
    try:
        before = _table(tmp_path).current_snapshot().snapshot_id
        _sql(pg_url, "UPDATE t SET name = 'staged before drop' WHERE id < 100",
             "ALTER TABLE t DROP COLUMN name", "UPDATE t SET qty = 0 WHERE id % 3 = 0",
             transaction=True)
        _caught_up(run, pg_url)
        assert_same(pg_url, tmp_path, "public.t", "t", "id")
        table = _table(tmp_path)
        assert "name" not in table.schema().column_names
        old = table.scan(snapshot_id=before).to_arrow()
        assert "name" in old.column_names and old.num_rows == 2000
    finally:
        assert run.stop() == 0, run.stderr()[-3000:]


WIDEN_SEED = """
CREATE TABLE public.t (id int PRIMARY KEY, s smallint, i int, r real, p numeric(6,2), v varchar(5),
                       w varchar(5), a int[]);
INSERT INTO public.t SELECT g, g, g * 1000, g / 3.0, g + 0.25, 'v' || g, 'w' || g, ARRAY[g, NULL]
FROM generate_series(1, 500) g;
"""


def test_widening_is_iceberg_type_promotion(pg_url: str, tmp_path: Path) -> None:
    # (real values are compared once widened: psycopg reads float4 by its short text)
    run = _start(pg_url, tmp_path, WIDEN_SEED, compare=False)
    try:
        _sql(pg_url, "UPDATE t SET r = 1.1, p = 9999.99 WHERE id % 4 = 0",  # staged as real, numeric(6,2)
             "ALTER TABLE t ALTER COLUMN s TYPE bigint, ALTER COLUMN i TYPE bigint, "
             "ALTER COLUMN r TYPE double precision, ALTER COLUMN p TYPE numeric(12,2), "
             "ALTER COLUMN v TYPE text, ALTER COLUMN w TYPE varchar(40), ALTER COLUMN a TYPE bigint[]",
             "UPDATE t SET s = 9000000000, i = -9000000000, r = 1.1, p = 1234567890.12, "
             "v = repeat('x', 100), w = repeat('y', 40), a = ARRAY[9000000000] WHERE id % 4 = 1",
             transaction=True)
        _caught_up(run, pg_url)
        assert_same(pg_url, tmp_path, "public.t", "t", "id")
        schema = _table(tmp_path).schema()
        types = {f.name: f.field_type for f in schema.fields}
        assert types["s"] == LongType() and types["i"] == LongType() and types["r"] == DoubleType()
        assert types["p"] == DecimalType(12, 2) and types["v"] == StringType()
        assert isinstance(types["a"], ListType) and types["a"].element_type == LongType()
        assert run.events("schema_changed")[0]["backfilled"] == []  # promotion keeps the values
    finally:
        assert run.stop() == 0, run.stderr()[-3000:]


def test_rename_is_drop_plus_add_with_current_values(pg_url: str, tmp_path: Path) -> None:
    run = _start(pg_url, tmp_path)
    try:
        before = _table(tmp_path).current_snapshot().snapshot_id
        _sql(pg_url, "ALTER TABLE t RENAME COLUMN name TO label", "UPDATE t SET qty = 1 WHERE id = 1")
        _caught_up(run, pg_url)
        assert_same(pg_url, tmp_path, "public.t", "t", "id")  # same column order as the source
        table = _table(tmp_path)
        assert table.schema().column_names == ["id", "label", "qty", "price"]
        assert "name" in table.scan(snapshot_id=before).to_arrow().column_names
    finally:
        assert run.stop() == 0, run.stderr()[-3000:]


def test_field_ids_are_never_reused(pg_url: str, tmp_path: Path) -> None:
    run = _start(pg_url, tmp_path)
    try:
        ids = []
        for step in ("ALTER TABLE t ADD COLUMN c text DEFAULT 'first'", "ALTER TABLE t DROP COLUMN c",
                     "ALTER TABLE t ADD COLUMN c text DEFAULT 'second'"):
            _sql(pg_url, step, "UPDATE t SET qty = qty + 1 WHERE id = 2")
            _caught_up(run, pg_url)
            assert_same(pg_url, tmp_path, "public.t", "t", "id")
            schema = _table(tmp_path).schema()
            ids.append(schema.find_field("c").field_id if "c" in schema.column_names else None)
        assert ids[0] is not None and ids[1] is None and ids[2] is not None and ids[2] > ids[0]
        assert _table(tmp_path).metadata.last_column_id == ids[2]
    finally:
        assert run.stop() == 0, run.stderr()[-3000:]


@pytest.mark.parametrize("change,column,old,new", [
    ("ALTER TABLE t ALTER COLUMN qty TYPE integer", "qty", "bigint", "integer"),
    ("ALTER TABLE t ALTER COLUMN price TYPE numeric(8,3)", "price", "numeric(8,2)", "numeric(8,3)"),
    ("ALTER TABLE t ALTER COLUMN id TYPE numeric(20,0)", "id", "bigint", "numeric(20,0)"),
], ids=["narrowing", "scale_change", "key_type_change"])
def test_refused_change_stops_commits_nothing_and_the_way_out_works(
        pg_url: str, tmp_path: Path, change: str, column: str, old: str, new: str) -> None:
    run = _start(pg_url, tmp_path)
    _sql(pg_url, "UPDATE t SET qty = 42 WHERE id < 10")
    _caught_up(run, pg_url)
    expected = source_rows(pg_url, "public.t", "id")
    _sql(pg_url, change, "UPDATE t SET name = 'after change' WHERE id = 1")
    assert run.proc.wait(120) == 1
    message = run.stderr()
    assert "public.t" in message and repr(column) in message and old in message and new in message
    assert "drop the Iceberg table pg2iceberg.t" in message
    assert iceberg_rows(tmp_path, "t", "id") == expected  # nothing of the change was committed
    assert duckdb_rows(tmp_path, "t", "id") == expected
    catalog(tmp_path).drop_table(("pg2iceberg", "t"))  # the way out the message names
    again = Run(tmp_path / "config.yaml")
    try:
        _caught_up(again, pg_url)
        assert_same(pg_url, tmp_path, "public.t", "t", "id")
        _sql(pg_url, "UPDATE t SET name = 'streaming again' WHERE id = 2")
        _caught_up(again, pg_url)
        assert_same(pg_url, tmp_path, "public.t", "t", "id")
    finally:
        assert again.stop() == 0, again.stderr()[-3000:]
