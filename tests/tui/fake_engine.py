"""A stand-in for the supervisor: the same surface, scripted snapshots, recorded commands."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from types import SimpleNamespace
from typing import Any

from scenarios import NOW

from pg2iceberg.runtime import commands as c
from pg2iceberg.runtime.events import Event, Observer
from pg2iceberg.runtime.status import PipelineStatus


class FixedClockEvents:
    """The supervisor's event bus, but every event happens at one fixed time."""

    def __init__(self, at: float = NOW):
        self.at = at
        self.observers: list[Observer] = []
        self.lock = threading.Lock()

    def subscribe(self, observer: Observer) -> None:
        """Receive every later event."""
        with self.lock:
            self.observers.append(observer)

    def emit(self, name: str, **fields: Any) -> None:
        """Publish an event."""
        self.publish(Event(name, fields, self.at))

    def publish(self, event: Event) -> None:
        """Publish a ready-made event (with its own time)."""
        with self.lock:
            observers = list(self.observers)
        for observer in observers:
            observer(event)


@dataclass
class FakeEngine:
    """Blocks in :meth:`run` until stopped; :meth:`submit` records and (optionally) answers.

    ``answers`` maps a command name to what ``command_finished`` should carry (ok, summary,
    details); commands without an answer only get ``command_started``. Pause and resume flip
    ``materializing_paused`` in the snapshot, as the real handlers do.
    """

    snapshot: PipelineStatus = field(default_factory=PipelineStatus)
    slot_name: str = "slot_demo"
    table_names: tuple[str, ...] = ("shop.customers", "shop.orders")
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    exit_code: int = 0
    failure: BaseException | None = None
    mode: str = "single"

    def __post_init__(self) -> None:
        self.events = FixedClockEvents()
        self.submitted: list[c.Command] = []
        self.stop_calls: list[str | None] = []
        self.stop_event = threading.Event()
        self.finished = threading.Event()
        self.config = SimpleNamespace(source=SimpleNamespace(slot_name=self.slot_name),
                                      tables=[SimpleNamespace(name=n) for n in self.table_names])

    def status(self) -> PipelineStatus:
        """The scripted snapshot."""
        return self.snapshot

    def submit(self, command: c.Command) -> bool:
        """Record the command and report like the supervisor does."""
        self.submitted.append(command)
        name = c.command_name(command)
        self.events.emit("command_started", command=name)
        if isinstance(command, (c.PauseMaterializing, c.ResumeMaterializing)):
            self.snapshot = replace(self.snapshot,
                                    materializing_paused=isinstance(command, c.PauseMaterializing))
        if name in self.answers:
            self.events.emit("command_finished", command=name, **self.answers[name])
        return True

    def stop(self, reason: str | None = None) -> None:
        """Record the request and let :meth:`run` return."""
        self.stop_calls.append(reason)
        if reason:
            self.snapshot = replace(self.snapshot, state="stopping", stopped_reason=reason)
        self.stop_event.set()

    def run(self) -> int:
        """Block until stopped (or fail at once with ``failure``)."""
        try:
            if self.failure is not None:
                raise self.failure
            self.stop_event.wait()
            return self.exit_code
        finally:
            self.finished.set()
