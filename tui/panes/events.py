"""Events pane: a scrolling log of what happened, one readable line per engine event."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual.widgets import RichLog

from pg2iceberg.runtime.events import Event
from pg2iceberg.secrets import redact
from tui import format as f

MAX_LINES = 1000
ERROR, WARN, OK, INFO = "bold red", "yellow", "green", ""


def _lsn(value: Any) -> str:
    return f.lsn(value) if isinstance(value, int) else f.or_dash(value)


def _target(fields: dict[str, Any]) -> str:
    """What a command acts on, from its event fields (``shop.orders``, ``all tables``)."""
    if fields.get("table"):
        return f" {fields['table']}"
    if fields.get("tables"):
        return " " + ", ".join(fields["tables"])
    return ""


def _listing(values: Any) -> str:
    return ", ".join(str(v) for v in values) if values else "nothing"


def _command_finished(e: dict[str, Any]) -> tuple[str, str]:
    if e.get("ok"):
        return OK, f"✓ {e['command']} done: {f.or_dash(e.get('summary'))}"
    return ERROR, f"✗ {e['command']} FAILED: {f.or_dash(e.get('summary'))}"


def _verify_table(e: dict[str, Any]) -> tuple[str, str]:
    head = f"verify {e.get('table')}: {f.count(e.get('source_rows'))} source rows"
    if e.get("status") == "equal":
        return OK, f"{head}, equal"
    counts = ", ".join(f"{e[k]} {k}" for k in ("missing", "extra", "different") if e.get(k))
    keys = f"; first keys {', '.join(map(str, e['first_keys']))}" if e.get("first_keys") else ""
    return ERROR, f"{head}, {str(e.get('status')).upper()} ({counts or 'no rows compared'}){keys}"


def _config_reloaded(e: dict[str, Any]) -> tuple[str, str]:
    line = f"config reloaded: applied {_listing(e.get('applied'))}"
    if e.get("restart_needed"):
        return WARN, f"{line}; RESTART NEEDED for {_listing(e['restart_needed'])}"
    return OK, line


DESCRIBERS: dict[str, Callable[[dict[str, Any]], tuple[str, str]]] = {
    "batch_committed": lambda e: (INFO, (
        f"committed {e.get('table')} +{f.count(e.get('upserted'))} -{f.count(e.get('deleted'))} "
        f"({f.count(e.get('changes'))} changes) at {_lsn(e.get('lsn'))}, {f.duration(e.get('duration_s'))}")),
    "snapshot_started": lambda e: (INFO, f"initial copy of {e.get('table')} started"),
    "snapshot_completed": lambda e: (OK, (
        f"initial copy of {e.get('table')} done: {f.count(e.get('rows'))} rows "
        f"in {f.duration(e.get('duration_s'))}")),
    "snapshot_skipped": lambda e: (INFO, f"initial copy of {e.get('table')} skipped: {e.get('reason')}"),
    "snapshot_restarted": lambda e: (WARN, f"initial copy of {e.get('table')} restarted: {e.get('reason')}"),
    "snapshot_already_complete": lambda e: (
        INFO, f"initial copies already complete: {_listing(e.get('tables'))}"),
    "publication_created": lambda e: (INFO, f"created publication {e.get('publication')}"),
    "slot_created": lambda e: (INFO, f"created slot {e.get('slot')} at {_lsn(e.get('lsn'))}"),
    "streaming_started": lambda e: (OK, f"streaming from slot {e.get('slot')} at {_lsn(e.get('lsn'))}"),
    "error": lambda e: (ERROR, f"ERROR: {e.get('message')}"),
    "command_started": lambda e: (INFO, f"▶ {e['command']}{_target(e)} started"),
    "command_finished": _command_finished,
    "command_rejected": lambda e: (WARN, f"✗ {e['command']} rejected: {e.get('reason')}"),
    "config_reloaded": _config_reloaded,
    "verify_table": _verify_table,
    "cleanup_waiting": lambda e: (WARN, f"cleanup: {e.get('reason')}"),
    "cleanup_cancelled": lambda e: (INFO, "cleanup cancelled: nothing was dropped"),
    "slot_dropped": lambda e: (WARN, f"cleanup dropped slot {e.get('slot')}"),
    "publication_dropped": lambda e: (WARN, f"cleanup dropped publication {e.get('publication')}"),
    "coordinator_dropped": lambda e: (WARN, f"cleanup dropped coordinator schema {e.get('schema')}"),
    "config_rejected": lambda e: (ERROR, f"CONFIG REJECTED (running config kept): {e.get('reason')}"),
}


def describe(event: Event) -> Text:
    """One log line for an event: local time, then what happened; secrets redacted."""
    describer = DESCRIBERS.get(event.name)
    if describer is None:
        details = " ".join(f"{k}={v}" for k, v in event.fields.items())
        style, line = INFO, f"{event.name} {details}".rstrip()
    else:
        style, line = describer(event.fields)
    text = Text(f.clock_time(event.at) + " ", style="dim")
    text.append(redact(line), style=style)
    return text


class EventLog(RichLog):
    """The scrolling event log (newest at the bottom)."""

    def __init__(self, *, id: str | None = None):
        super().__init__(id=id, max_lines=MAX_LINES, wrap=True, markup=False, auto_scroll=True)
        self.border_title = "Events"

    def on_resize(self) -> None:
        """Stay at the newest line when the pane shrinks (an alert above it grows on an engine
        error): without this the scroll offset stays and the latest lines drop out of view."""
        if self.auto_scroll:
            self.scroll_end(animate=False, immediate=False)

    def add(self, event: Event) -> None:
        """Append an event's line."""
        self.write(describe(event))

    def add_log(self, level: str, text: str, at: float) -> None:
        """Append a log record (WARNING and above) of the engine."""
        line = Text(f.clock_time(at) + " ", style="dim")
        line.append(f"{level}: {redact(text)}", style=ERROR if level in ("ERROR", "CRITICAL") else WARN)
        self.write(line)
