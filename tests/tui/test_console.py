"""Every binding of the console against a fake engine: the command sent and what is shown."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest
import scenarios as sc
from console_kit import SIZE, console, log_text, painted, settle, shown
from textual.widgets import Button, Input, OptionList

from pg2iceberg.errors import TerminalError
from pg2iceberg.runtime import commands as c
from tui.app import ConsoleApp, run_app
from tui.panes.tables import TablesPane
from tui.screens.cleanup import CleanupScreen
from tui.screens.help import HelpScreen
from tui.screens.table_choice import TableChooser

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_start_shows_the_snapshot_in_every_pane() -> None:
    app, engine = console()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert "STREAMING · mode single · slot slot_demo" in shown(app, "#headline")
        assert "server     1/6B3750A0" in shown(app, "#wal")
        assert app.query_one("#backlog").get_row("shop.orders")[1].plain == "311"
        assert app.query_one("#tables").get_row("shop.customers")[2].plain == "12,480"
        assert app.query_one("#workers").get_row("single/single")[2].plain == "running"
        assert not app.query_one("#alerts").display
    assert engine.stop_calls == [None]  # closing the app stops the engine


async def test_the_event_log_keeps_its_newest_line_in_view_when_an_alert_takes_room() -> None:
    app, engine = console()
    async with app.run_test(size=(80, 24)) as pilot:
        for event in [*sc.history(), *sc.history()[-1:]]:  # six lines
            engine.events.publish(event)
        await settle(pilot)
        log = app.event_log
        assert log.max_scroll_y == 0  # they all fit while nothing is wrong
        engine.snapshot = sc.error()  # the alert bar appears and the log gets shorter
        await settle(pilot, times=5)
        assert log.max_scroll_y > 0
        assert log.scroll_offset.y == log.max_scroll_y
        assert "committed shop.customers +37" in painted(log).splitlines()[-1]


async def test_snapshot_asks_which_table() -> None:
    app, engine = console()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("s")
        assert isinstance(app.screen, TableChooser)
        options = app.screen.query_one(OptionList)
        assert [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)] == [
            "all tables", "shop.customers", "shop.orders"]
        await pilot.press("down", "down", "enter")
        await pilot.press("s", "enter")
        await pilot.press("s", "escape")
        await settle(pilot)
        assert engine.submitted == [c.Snapshot(table="shop.orders"), c.Snapshot(table=None)]
        assert "▶ snapshot started" in log_text(app)
        assert not isinstance(app.screen, TableChooser)


@pytest.mark.parametrize(("key", "command"), [("c", c.Compact()), ("m", c.Maintain()), ("v", c.Verify())])
async def test_one_key_commands(key: str, command: c.Command) -> None:
    failed = {"ok": False, "summary": "no catalog", "details": {}}
    app, engine = console(answers={c.command_name(command): failed})
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(key)
        await settle(pilot)
        assert engine.submitted == [command]
        name = c.command_name(command)
        assert f"▶ {name} started" in log_text(app)
        assert f"✗ {name} FAILED: no catalog" in log_text(app)  # the failure shows its reason
        assert f"last action: 00:00:00 ✗ {name} FAILED: no catalog" in shown(app, "#last-action")


async def test_p_pauses_then_resumes_and_the_header_and_footer_follow() -> None:
    app, engine = console()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.active_bindings["p"].binding.action == "pause"
        await pilot.press("p")
        await settle(pilot)
        assert engine.submitted == [c.PauseMaterializing()]
        assert "materializing PAUSED" in shown(app, "#headline")
        assert app.active_bindings["p"].binding.action == "resume"
        await pilot.press("p")
        await settle(pilot)
        assert engine.submitted == [c.PauseMaterializing(), c.ResumeMaterializing()]
        assert "PAUSED" not in shown(app, "#headline")


async def test_cleanup_needs_the_slot_name_typed_and_sends_it() -> None:
    app, engine = console()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("x")
        await settle(pilot)
        assert engine.submitted == [c.PlanCleanup()]
        screen = app.screen
        assert isinstance(screen, CleanupScreen)
        assert app.focused is screen.query_one("#cancel", Button)
        confirm = screen.query_one("#confirm", Button)
        assert confirm.disabled
        assert "coordinator schema _pg2iceberg" in painted(screen.query_one("#plan Static"))
        assert str(confirm.label) == "Drop (type the name first)"
        await pilot.press("x", "c", "m")  # engine keys do nothing while the dialog is up
        assert engine.submitted == [c.PlanCleanup()]
        await pilot.press("tab")
        assert app.focused is screen.query_one("#slot-name", Input)
        await pilot.press(*"slot_dem")
        assert confirm.disabled
        await pilot.press("o")
        assert not confirm.disabled and str(confirm.label) == "Drop them now"
        await pilot.press("O")
        assert confirm.disabled  # exactly the name, case and all
        await pilot.press("backspace")
        await pilot.click("#confirm")
        await settle(pilot)
        assert engine.submitted == [c.PlanCleanup(), c.Cleanup(confirm="slot_demo")]
        assert not isinstance(app.screen, CleanupScreen)


async def test_enter_in_the_field_confirms_only_the_exact_name() -> None:
    app, engine = console()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("x")
        await settle(pilot)
        await pilot.press("tab", *"slot", "enter")
        assert isinstance(app.screen, CleanupScreen)
        await pilot.press(*"_demo", "enter")
        await settle(pilot)
        assert engine.submitted == [c.PlanCleanup(), c.Cleanup(confirm="slot_demo")]


@pytest.mark.parametrize("keys", [("escape",), ("enter",), ("tab", *"slot_demo", "escape")],
                         ids=["escape", "enter-on-cancel", "typed-then-escape"])
async def test_cancelling_cleanup_sends_nothing(keys: tuple[str, ...]) -> None:
    app, engine = console()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("x")
        await settle(pilot)
        await pilot.press(*keys)
        await settle(pilot)
        assert not isinstance(app.screen, CleanupScreen)
        assert engine.submitted == [c.PlanCleanup()]
        assert "cleanup cancelled: nothing was dropped" in shown(app, "#last-action")


async def test_cleanup_with_nothing_to_do_only_closes() -> None:
    answer = {"ok": True, "summary": "nothing", "details": {"slot": "slot_demo", "items": [],
                                                            "nothing_to_do": True}}
    app, engine = console(answers={"plan_cleanup": answer})
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("x")
        await settle(pilot)
        assert not app.screen.query("#confirm") and not app.screen.query(Input)
        assert "Nothing to clean up for slot slot_demo." in painted(app.screen.query_one("#plan Static"))
        await pilot.press("enter")
        await settle(pilot)
        assert engine.submitted == [c.PlanCleanup()]


async def test_a_failed_plan_opens_no_dialog_and_says_why() -> None:
    app, engine = console(answers={"plan_cleanup": {"ok": False, "summary": "cannot reach PostgreSQL",
                                                    "details": {}}})
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("x")
        await settle(pilot)
        assert not isinstance(app.screen, CleanupScreen)
        assert "✗ plan_cleanup FAILED: cannot reach PostgreSQL" in log_text(app)
        await pilot.press("x")  # and it can be asked again
        await settle(pilot)
        assert engine.submitted == [c.PlanCleanup(), c.PlanCleanup()]


async def test_a_cleanup_that_stopped_the_pipeline_keeps_the_console_open_and_says_why() -> None:
    app, engine = console()
    async with app.run_test(size=SIZE) as pilot:
        engine.stop("cleanup dropped slot slot_demo, publication and coordinator schema")
        await settle(pilot)
        assert app.is_running
        alerts = shown(app, "#alerts")
        assert "PIPELINE STOPPED: cleanup dropped slot slot_demo" in alerts
        assert "The engine is not running. Press q to exit." in alerts
        assert "STOPPED" in shown(app, "#headline")
        assert app.query_one("#wal").border_title == "WAL (last known)"
        await pilot.press("c", "s", "x", "p")  # nothing is sent to a stopped engine
        assert engine.submitted == []
        await pilot.press("q")
        await settle(pilot)
    assert app.return_code == 0


async def test_help_lists_every_binding_and_closes() -> None:
    app, engine = console()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = painted(app.screen.query_one("#dialog Static"))
        for binding in ConsoleApp.BINDINGS:
            assert binding.tooltip.split()[0] in text
        for key in ("s ", "c ", "m ", "v ", "p ", "x ", "? ", "q "):
            assert any(line.lstrip().startswith(key) for line in text.splitlines()), key
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("question_mark", "q")  # q closes help, it does not quit
        assert app.is_running and engine.stop_calls == []


async def test_q_stops_the_engine_and_exits_with_its_code() -> None:
    app, engine = console(exit_code=0)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("q")
        await settle(pilot)
    assert engine.stop_calls == [None]
    assert engine.finished.is_set()
    assert app.return_code == 0


async def test_a_signal_stop_closes_the_console_by_itself() -> None:
    app, engine = console()
    async with app.run_test(size=SIZE) as pilot:
        engine.stop()  # what SIGTERM does through the CLI's handler
        await settle(pilot)
    assert app.return_code == 0 and not app.is_running


async def test_an_engine_failure_stays_on_screen_until_q_and_exits_1() -> None:
    app, engine = console(sc.error(), failure=TerminalError("slot invalidated"))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.is_running
        assert "ERROR: the replication slot slot_demo was invalidated" in shown(app, "#alerts")
        assert "postgresql://repl:***@db.example" in shown(app, "#alerts")
        await pilot.press("q")
        await settle(pilot)
    assert app.return_code == 1


def test_run_app_reraises_the_engine_failure_after_the_console_closed() -> None:
    class QuitsAtOnce(ConsoleApp):
        def on_engine_stopped(self, message: object) -> None:
            super().on_engine_stopped(message)  # type: ignore[arg-type]
            self._exit_with(self.exit_code())

    engine_failure = TerminalError("the source went away")
    app, engine = console(failure=engine_failure)
    app = QuitsAtOnce(engine, clock=app.clock)
    with pytest.raises(TerminalError, match="the source went away"):
        run_app(app, headless=True, size=SIZE)
    assert engine.finished.is_set()


async def test_events_and_engine_logs_land_in_the_log_without_secrets() -> None:
    app, engine = console()
    async with app.run_test(size=SIZE) as pilot:
        for event in sc.history():
            engine.events.publish(event)
        engine.events.emit("config_rejected", reason="sink.flush_interval: 'soon' is not a duration")
        engine.events.emit("error", message="lost postgresql://u:hunter2@db/x")
        logging.getLogger("pg2iceberg").warning("retrying password=hunter2 host=db")
        logging.getLogger("pg2iceberg").info("not shown while the console owns the screen")
        await settle(pilot)
        text = log_text(app)
        assert "23:59:58 committed shop.orders +300 -11 (311 changes) at 1/6B3738A0, 0.2s" in text
        assert "CONFIG REJECTED (running config kept): sink.flush_interval" in text
        assert "last action: 00:00:00 CONFIG REJECTED" in shown(app, "#last-action")
        assert "ERROR: lost postgresql://u:***@db/x" in text
        assert "WARNING: pg2iceberg: retrying password=*** host=db" in text
        assert "hunter2" not in text and "not shown" not in text


async def test_refresh_updates_rows_in_place_and_keeps_the_cursor() -> None:
    app, engine = console()
    async with app.run_test(size=SIZE) as pilot:
        tables = app.query_one(TablesPane)
        tables.focus()
        await pilot.press("down")
        assert tables.cursor_row == 1
        grown = tuple(replace(t, rows=(t.rows or 0) + 1000) for t in engine.snapshot.tables)
        engine.snapshot = replace(engine.snapshot, tables=grown)
        await settle(pilot)
        assert tables.get_row("shop.orders")[2].plain == "99,213"
        assert tables.cursor_row == 1 and tables.row_count == 2
        engine.snapshot = replace(engine.snapshot, tables=grown[1:])  # a table went away
        await settle(pilot)
        assert tables.row_count == 1 and tables.get_row("shop.orders")[0] == "shop.orders"
