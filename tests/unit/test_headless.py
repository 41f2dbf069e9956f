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
    """Stands in for the supervisor: publishes two positions of one table, then ends."""

    def __init__(self) -> None:
        self.events = EventBus()
        self._status = PipelineStatus(state="streaming", tables=(TableStatus("public.t", "pg2iceberg.t"),))

    def status(self) -> PipelineStatus:
        return self._status

    def _advance(self, lsn: int) -> None:
        t = self._status.tables[0]
        self._status = replace(self._status, tables=(replace(t, materialized_lsn=lsn),))

    def run(self) -> int:
        time.sleep(0.3)
        self._advance(0x1000)
        time.sleep(0.3)
        self._advance(0x2000)
        self.events.emit("batch_committed", table="public.t", lsn=0x2000)
        time.sleep(0.3)
        return 0


def test_status_follows_materialized_positions_without_waiting_for_the_interval() -> None:
    out = io.StringIO()
    assert run_headless(_Engine(), status_interval_s=3600, out=out, prompt_s=0.02) == 0  # type: ignore[arg-type]
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    positions = [r["tables"][0]["materialized_lsn"] for r in records if r["type"] == "status"]
    # The interval never elapsed: every line came from a change (and one at the end).
    assert positions == ["0/1000", "0/2000", "0/2000"], positions
    assert [r["event"] for r in records if r["type"] == "event"] == ["batch_committed"]
