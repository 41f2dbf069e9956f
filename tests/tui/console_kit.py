"""Building a console over the fake engine and reading what it shows."""

from __future__ import annotations

from typing import Any

import scenarios as sc
from fake_engine import FakeEngine
from textual.pilot import Pilot
from textual.widget import Widget

from pg2iceberg.runtime.status import PipelineStatus
from tui.app import ConsoleApp
from tui.panes.events import EventLog

SIZE = (120, 40)
PLAN_ANSWER = {"ok": True, "summary": "cleanup would drop 3 things", "details": sc.CLEANUP_PLAN}


def console(snapshot: PipelineStatus | None = None, **engine_options: Any) -> tuple[ConsoleApp, FakeEngine]:
    """A console at the tests' fixed clock over a fake engine (cleanup plans answered)."""
    engine_options.setdefault("answers", {"plan_cleanup": PLAN_ANSWER})
    engine = FakeEngine(snapshot if snapshot is not None else sc.normal(), **engine_options)
    return ConsoleApp(engine, clock=lambda: sc.NOW, refresh_s=0.05), engine


def shown(app: ConsoleApp, selector: str) -> str:
    """The text a Static-like widget shows."""
    return str(app.query_one(selector).render())


def painted(widget: Widget) -> str:
    """The lines a widget paints at its current size."""
    return "\n".join(strip.text.rstrip() for strip in widget.render_lines(widget.region.reset_offset))


def log_text(app: ConsoleApp) -> str:
    """Every line of the event log."""
    return "\n".join(strip.text.rstrip() for strip in app.query_one(EventLog).lines)


async def settle(pilot: Pilot, times: int = 3) -> None:
    """Let a few refreshes and message rounds pass."""
    for _ in range(times):
        await pilot.pause(0.06)
