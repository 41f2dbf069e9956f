"""Commands against a running single-mode pipeline in this process, and live config reload."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Callable

import psycopg
import pyarrow as pa
import pytest

from harness import assert_same, catalog, current_wal_lsn, write_config
from pg2iceberg.config import load_config
from pg2iceberg.runtime import commands as c
from pg2iceberg.runtime.events import Event
from pg2iceberg.runtime.supervisor import Supervisor


class LiveRun:
    """A Supervisor running single mode in a thread, with its events recorded."""

    def __init__(self, config_path: Path):
        self.sup = Supervisor(load_config(config_path), "single")
        self.events: list[Event] = []
        self.sup.events.subscribe(self.events.append)
        self.thread = threading.Thread(target=self.sup.run, daemon=True)
        self.thread.start()

    def wait_for(self, what: str, check: Callable[[], bool], timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.sup.finished.is_set():
                raise AssertionError(f"the pipeline ended while waiting for {what}: {self.sup.status().error}")
            if check():
                return
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}: {self.events[-5:]}")

    def caught_up(self, url: str) -> None:
        target = current_wal_lsn(url)
        self.wait_for(f"position {target}", lambda: all(
            t.materialized_lsn is not None and t.materialized_lsn >= target for t in self.sup.status().tables)
            and bool(self.sup.status().tables))

    def finished(self, command: str) -> Event:
        self.wait_for(f"{command} to finish", lambda: any(
            e.name == "command_finished" and e.fields["command"] == command for e in self.events))
        return next(e for e in self.events if e.name == "command_finished" and e.fields["command"] == command)

    def named(self, name: str) -> list[Event]:
        return [e for e in self.events if e.name == name]

    def stop(self) -> None:
        self.sup.stop()
        self.thread.join(60)
        assert not self.thread.is_alive()


@pytest.fixture
def live(pg_url: str, tmp_path: Path):  # noqa: ANN201
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE acct (id int PRIMARY KEY, owner text, balance numeric(12,2))")
        conn.execute("INSERT INTO acct SELECT g, 'o' || g, g * 1.5 FROM generate_series(1, 2000) g")
    run = LiveRun(write_config(tmp_path, pg_url, ["public.acct"]))
    try:
        run.caught_up(pg_url)
        yield run
    finally:
        run.stop()


def _iceberg_position(folder: Path) -> str | None:
    snap = catalog(folder).load_table(("pg2iceberg", "acct")).current_snapshot()
    return snap.summary.additional_properties.get("pg2iceberg.lsn") if snap and snap.summary else None


def test_pause_holds_commits_and_resume_catches_up(live: LiveRun, pg_url: str, tmp_path: Path) -> None:
    assert live.sup.submit(c.PauseMaterializing())
    assert live.finished("pause_materializing").fields["ok"]
    assert live.sup.status().materializing_paused
    held = _iceberg_position(tmp_path)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE acct SET balance = balance + 1 WHERE id % 3 = 0")
        conn.execute("DELETE FROM acct WHERE id > 1900")
    live.wait_for("the change to be staged", lambda: any(t.backlog_rows > 0 for t in live.sup.status().tables))
    time.sleep(1.5)  # three materializer intervals: nothing may commit while paused
    assert _iceberg_position(tmp_path) == held
    assert live.sup.submit(c.ResumeMaterializing())
    assert live.finished("resume_materializing").fields["ok"]
    live.caught_up(pg_url)
    assert not live.sup.status().materializing_paused
    assert_same(pg_url, tmp_path, "public.acct", "acct", "id")


def test_resnapshot_repairs_a_tampered_table_while_changes_flow(live: LiveRun, pg_url: str, tmp_path: Path) -> None:
    table = catalog(tmp_path).load_table(("pg2iceberg", "acct"))
    props = dict(table.current_snapshot().summary.additional_properties)
    bogus = pa.Table.from_pylist([{"id": 999_999, "owner": "bogus", "balance": None}],
                                 schema=table.schema().as_arrow())
    table.append(bogus, snapshot_properties={k: v for k, v in props.items() if k.startswith("pg2iceberg.")})
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE acct SET owner = 'changed' WHERE id < 50")
        assert live.sup.submit(c.Snapshot(table="public.acct"))
        for i in range(20):  # keep changing while the copy runs
            conn.execute("UPDATE acct SET balance = balance + 1 WHERE id = %s", (i + 1,))
    outcome = live.finished("snapshot")
    assert outcome.fields["ok"], outcome.fields
    assert [e.fields["table"] for e in live.named("snapshot_completed")][-1] == "public.acct"
    live.caught_up(pg_url)
    assert_same(pg_url, tmp_path, "public.acct", "acct", "id")


def test_a_second_identical_command_is_rejected_while_the_first_runs(live: LiveRun) -> None:
    assert live.sup.submit(c.Snapshot())
    assert not live.sup.submit(c.Snapshot())
    rejected = live.named("command_rejected")
    assert rejected and rejected[0].fields["command"] == "snapshot"
    assert live.finished("snapshot").fields["ok"]


def test_snapshot_of_an_unknown_table_fails_with_its_name(live: LiveRun) -> None:
    live.sup.submit(c.Snapshot(table="public.nope"))
    outcome = live.finished("snapshot")
    assert not outcome.fields["ok"]
    assert "public.nope" in outcome.fields["summary"]


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text.replace(old, new))
    tmp.rename(path)  # as editors save: a new file renamed over the old one


def test_config_reload_applies_hot_keys_reports_restart_keys_and_rejects_bad_files(
        live: LiveRun, tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    assert live.sup.status().config_path == str(path)
    _edit(path, "materializer_interval: 500ms", "materializer_interval: 2s")
    live.wait_for("config_reloaded", lambda: bool(live.named("config_reloaded")))
    assert live.named("config_reloaded")[0].fields == {
        "applied": ["sink.materializer_interval"], "restart_needed": []}
    assert live.sup.config.sink.materializer_interval_s == 2.0

    _edit(path, "slot_name: slot_", "slot_name: other_")
    live.wait_for("second reload", lambda: len(live.named("config_reloaded")) == 2)
    assert live.named("config_reloaded")[1].fields["restart_needed"] == ["source.logical.slot_name"]
    assert live.sup.config.source.slot_name.startswith("slot_")  # the running value stays
    assert live.sup.status().restart_needed == ("source.logical.slot_name",)

    _edit(path, "flush_interval: 300ms", "flush_interval: soon")
    live.wait_for("config_rejected", lambda: bool(live.named("config_rejected")))
    reason = live.named("config_rejected")[0].fields["reason"]
    assert "sink.flush_interval" in reason and str(path) in reason
    assert live.sup.status().config_error == reason
    assert live.sup.config.sink.flush_interval_s == 0.3

    _edit(path, "flush_interval: soon", "flush_interval: 1s")
    live.wait_for("third reload", lambda: len(live.named("config_reloaded")) == 3)
    assert live.sup.status().config_error is None
    assert live.sup.config.sink.flush_interval_s == 1.0


def test_status_shows_the_slot_as_the_server_sees_it(live: LiveRun, pg_url: str) -> None:
    live.caught_up(pg_url)
    live.wait_for("a slot reading", lambda: live.sup.status().wal_status is not None)
    status = live.sup.status()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        active, wal_status = conn.execute(
            "SELECT active, wal_status FROM pg_replication_slots WHERE slot_name = %s",
            (live.sup.config.source.slot_name,)).fetchone()
    assert (status.slot_active, status.wal_status) == (active, wal_status) == (True, "reserved")
    assert status.server_lsn is not None and status.confirmed_lsn is not None
    assert status.server_lsn >= status.confirmed_lsn and status.lag_bytes == status.server_lsn - status.confirmed_lsn
    assert status.retained_bytes is not None and status.retained_bytes >= 0
