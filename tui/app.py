"""The operations console: composition, bindings and dispatch over one engine (the supervisor).

The engine runs in its own plain thread; the console polls its frozen status snapshot twice a
second, turns its events into messages, and sends it commands as data. Quitting asks the
engine to stop gracefully and exits when the engine thread has returned.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import ModalScreen
from textual.widgets import Footer

from pg2iceberg.runtime import commands as c
from pg2iceberg.runtime.events import Event
from tui.engine_link import Engine, EngineStopped, EngineThread, EventArrived
from tui.log_capture import LogRecorded, forward_logs
from tui.panes.backlog import BacklogPane
from tui.panes.events import EventLog
from tui.panes.header import AlertBar, ConsoleState, Headline, LastAction
from tui.panes.tables import TablesPane
from tui.panes.wal import WalPane
from tui.panes.workers import WorkersPane
from tui.screens.cleanup import CleanupPlan, CleanupScreen
from tui.screens.help import HelpScreen, help_rows
from tui.screens.table_choice import TableChoice, TableChooser

REFRESH_S = 0.5
STALE = " (last known)"  # the engine has stopped; the values are its last
# What the operator did (a key or a config edit): its latest outcome stays in view.
OPERATOR_EVENTS = ("command_started", "command_finished", "command_rejected", "cleanup_cancelled",
                   "config_reloaded", "config_rejected")
ENGINE_ACTIONS = {"snapshot", "compact", "maintain", "verify", "pause", "resume", "cleanup"}


class ConsoleApp(App[int]):
    """The console over one engine."""

    CSS_PATH = Path(__file__).with_name("console.tcss")  # absolute: subclasses may live elsewhere
    TITLE = "pg2iceberg"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [
        Binding("s", "snapshot", "snapshot", tooltip="re-copy one table (or all) from PostgreSQL"),
        Binding("c", "compact", "compact", tooltip="run one compaction cycle now"),
        Binding("m", "maintain", "maintain",
                tooltip="run one maintenance cycle: expire snapshots, remove orphans, collect the stream"),
        Binding("v", "verify", "verify", tooltip="compare PostgreSQL with Iceberg, every table"),
        Binding("p", "pause", "pause", tooltip="pause materializing (the WAL keeps being staged)"),
        Binding("p", "resume", "resume", tooltip="resume materializing"),
        Binding("x", "cleanup", "cleanup",
                tooltip="plan dropping slot, publication and coordinator state; confirm in a dialog"),
        Binding("question_mark", "help", "help", tooltip="this list of keys"),
        Binding("q", "quit", "quit", tooltip="stop the pipeline gracefully and exit"),
    ]

    def __init__(self, engine: Engine, *, clock: Callable[[], float] = time.time,
                 refresh_s: float = REFRESH_S):
        super().__init__()
        self.engine = engine
        self.clock = clock
        self.refresh_s = refresh_s
        self.engine_thread = EngineThread(engine, on_done=lambda: self.post_message(EngineStopped()))
        self._quitting = False
        self._awaiting_plan = False
        self._paused = False
        self._restore_logging: Callable[[], None] | None = None
        self._closed = False  # unmounted: the panes are gone, late messages are ignored
        self.headline, self.alert_bar = Headline(id="headline"), AlertBar(id="alerts")
        self.last_action = LastAction(id="last-action")
        self.wal_pane, self.backlog_pane = WalPane(id="wal"), BacklogPane(id="backlog")
        self.tables_pane, self.workers_pane = TablesPane(id="tables"), WorkersPane(id="workers")
        self.event_log = EventLog(id="events")

    # -- composition ---------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        """Header, alerts, the panes, footer."""
        yield self.headline
        yield self.alert_bar
        yield self.last_action
        with Horizontal(id="top"):
            yield self.wal_pane
            yield self.backlog_pane
        yield self.tables_pane
        yield self.workers_pane
        yield self.event_log
        yield Footer(compact=True)

    def on_mount(self) -> None:
        """Subscribe to events and logs, start the engine thread, start polling."""
        self._restore_logging = forward_logs(self)
        self.engine.events.subscribe(lambda event: self.post_message(EventArrived(event)))
        self.engine_thread.start()
        self.refresh_status()
        self.set_interval(self.refresh_s, self.refresh_status)

    def on_unmount(self) -> None:
        """However the app ends, the engine is asked to stop; logs go back to stderr."""
        self._closed = True
        if self.engine_thread.alive:
            self.engine.stop()
        if self._restore_logging is not None:
            self._restore_logging()

    def console_state(self) -> ConsoleState:
        """What the console knows besides the snapshot."""
        return ConsoleState(slot_name=str(self.engine.config.source.slot_name), quitting=self._quitting,
                            engine_done=self.engine_thread.started and not self.engine_thread.alive)

    @property
    def _showing(self) -> bool:
        """Whether the panes are on screen (not before mount, not while shutting down)."""
        return not self._closed and self.headline.is_attached

    def refresh_status(self) -> None:
        """Render the latest snapshot in every pane."""
        if not self._showing:
            return
        status, now, console = self.engine.status(), self.clock(), self.console_state()
        self.headline.show(status, console)
        self.alert_bar.show(status, console)
        self.wal_pane.show(status)
        self.backlog_pane.show(status)
        self.tables_pane.show(status, now)
        self.workers_pane.show(status, now)
        for pane in (self.wal_pane, self.backlog_pane, self.tables_pane, self.workers_pane):
            base = str(pane.border_title).removesuffix(STALE)  # values frozen at the engine's end
            pane.border_title = base + STALE if console.engine_done else base
        if status.materializing_paused != self._paused:
            self._paused = status.materializing_paused
            self.refresh_bindings()

    # -- engine messages -----------------------------------------------------------------

    def on_event_arrived(self, message: EventArrived) -> None:
        """Log the event; a finished cleanup plan opens the confirmation dialog."""
        if not self._showing:
            return
        event = message.event
        self.event_log.add(event)
        if event.name in OPERATOR_EVENTS:
            self.last_action.show(event)
        if event.fields.get("command") != "plan_cleanup" or not self._awaiting_plan:
            return
        if event.name in ("command_finished", "command_rejected"):
            self._awaiting_plan = False
        if event.name == "command_finished" and event.fields.get("ok"):
            plan = CleanupPlan.from_details(event.fields.get("details") or {})
            self.push_screen(CleanupScreen(plan), self._cleanup_confirmed)

    def on_log_recorded(self, message: LogRecorded) -> None:
        """Show an engine warning or error in the log."""
        if not self._showing:
            return
        self.event_log.add_log(message.level, message.text, message.at)

    def on_engine_stopped(self, _message: EngineStopped) -> None:
        """Exit if the operator quit (or a signal stopped the engine); else show why it stopped."""
        if not self._showing:
            return
        status = self.engine.status()
        self.refresh_status()
        self.refresh_bindings()
        unexplained = not (status.stopped_reason or status.error or self.engine_thread.failure)
        if self._quitting or unexplained:
            self._exit_with(self.exit_code())

    def _exit_with(self, code: int) -> None:
        self.exit(code, return_code=code)

    def exit_code(self) -> int:
        """The engine's exit code (1 when it failed)."""
        if self.engine_thread.failure is not None:
            return 1
        return self.engine_thread.exit_code or 0

    # -- bindings ------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Pause or resume, whichever applies; no engine action once it stops or under a dialog."""
        if action == "pause" and self._paused or action == "resume" and not self._paused:
            return False
        if action in ENGINE_ACTIONS:
            stopped = self._quitting or not self.engine_thread.alive
            return not stopped and not isinstance(self.screen, ModalScreen)
        return True

    def action_snapshot(self) -> None:
        """Ask which table, then re-copy it (or all)."""
        tables = [t.name for t in self.engine.config.tables]
        self.push_screen(TableChooser("Snapshot which table?", tables), self._snapshot_chosen)

    def _snapshot_chosen(self, choice: TableChoice | None) -> None:
        if choice is not None:
            self.engine.submit(c.Snapshot(table=choice.table))

    def action_compact(self) -> None:
        """One compaction cycle."""
        self.engine.submit(c.Compact())

    def action_maintain(self) -> None:
        """One maintenance cycle."""
        self.engine.submit(c.Maintain())

    def action_verify(self) -> None:
        """Compare every table."""
        self.engine.submit(c.Verify())

    def action_pause(self) -> None:
        """Stop applying the stream to Iceberg."""
        self.engine.submit(c.PauseMaterializing())

    def action_resume(self) -> None:
        """Apply the stream again."""
        self.engine.submit(c.ResumeMaterializing())

    def action_cleanup(self) -> None:
        """Ask the engine for the cleanup plan; the dialog opens when it arrives."""
        if not self._awaiting_plan:
            self._awaiting_plan = self.engine.submit(c.PlanCleanup())

    def _cleanup_confirmed(self, typed: str | None) -> None:
        if typed is not None:
            self.engine.submit(c.Cleanup(confirm=typed))
        else:  # the console's own note, shown like an engine event
            self.post_message(EventArrived(Event("cleanup_cancelled", {}, self.clock())))

    def action_help(self) -> None:
        """List every binding."""
        self.push_screen(HelpScreen(help_rows(b for b in self.BINDINGS if isinstance(b, Binding))))

    async def action_quit(self) -> None:
        """Stop the engine gracefully; exit when its thread has returned."""
        if not self.engine_thread.alive:
            self._exit_with(self.exit_code())
            return
        if not self._quitting:
            self._quitting = True
            self.engine.stop()
            self.refresh_status()
            self.refresh_bindings()


def run_console(supervisor: Engine) -> int:
    """Run the console over ``supervisor`` until the operator quits; the run's exit code.

    Re-raises the engine's failure after the console has closed (the CLI turns it into exit 1).
    """
    return run_app(ConsoleApp(supervisor))


def run_app(app: ConsoleApp, **run_options: Any) -> int:
    """Run ``app`` (``run_options`` go to ``App.run``), then wait for its engine thread."""
    try:
        code = app.run(**run_options)
    finally:
        if app.engine_thread.alive:
            app.engine.stop()
        app.engine_thread.join()
    if app.engine_thread.failure is not None:
        raise app.engine_thread.failure
    if app.return_code not in (None, 0):
        return app.return_code
    return code if code is not None else app.exit_code()
