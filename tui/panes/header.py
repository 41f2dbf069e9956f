"""Header line (state, mode, slot, pause, running commands) and the alert lines under it."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widgets import Static

from pg2iceberg.runtime.events import Event
from pg2iceberg.runtime.status import PipelineStatus
from pg2iceberg.secrets import redact
from tui.panes.events import describe

_STATE_STYLE = {"streaming": "bold green", "snapshotting": "bold cyan", "starting": "bold",
                "stopping": "bold yellow", "error": "bold red"}


@dataclass(frozen=True, slots=True)
class ConsoleState:
    """What the console itself knows besides the engine's snapshot."""

    slot_name: str = ""
    quitting: bool = False  # the operator asked to quit; waiting for the engine
    engine_done: bool = False  # the engine thread has returned (or raised)


def headline(status: PipelineStatus, console: ConsoleState) -> Text:
    """``pg2iceberg · STREAMING · mode single · slot s · …`` as one line."""
    state = "STOPPED" if console.engine_done and status.state != "error" else status.state.upper()
    text = Text(" pg2iceberg ", style="bold reverse")
    text.append(" ")
    text.append(state, style=_STATE_STYLE.get(status.state, "bold"))
    text.append(f" · mode {status.mode}")
    if console.slot_name:
        text.append(f" · slot {console.slot_name}")
    if status.materializing_paused:
        text.append(" · materializing PAUSED", style="bold yellow")
    if status.running_commands:
        text.append(f" · running: {', '.join(status.running_commands)}", style="cyan")
    return text


def alerts(status: PipelineStatus, console: ConsoleState) -> list[Text]:
    """Lines the operator must not miss: error, why the pipeline stopped, rejected config."""
    lines: list[tuple[str, str]] = []
    if status.error:
        lines.append(("bold red", f"ERROR: {status.error}"))
    if status.stopped_reason:
        lines.append(("bold yellow", f"PIPELINE STOPPED: {status.stopped_reason}"))
    if console.quitting and not console.engine_done:
        lines.append(("bold yellow", "Quitting: waiting for the engine to finish its current commit…"))
    elif console.engine_done:
        lines.append(("bold", "The engine is not running. Press q to exit."))
    if status.config_error:
        lines.append(("bold red", f"CONFIG REJECTED (running config kept): {status.config_error}"))
    if status.restart_needed:
        lines.append(("yellow", f"RESTART NEEDED to apply: {', '.join(status.restart_needed)}"))
    return [Text(redact(line), style=style) for style, line in lines]


def action_line(event: Event) -> Text:
    """The latest command or config-reload event, kept in view however fast the log scrolls."""
    text = Text("last action: ", style="dim")
    return text.append_text(describe(event))


class LastAction(Static):
    """One line with the latest command or reload event; hidden until there is one."""

    def on_mount(self) -> None:
        """Nothing to show yet."""
        self.display = False

    def show(self, event: Event) -> None:
        """Show a ``command_*`` or ``config_*`` event."""
        self.display = True
        self.update(action_line(event))


class Headline(Static):
    """The one-line header."""

    def show(self, status: PipelineStatus, console: ConsoleState) -> None:
        """Render a new snapshot."""
        self.update(headline(status, console))


class AlertBar(Static):
    """Alert lines; hidden when there are none."""

    def show(self, status: PipelineStatus, console: ConsoleState) -> None:
        """Render a new snapshot."""
        lines = alerts(status, console)
        self.display = bool(lines)
        self.update(Text("\n").join(lines))
