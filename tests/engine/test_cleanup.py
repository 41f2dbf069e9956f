"""--cleanup from outside (headless, --yes, --force, a real terminal) and in-process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg

from harness import ROOT, Run, catalog, iceberg_rows, source_rows, write_config
from pg2iceberg.config import load_config
from pg2iceberg.runtime import commands as c
from pg2iceberg.runtime.supervisor import Supervisor

SCHEMA = "CREATE TABLE public.things (id bigint PRIMARY KEY, label text, amount numeric(10,2));"


def _seed(url: str, first: int, last: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO things SELECT g, 'thing ' || g, g * 0.5 FROM generate_series(%s::int, %s::int) g",
                     (first, last))


def _cleanup(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pg2iceberg", "--config", str(config), "--cleanup", "--headless",
                           *args], capture_output=True, text=True, cwd=ROOT, timeout=180,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})


def _state(url: str, slot: str, publication: str = "pg2iceberg_pub") -> dict[str, bool]:
    with psycopg.connect(url, autocommit=True) as conn:
        def one(sql: str, arg: str) -> bool:
            return conn.execute(sql, (arg,)).fetchone() is not None
        return {"slot": one("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", slot),
                "publication": one("SELECT 1 FROM pg_publication WHERE pubname = %s", publication),
                "schema": one("SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", "_pg2iceberg")}


def _slot(url: str) -> str:
    return f"slot_{url.rsplit('/', 1)[1].lower()}"


def _events(stdout: str, command: str) -> list[dict]:
    records = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    return [r for r in records if r.get("event") == "command_finished" and r.get("command") == command]


def _replicate(url: str, folder: Path) -> Path:
    config = write_config(folder, url, ["public.things"])
    run = Run(config)
    try:
        run.wait_caught_up(url)
    finally:
        assert run.stop() == 0, run.stderr()[-3000:]
    return config


def test_headless_cleanup_needs_yes_then_drops_state_and_keeps_iceberg(pg_url: str, tmp_path: Path) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(SCHEMA)
    _seed(pg_url, 1, 500)
    config = _replicate(pg_url, tmp_path)
    slot = _slot(pg_url)
    stream_files = list((tmp_path / "warehouse" / "_stream").rglob("*.parquet"))
    assert _state(pg_url, slot) == {"slot": True, "publication": True, "schema": True}

    refused = _cleanup(config)
    assert refused.returncode == 2, refused.stderr
    assert "--yes" in refused.stderr and "Nothing was changed" in refused.stderr
    plan = _events(refused.stdout, "plan_cleanup")[0]["details"]
    assert set(plan) == {"slot", "items", "consequence", "blockers", "nothing_to_do"}
    assert plan["slot"] == slot and plan["blockers"] == [] and plan["nothing_to_do"] is False
    assert any("created by pg2iceberg → will be dropped" in item for item in plan["items"])
    assert _state(pg_url, slot) == {"slot": True, "publication": True, "schema": True}

    done = _cleanup(config, "--yes")
    assert done.returncode == 0, done.stderr
    assert _state(pg_url, slot) == {"slot": False, "publication": False, "schema": False}
    assert [p for p in stream_files if p.exists()] == []
    assert iceberg_rows(tmp_path, "things", "id") == source_rows(pg_url, "public.things", "id")
    assert len(iceberg_rows(tmp_path, "things", "id")) == 500
    assert catalog(tmp_path).load_table(("pg2iceberg", "things")).current_snapshot() is not None

    again = _cleanup(config, "--yes")
    assert again.returncode == 0, again.stderr
    assert "nothing to do" in again.stderr
    assert _events(again.stdout, "plan_cleanup")[0]["details"]["nothing_to_do"] is True


def test_publication_not_created_by_pg2iceberg_is_left(pg_url: str, tmp_path: Path) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(SCHEMA)
        conn.execute("CREATE PUBLICATION pg2iceberg_pub FOR TABLE public.things")
    _seed(pg_url, 1, 20)
    config = _replicate(pg_url, tmp_path)
    done = _cleanup(config, "--yes")
    assert done.returncode == 0, done.stderr
    assert "left in place: not created by pg2iceberg" in done.stderr
    assert _state(pg_url, _slot(pg_url)) == {"slot": False, "publication": True, "schema": False}


def test_running_pipeline_blocks_cleanup_unless_forced(pg_url: str, tmp_path: Path) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(SCHEMA)
    _seed(pg_url, 1, 50)
    config = write_config(tmp_path, pg_url, ["public.things"])
    slot = _slot(pg_url)
    run = Run(config)
    try:
        run.wait_caught_up(pg_url)
        refused = _cleanup(config, "--yes")
        assert refused.returncode == 2, refused.stderr
        assert "--force" in refused.stderr and f"slot {slot} is held by another process" in refused.stderr
        assert "worker single" in refused.stderr  # the live heartbeat is named too
        assert _state(pg_url, slot) == {"slot": True, "publication": True, "schema": True}
        assert run.proc.poll() is None

        forced = _cleanup(config, "--yes", "--force")
        assert forced.returncode == 0, forced.stderr
        run.proc.wait(60)  # the other process loses its slot and stops
    finally:
        run.stop()
    assert _state(pg_url, slot) == {"slot": False, "publication": False, "schema": False}
    assert iceberg_rows(tmp_path, "things", "id") == source_rows(pg_url, "public.things", "id")


def _wait_for_text(path: Path, needle: str, proc: subprocess.Popen, timeout_s: float = 60) -> str:
    deadline = time.monotonic() + timeout_s
    while needle not in path.read_text() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    return path.read_text()


def _cleanup_on_terminal(config: Path, answer: str) -> tuple[int, str]:
    """Run --cleanup with stdin and stdout on a pseudo-terminal and type ``answer`` at the prompt."""
    master, slave = os.openpty()
    err = config.parent / f"tty-{time.monotonic_ns()}.err"
    with err.open("w") as err_file:
        proc = subprocess.Popen([sys.executable, "-m", "pg2iceberg", "--config", str(config), "--cleanup"],
                                stdin=slave, stdout=slave, stderr=err_file, cwd=ROOT,
                                env={**os.environ, "PYTHONWARNINGS": "ignore"})
    os.close(slave)
    try:
        shown = _wait_for_text(err, "Type the slot name", proc)  # input() prompts on stderr
        assert "Type the slot name" in shown, shown
        os.write(master, answer.encode() + b"\n")
        code = proc.wait(120)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return code, err.read_text()


def test_terminal_prompt_needs_the_slot_name(pg_url: str, tmp_path: Path) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(SCHEMA)
    _seed(pg_url, 1, 10)
    config = _replicate(pg_url, tmp_path)
    slot = _slot(pg_url)

    code, err = _cleanup_on_terminal(config, slot + "x")
    assert code == 2, err
    assert "Cleanup plan for slot" in err and "nothing was changed" in err
    assert _state(pg_url, slot) == {"slot": True, "publication": True, "schema": True}

    code, err = _cleanup_on_terminal(config, slot)
    assert code == 0, err
    assert _state(pg_url, slot) == {"slot": False, "publication": False, "schema": False}


def test_cleanup_in_a_process_hosting_the_pipeline_stops_it_first(pg_url: str, tmp_path: Path) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(SCHEMA)
    _seed(pg_url, 1, 30)
    config = load_config(write_config(tmp_path, pg_url, ["public.things"]))
    slot = config.source.slot_name
    sup = Supervisor(config, "single")
    engine = threading.Thread(target=sup.run, daemon=True)
    engine.start()
    deadline = time.monotonic() + 60
    while sup.status().state != "streaming" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sup.status().state == "streaming"

    plan = sup.execute(c.PlanCleanup())
    assert plan.details["blockers"] == [], plan.details  # its own slot holder and heartbeat
    assert any("this process's pipeline" in item for item in plan.details["items"])
    wrong = sup.execute(c.Cleanup(confirm="not-the-slot"))
    assert (wrong.ok, wrong.exit_code) == (False, 2)
    assert not sup.finished.is_set() and _state(pg_url, slot)["slot"]

    done = sup.execute(c.Cleanup(confirm=slot))
    assert done.ok, done.summary
    assert sup.finished.is_set() and sup.status().stopped_reason == "stopped for cleanup"
    engine.join(30)
    assert _state(pg_url, slot) == {"slot": False, "publication": False, "schema": False}
    assert sup.execute(c.PlanCleanup()).details["nothing_to_do"] is True
