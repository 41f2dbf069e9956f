"""The headless front end: status and events as JSON lines on stdout.

One JSON object per line; every line has ``ts`` (ISO-8601 UTC) and ``type``. Status lines
come at least every 5 s while running; events as they happen. Human diagnostics go to
stderr through logging. LSNs are printed as PostgreSQL prints them.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import asdict
from datetime import datetime, timezone
from typing import Any, TextIO

from pg2iceberg.lsn import format_lsn
from pg2iceberg.runtime.events import Event
from pg2iceberg.runtime.status import PipelineStatus
from pg2iceberg.runtime.supervisor import Supervisor
from pg2iceberg.secrets import redact

_LSN_FIELDS = {"lsn", "server_lsn", "confirmed_lsn", "materialized_lsn", "anchor_lsn", "cursor_lsn",
               "position_lsn"}


def _ts(at: float | None = None) -> str:
    moment = datetime.fromtimestamp(at, timezone.utc) if at else datetime.now(timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _jsonable(value: Any, key: str = "") -> Any:
    if key in _LSN_FIELDS and isinstance(value, int):
        return format_lsn(value)
    if isinstance(value, dict):
        return {k: _jsonable(v, k) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, str):
        return redact(value)
    return value


def status_record(status: PipelineStatus) -> dict[str, Any]:
    """The JSON form of a status snapshot (contract fields first)."""
    data = asdict(status)
    data.pop("extra", None)
    return {"type": "status", **_jsonable(data)}


def event_record(event: Event) -> dict[str, Any]:
    """The JSON form of an event."""
    return {"type": "event", "event": event.name, **_jsonable(event.fields)}


class JsonLines:
    """Writes records as JSON lines, one writer at a time."""

    def __init__(self, out: TextIO = sys.stdout):
        self.out = out
        self.lock = threading.Lock()

    def write(self, record: dict[str, Any], at: float | None = None) -> None:
        """Write one line (``ts`` first)."""
        line = json.dumps({"ts": _ts(at), **record}, default=str, ensure_ascii=False)
        with self.lock:
            self.out.write(line + "\n")
            self.out.flush()


def _progress_key(status: PipelineStatus) -> tuple:
    """What makes a status line worth printing early: the state and each table's position."""
    return status.state, tuple((t.name, t.materialized_lsn) for t in status.tables)


def run_headless(supervisor: Supervisor, *, status_interval_s: float = 2.0, out: TextIO = sys.stdout,
                 prompt_s: float = 0.1) -> int:
    """Run the supervisor in a thread, printing status and events until it ends.

    A status line comes every ``status_interval_s``, and also within ``prompt_s`` of a change
    of state or of a table's ``materialized_lsn`` (so whoever watches the output sees new data
    reach Iceberg at once, not up to one interval later).

    Returns the run's exit code; raises whatever the run raised (after an ``error`` event).
    """
    lines = JsonLines(out)
    supervisor.events.subscribe(lambda e: lines.write(event_record(e), e.at))
    failure: list[BaseException] = []
    exit_code: list[int] = []

    def body() -> None:
        try:
            exit_code.append(supervisor.run())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            failure.append(exc)

    engine = threading.Thread(target=body, name="engine", daemon=True)
    engine.start()
    printed_at, printed = time.monotonic(), None  # the first status line comes at once
    while engine.is_alive():
        engine.join(prompt_s)
        status = supervisor.status()
        key = _progress_key(status)
        if key != printed or time.monotonic() - printed_at >= status_interval_s or not engine.is_alive():
            lines.write(status_record(status))
            printed_at, printed = time.monotonic(), key
    if failure:
        raise failure[0]
    return exit_code[0] if exit_code else 0
