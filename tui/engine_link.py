"""The console's side of the engine: the surface it uses, and the plain thread running it.

The engine runs in an ordinary ``threading.Thread`` (never a Textual worker). Its events and
its end reach the app only as messages (``post_message`` is thread-safe); nothing here touches
a widget.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

from textual.message import Message

from pg2iceberg.runtime.commands import Command
from pg2iceberg.runtime.events import Event, Observer
from pg2iceberg.runtime.status import PipelineStatus


class EventSource(Protocol):
    """Where events come from (the supervisor's ``EventBus``)."""

    def subscribe(self, observer: Observer) -> None:
        """Receive every later event."""


class Engine(Protocol):
    """What the console needs of the supervisor (a fake engine implements it in tests)."""

    events: EventSource
    config: Any
    mode: str
    finished: threading.Event

    def status(self) -> PipelineStatus:
        """The latest frozen status snapshot."""

    def submit(self, command: Command) -> bool:
        """Start a command; its outcome comes back as events."""

    def stop(self, reason: str | None = None) -> None:
        """Ask for a graceful stop."""

    def run(self) -> int:
        """Run until stopped; the exit code, or raise the failure."""


class EventArrived(Message):
    """The engine published an event (posted from an engine thread)."""

    def __init__(self, event: Event):
        super().__init__()
        self.event = event


class EngineStopped(Message):
    """The engine thread has returned or raised."""


class EngineThread:
    """Runs ``engine.run()`` in a plain daemon thread, keeping its exit code or failure."""

    def __init__(self, engine: Engine, on_done: Callable[[], None]):
        self.engine = engine
        self.exit_code: int | None = None
        self.failure: BaseException | None = None
        self._on_done = on_done
        self._thread = threading.Thread(target=self._body, name="engine", daemon=True)

    def _body(self) -> None:
        try:
            self.exit_code = self.engine.run()
        except BaseException as exc:  # noqa: BLE001 - re-raised by run_console after the app exits
            self.failure = exc
        finally:
            self._on_done()

    def start(self) -> None:
        """Start the engine."""
        self._thread.start()

    @property
    def started(self) -> bool:
        """Whether :meth:`start` was called."""
        return self._thread.ident is not None

    @property
    def alive(self) -> bool:
        """Whether the engine is still running."""
        return self._thread.is_alive()

    def join(self, timeout_s: float | None = None) -> None:
        """Wait for the engine to end."""
        if self.started:
            self._thread.join(timeout_s)
