"""Pane rendering as pure functions of a snapshot (no app)."""

from __future__ import annotations

import io
from dataclasses import replace

import scenarios as sc
from rich.console import Console, RenderableType

from pg2iceberg.runtime.events import Event
from pg2iceberg.runtime.status import PipelineStatus, SnapshotProgress
from tui.app import ConsoleApp
from tui.panes.backlog import backlog_rows
from tui.panes.events import describe
from tui.panes.header import ConsoleState, action_line, alerts, headline
from tui.panes.tables import copy_progress, table_rows
from tui.panes.wal import wal_text
from tui.panes.workers import worker_rows
from tui.screens.cleanup import CleanupPlan, plan_view
from tui.screens.help import help_rows


def cells(row: tuple[str, tuple[object, ...]]) -> list[str]:
    return [str(c) for c in row[1]]


def test_wal_pane_shows_positions_lag_slot_and_throughput() -> None:
    assert wal_text(sc.normal(), width=40).plain.splitlines() == [
        "server     1/6B3750A0", "confirmed  1/6B3748A0", "lag        2.0 KiB · 1.4s",
        "retained   3.0 MiB", "slot       active · wal reserved",
        "changes    212/s ▇█▆▅▅▇▆▁▃▅▇█▆▅▅▇▆▁▃▅▇█▆"]  # the sparkline fills the width left


def test_wal_pane_with_nothing_known_shows_dashes() -> None:
    text = wal_text(PipelineStatus(), width=30).plain.splitlines()
    assert text == ["server     –", "confirmed  –", "lag        – · –", "retained   –",
                    "slot       – · wal –",
                    "changes    0/s"]


def test_wal_pane_shouts_when_the_slot_loses_wal() -> None:
    assert "slot       inactive · wal LOST!" in wal_text(sc.error(), width=40).plain


def test_backlog_rows_per_table() -> None:
    rows = backlog_rows(sc.lagging())
    assert [r[0] for r in rows] == ["shop.customers", "shop.orders"]
    assert cells(rows[1]) == ["shop.orders", "812,001", "700.0 MiB", "12m34s", "41"]


def test_table_rows_show_counts_last_commit_and_copy_state() -> None:
    rows = table_rows(sc.normal(), now=sc.NOW)
    assert cells(rows[0]) == ["shop.customers", "done · 12,000 rows", "12,480", "2.5s ago", "3", "0", "42"]
    copying = table_rows(sc.snapshotting(), now=sc.NOW)
    assert cells(copying[0]) == ["shop.customers", "██████▏░░░  62% 41.2k/s ETA 9.2s",
                                 "–", "–", "–", "–", "–"]
    assert cells(copying[1])[1] == "15,300 rows · 7.7k/s"  # no estimate: no bar, no ETA


def test_copy_progress_without_a_copy_is_a_dash() -> None:
    assert str(copy_progress(None)) == "–"
    assert str(copy_progress(SnapshotProgress(10, 10, 0.0, True))) == "done · 10 rows"


def test_worker_rows_name_state_in_words() -> None:
    assert cells(worker_rows(sc.normal(), now=sc.NOW)[0]) == [
        "single", "single", "running", "0.4s", "1/6B3738A0", "1.2s ago", "shop.customers, shop.orders"]
    assert cells(worker_rows(sc.lagging(), now=sc.NOW)[0])[2] == "LAGGING"
    assert cells(worker_rows(sc.error(), now=sc.NOW)[0])[2] == "DEAD"
    not_alive = replace(sc.normal(), workers=(replace(sc.normal().workers[0], alive=False),))
    assert cells(worker_rows(not_alive, now=sc.NOW)[0])[2] == "DEAD"


def test_headline_shows_state_mode_slot_pause_and_running_commands() -> None:
    status = replace(sc.lagging(), running_commands=("compact", "verify"))
    assert headline(status, ConsoleState(slot_name="slot_demo")).plain == (
        " pg2iceberg  STREAMING · mode single · slot slot_demo · materializing PAUSED"
        " · running: compact, verify")
    assert headline(sc.normal(), ConsoleState(engine_done=True)).plain.startswith(" pg2iceberg  STOPPED")
    assert headline(sc.error(), ConsoleState(engine_done=True)).plain.startswith(" pg2iceberg  ERROR")


def test_alerts_say_why_things_stopped_and_hide_secrets() -> None:
    status = replace(sc.config_rejected(), error="cannot connect to postgresql://u:hunter2@db/x",
                     stopped_reason="cleanup dropped slot_demo")
    lines = [t.plain for t in alerts(status, ConsoleState(engine_done=True))]
    assert lines == [
        "ERROR: cannot connect to postgresql://u:***@db/x",
        "PIPELINE STOPPED: cleanup dropped slot_demo",
        "The engine is not running. Press q to exit.",
        "CONFIG REJECTED (running config kept): config.yaml: sink.flush_interval: 'soon' is not a duration "
        "(write it like 300ms, 1s or 5m)",
        "RESTART NEEDED to apply: source.slot_name"]
    assert alerts(sc.normal(), ConsoleState()) == []
    assert [t.plain for t in alerts(sc.normal(), ConsoleState(quitting=True))] == [
        "Quitting: waiting for the engine to finish its current commit…"]


def test_event_lines_read_as_sentences_with_local_time() -> None:
    lines = [describe(e).plain for e in sc.history()]
    assert lines == [
        "23:59:00 created slot slot_demo at 1/6B3728A0",
        "23:59:20 initial copy of shop.orders done: 95,000 rows in 12s",
        "23:59:21 streaming from slot slot_demo at 1/6B3728A0",
        "23:59:58 committed shop.orders +300 -11 (311 changes) at 1/6B3738A0, 0.2s",
        "23:59:59 committed shop.customers +37 -0 (37 changes) at 1/6B3748A0, 0.1s"]


def test_command_and_config_events() -> None:
    def line(name: str, **fields: object) -> str:
        return describe(Event(name, fields, sc.NOW)).plain[9:]

    assert line("command_started", command="snapshot", table="shop.orders") == (
        "▶ snapshot shop.orders started")
    assert line("command_started", command="verify", tables=("a", "b")) == "▶ verify a, b started"
    assert line("command_finished", command="compact", ok=True, summary="2 tables, 9 → 2 files",
                details={}) == "✓ compact done: 2 tables, 9 → 2 files"
    assert line("command_finished", command="verify", ok=False, summary="shop.orders differs") == (
        "✗ verify FAILED: shop.orders differs")
    assert line("command_rejected", command="compact", reason="compact is already running") == (
        "✗ compact rejected: compact is already running")
    assert line("config_reloaded", applied=["sink.flush_interval"], restart_needed=[]) == (
        "config reloaded: applied sink.flush_interval")
    assert line("config_reloaded", applied=[], restart_needed=["source.slot_name"]) == (
        "config reloaded: applied nothing; RESTART NEEDED for source.slot_name")
    assert line("config_rejected", reason="bad") == "CONFIG REJECTED (running config kept): bad"
    assert line("error", message="password=hunter2 host=db") == "ERROR: password=*** host=db"
    assert line("something_new", a=1, b="x") == "something_new a=1 b=x"
    assert line("verify_table", table="shop.orders", status="equal", source_rows=5612) == (
        "verify shop.orders: 5,612 source rows, equal")
    assert line("verify_table", table="t", status="different", source_rows=10, missing=1, different=2,
                first_keys=("7", "9")) == (
        "verify t: 10 source rows, DIFFERENT (1 missing, 2 different); first keys 7, 9")
    assert line("slot_dropped", slot="s") == "cleanup dropped slot s"


def as_text(renderable: RenderableType, width: int = 72) -> str:
    console = Console(width=width, color_system=None, record=True, file=io.StringIO())
    console.print(renderable)
    return "\n".join(line.rstrip() for line in console.export_text().splitlines())


def test_cleanup_plan_lists_items_consequence_and_blockers_with_hanging_bullets() -> None:
    plan = CleanupPlan.from_details({**sc.CLEANUP_PLAN, "blockers": ["worker w1 (heartbeat 2s ago)"]})
    assert as_text(plan_view(plan)) == """\
Replication slot slot_demo

 • this process's pipeline is running: it is stopped first
 • replication slot slot_demo: exists, active (this process's pipeline:
   it is stopped first), retains 3.0 MiB of WAL (reserved) → will be
   dropped
 • publication pg2iceberg_pub: created by pg2iceberg → will be dropped
 • coordinator schema _pg2iceberg: 7 tables (checkpoint, consumers,
   cursors, leases, log, meta, snapshots), 12 staged stream files
   registered → will be dropped
 • Iceberg tables: kept

Afterwards: a later start takes a full re-snapshot of every table

OTHER PG2ICEBERG PROCESSES LOOK ALIVE; cleanup will be refused while
they run:
 • worker w1 (heartbeat 2s ago)"""
    nothing = CleanupPlan.from_details({"slot": "s", "nothing_to_do": True})
    assert as_text(plan_view(nothing)) == "Nothing to clean up for slot s."


def test_cleanup_plan_redacts_secrets() -> None:
    plan = CleanupPlan.from_details({"slot": "s", "items": ["stream files at s3://k:hunter2@bucket/x"]})
    assert "hunter2" not in as_text(plan_view(plan)) and "s3://k:***@bucket/x" in as_text(plan_view(plan))


def test_last_action_line_names_the_command_and_outcome() -> None:
    event = Event("command_finished", {"command": "verify", "ok": True, "summary": "2 tables equal"}, sc.NOW)
    assert action_line(event).plain == "last action: 00:00:00 ✓ verify done: 2 tables equal"


def test_help_lists_every_declared_binding() -> None:
    rows = dict(help_rows(ConsoleApp.BINDINGS))
    assert set(rows) == {"s", "c", "m", "v", "p", "x", "?", "q"}
    assert rows["p"] == "pause materializing (the WAL keeps being staged) / resume materializing"
    for binding in ConsoleApp.BINDINGS:
        assert binding.tooltip in rows[binding.key.replace("question_mark", "?")]
