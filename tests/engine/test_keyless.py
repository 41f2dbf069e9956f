"""Tables without a primary key under REPLICA IDENTITY FULL: rows match on every column and
duplicates are kept as often as the source has them."""

from __future__ import annotations

from pathlib import Path

import psycopg

from harness import Run, assert_same, write_config

ORDER = "n, v, big, d"


def test_keyless_table_keeps_duplicates_updates_and_deletes_exact(pg_url: str, tmp_path: Path) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE log (n int, v text, big text, d double precision)")
        conn.execute("ALTER TABLE log REPLICA IDENTITY FULL")
        conn.execute("ALTER TABLE log ALTER COLUMN big SET STORAGE EXTERNAL")
        conn.execute("INSERT INTO log SELECT g % 50, 'v' || (g % 7), CASE WHEN g % 5 = 0 THEN "
                     "repeat('x', 3000) || g ELSE NULL END, g / 8.0 FROM generate_series(1, 600) g")
        conn.execute("INSERT INTO log SELECT n, v, big, d FROM log WHERE n < 10")  # exact duplicates
    run = Run(write_config(tmp_path, pg_url, ["public.log"]))
    try:
        run.wait_caught_up(pg_url)
        assert_same(pg_url, tmp_path, "public.log", "log", ORDER)
        with psycopg.connect(pg_url, autocommit=True) as conn:
            # one copy of a duplicated row changes, the other stays
            conn.execute("UPDATE log SET d = -1 WHERE ctid IN (SELECT min(ctid) FROM log WHERE n < 10 "
                         "GROUP BY n, v, big, d)")
            conn.execute("UPDATE log SET n = n + 1000 WHERE big IS NOT NULL AND n % 2 = 0")  # TOAST unchanged
            conn.execute("UPDATE log SET v = v WHERE n = 20")  # changes nothing
            conn.execute("DELETE FROM log WHERE ctid IN (SELECT ctid FROM log WHERE n = 3 LIMIT 1)")
            conn.execute("INSERT INTO log VALUES (7, 'v1', NULL, NULL), (7, 'v1', NULL, NULL)")
            with conn.transaction():
                conn.execute("DELETE FROM log WHERE n = 30")
                conn.execute("INSERT INTO log VALUES (30, 'back', NULL, 1)")
        run.wait_caught_up(pg_url)
        assert_same(pg_url, tmp_path, "public.log", "log", ORDER)
        with psycopg.connect(pg_url, autocommit=True) as conn:
            with conn.transaction():
                conn.execute("TRUNCATE log")
                conn.execute("INSERT INTO log VALUES (1, 'a', NULL, 0), (1, 'a', NULL, 0)")
                conn.execute("DELETE FROM log WHERE ctid IN (SELECT ctid FROM log LIMIT 1)")
        run.wait_caught_up(pg_url)
        assert_same(pg_url, tmp_path, "public.log", "log", ORDER)
    finally:
        assert run.stop() == 0


def test_keyless_table_with_default_identity_is_refused_with_the_fix(pg_url: str, tmp_path: Path) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE log (n int)")
    run = Run(write_config(tmp_path, pg_url, ["public.log"]))
    assert run.proc.wait(60) == 1
    assert 'ALTER TABLE "public"."log" REPLICA IDENTITY FULL' in run.stderr()
