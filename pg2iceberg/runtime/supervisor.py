"""The supervisor: runs a mode's engine threads, publishes status, takes commands.

Front ends (headless, console) build one :class:`Supervisor`, call :meth:`run` (blocking,
in a thread of their choice), read :meth:`status` and subscribe to :attr:`events`.
:meth:`stop` asks for a graceful stop: the WAL writer stages what is committed and acks only
what is registered, the materializer finishes its current commit.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from typing import Callable

from pg2iceberg.config import Config
from pg2iceberg.errors import Pg2IcebergError, TerminalError
from pg2iceberg.runtime.events import EventBus
from pg2iceberg.runtime.pipeline import Pipeline
from pg2iceberg.runtime.status import PipelineStatus

log = logging.getLogger("pg2iceberg")


class Supervisor:
    """Owns the engine threads of one run."""

    def __init__(self, config: Config, mode: str = "single", *, tables: tuple[str, ...] = ()):
        self.config = config
        self.mode = mode
        self.only_tables = tables
        self.events = EventBus()
        self.stop_event = threading.Event()
        self._status = PipelineStatus(state="starting", mode=mode)
        self._status_lock = threading.Lock()
        self._failure: BaseException | None = None

    # -- status --------------------------------------------------------------------------

    def status(self) -> PipelineStatus:
        """The latest published status snapshot."""
        return self._status

    def publish(self, update: Callable[[PipelineStatus], PipelineStatus]) -> None:
        """Replace the status snapshot by ``update(current)``."""
        with self._status_lock:
            self._status = replace(update(self._status), updated_at=time.time())

    def set_state(self, state: str, error: str | None = None) -> None:
        """Publish a new pipeline state."""
        self.publish(lambda s: replace(s, state=state, error=error if error else s.error))

    # -- lifecycle -----------------------------------------------------------------------

    def stop(self) -> None:
        """Ask every engine thread to stop gracefully."""
        if not self.stop_event.is_set():
            self.set_state("stopping")
            self.stop_event.set()

    def fail(self, exc: BaseException) -> None:
        """An engine thread hit a terminal error: record it and stop everything."""
        if self._failure is None:
            self._failure = exc
            message = str(exc)
            self.events.emit("error", message=message, kind=type(exc).__name__)
            self.set_state("error", error=message)
        self.stop_event.set()

    def run(self) -> None:
        """Run the mode to its end (one-shot modes) or until stopped; raise on failure."""
        pipeline = Pipeline(self.config, self)
        try:
            if self.mode == "snapshot-only":
                pipeline.snapshot_only(self.only_tables)
            elif self.mode == "single":
                pipeline.run_single()
            else:
                raise TerminalError(f"mode {self.mode} is not available yet")
        except Pg2IcebergError as exc:
            self.fail(exc)
        except Exception as exc:  # noqa: BLE001 - surfaced as an error event + exit 1
            log.exception("engine failure")
            self.fail(TerminalError(f"{type(exc).__name__}: {exc}"))
        finally:
            pipeline.close()
        if self._failure is not None:
            raise self._failure
        self.set_state("stopping")  # the contract's states; the process exits right after

    def spawn(self, name: str, target: Callable[[], None]) -> threading.Thread:
        """Start an engine thread whose failure stops the whole run."""
        def body() -> None:
            try:
                target()
            except BaseException as exc:  # noqa: BLE001
                if not isinstance(exc, Pg2IcebergError):
                    log.exception("%s failed", name)
                    exc = TerminalError(f"{name}: {type(exc).__name__}: {exc}")
                self.fail(exc)

        thread = threading.Thread(target=body, name=name, daemon=True)
        thread.start()
        return thread

