"""The headless front end prints a status line promptly when data reaches Iceberg."""

from __future__ import annotations

import io
import json
import time
from dataclasses import replace

from pg2iceberg.headless import run_headless
from pg2iceberg.runtime.events import EventBus
from pg2iceberg.runtime.status import PipelineStatus, TableStatus


class _Engine:
    """Stands in for the supervisor: publishes two positions of one table, each time waiting
    until the front end has shown it (so the test does not depend on the machine's speed)."""

    def __init__(self, out: io.StringIO) -> None:
        self.events = EventBus()
        self.out = out
        self._status = PipelineStatus(state="streaming", tables=(TableStatus("public.t", "pg2iceberg.t"),))

    def status(self) -> PipelineStatus:
        return self._status

    def _advance(self, lsn: int, shown: str) -> None:
        t = self._status.tables[0]
        self._status = replace(self._status, tables=(replace(t, materialized_lsn=lsn),))
        self._wait_for(f'"materialized_lsn": "{shown}"')

    def _wait_for(self, text: str) -> None:
        deadline = time.monotonic() + 30
        while text not in self.out.getvalue():
            assert time.monotonic() < deadline, f"no status line showed {text}"
            time.sleep(0.01)

    def run(self) -> int:
        self._wait_for('"type": "status"')  # the first line, at once
        self._advance(0x1000, "0/1000")
        self.events.emit("batch_committed", table="public.t", lsn=0x2000)
        self._advance(0x2000, "0/2000")
        return 0


def test_status_follows_materialized_positions_without_waiting_for_the_interval() -> None:
    out = io.StringIO()
    engine = _Engine(out)
    assert run_headless(engine, status_interval_s=3600, out=out, prompt_s=0.02) == 0  # type: ignore[arg-type]
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    positions = [r["tables"][0]["materialized_lsn"] for r in records if r["type"] == "status"]
    # The interval (an hour) never elapsed: a line at the start, one per change, one at the end.
    assert positions == [None, "0/1000", "0/2000", "0/2000"], positions
    assert [r["event"] for r in records if r["type"] == "event"] == ["batch_committed"]
