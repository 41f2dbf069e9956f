"""Tables without a primary key: refused with the fix, or replicated on a configured key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg

from harness import ROOT, Run, assert_same, write_config


def _config_with_key(folder: Path, url: str, table: str, key: str) -> Path:
    path = write_config(folder, url, [table])
    path.write_text(path.read_text() + f"    primary_key: [{key}]\n")
    return path


def _refusal(config: Path) -> str:
    run = Run(config)
    assert run.proc.wait(60) == 1
    return run.stderr()


def test_a_table_without_a_key_is_refused_naming_the_table_and_the_fixes(pg_url: str, tmp_path: Path) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE events (code text, at timestamptz)")
    err = _refusal(write_config(tmp_path, pg_url, ["public.events"]))
    assert "public.events has no primary key" in err
    assert 'ALTER TABLE "public"."events" ADD PRIMARY KEY' in err and "primary_key" in err


def test_a_key_override_needs_not_null_columns_a_unique_index_and_the_replica_identity(
        pg_url: str, tmp_path: Path) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE ev (code text, n int, note text)")
        err = _refusal(_config_with_key(tmp_path / "a", pg_url, "public.ev", "code"))
        assert 'ALTER TABLE "public"."ev" ALTER COLUMN "code" SET NOT NULL' in err
        conn.execute("ALTER TABLE ev ALTER COLUMN code SET NOT NULL")
        err = _refusal(_config_with_key(tmp_path / "b", pg_url, "public.ev", "code"))
        assert 'no unique index on exactly (code); run CREATE UNIQUE INDEX ON "public"."ev" ("code")' in err
        conn.execute("CREATE UNIQUE INDEX ev_code ON ev (code)")
        err = _refusal(_config_with_key(tmp_path / "c", pg_url, "public.ev", "code"))
        assert 'ALTER TABLE "public"."ev" REPLICA IDENTITY USING INDEX "ev_code"' in err
        err = _refusal(_config_with_key(tmp_path / "d", pg_url, "public.ev", "nope"))
        assert "primary_key of public.ev: no column nope" in err


def test_a_table_replicates_on_its_configured_unique_key(pg_url: str, tmp_path: Path) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE ev (code text NOT NULL, region int NOT NULL, note text, n int)")
        conn.execute("CREATE UNIQUE INDEX ev_key ON ev (region, code)")
        conn.execute("ALTER TABLE ev REPLICA IDENTITY USING INDEX ev_key")
        conn.execute("INSERT INTO ev SELECT 'c' || g, g % 4, 'note ' || g, g FROM generate_series(1, 500) g")
    config = _config_with_key(tmp_path, pg_url, "public.ev", "region, code")
    run = Run(config)
    try:
        run.wait_caught_up(pg_url)
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("UPDATE ev SET note = NULL, n = n * 2 WHERE n % 3 = 0")
            conn.execute("DELETE FROM ev WHERE n BETWEEN 10 AND 40")
            conn.execute("UPDATE ev SET code = code || '-moved' WHERE n % 7 = 0")  # a key change
            conn.execute("INSERT INTO ev VALUES ('new', 9, NULL, NULL)")
        run.wait_caught_up(pg_url)
        assert_same(pg_url, tmp_path, "public.ev", "ev", "region, code")
        verify = subprocess.run([sys.executable, "-m", "pg2iceberg", "--config", str(config), "--verify",
                                 "--headless"], capture_output=True, text=True, cwd=ROOT, timeout=300)
        assert verify.returncode == 0, verify.stdout[-2000:] + verify.stderr[-2000:]  # on the configured key
    finally:
        assert run.stop() == 0
