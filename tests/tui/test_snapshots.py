"""How the console looks in each state, at 80×24 and 120×40 (SVG baselines in __snapshots__)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import scenarios as sc
from console_kit import console, settle
from textual.pilot import Pilot

from pg2iceberg.errors import TerminalError
from pg2iceberg.runtime.status import PipelineStatus

# state → (snapshot, keys pressed, the engine's failure if it stopped with one)
STATES: dict[str, tuple[Callable[[], PipelineStatus], tuple[str, ...], Exception | None]] = {
    "normal": (sc.normal, (), None),
    "lagging": (sc.lagging, (), None),
    "error": (sc.error, (), TerminalError("the replication slot slot_demo was invalidated")),
    "snapshot_in_progress": (sc.snapshotting, (), None),
    "cleanup_modal": (sc.normal, ("x",), None),
    "help": (sc.normal, ("question_mark",), None),
    "config_rejected": (sc.config_rejected, (), None),
    "starting": (sc.starting, (), None),
}


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
@pytest.mark.parametrize("state", list(STATES))
def test_console_looks_right(snap_compare: Callable[..., bool], state: str, size: tuple[int, int]) -> None:
    make, keys, failure = STATES[state]
    app, engine = console(make(), failure=failure)

    async def with_history(pilot: Pilot) -> None:
        if state != "starting":
            for event in sc.history():
                engine.events.publish(event)
        for _ in range(200):  # a failing engine: its end must have reached the screen (busy CI)
            if failure is None or app.engine_thread.failure is not None:
                break
            await pilot.pause(0.05)
        await settle(pilot, times=10)  # focus and bindings settle after the engine's end, too

    assert snap_compare(app, press=keys, terminal_size=size, run_before=with_history)
