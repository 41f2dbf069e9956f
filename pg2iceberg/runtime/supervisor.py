"""The supervisor: runs a mode's engine threads, publishes status, takes commands.

Front ends (headless, console) build one :class:`Supervisor`, call :meth:`run` (blocking,
in a thread of their choice), read :meth:`status`, subscribe to :attr:`events` and send
commands with :meth:`submit` (they run in their own threads and report by events).
One-shot modes (compact, maintain, verify, cleanup) run their command through
:meth:`execute`, so a keybinding and a CLI flag do exactly the same thing.
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
from pg2iceberg.errors import ConfigError, Pg2IcebergError, TerminalError
from pg2iceberg.runtime import commands as c
from pg2iceberg.runtime.config_watch import ConfigWatcher
from pg2iceberg.runtime.dispatch import handler_for
from pg2iceberg.runtime.events import EventBus
from pg2iceberg.runtime.pipeline import Pipeline
from pg2iceberg.runtime.status import PipelineStatus

log = logging.getLogger("pg2iceberg")
ONE_SHOT = {"compact": c.Compact, "maintain": c.Maintain}
COMMAND_DRAIN_S = 60.0  # how long a stopping run waits for commands still running
LONG_RUNNING = {"single", "stream-only", "materializer-only"}  # these watch the config file


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
        self.pipeline: Pipeline | None = None  # the running pipeline (streaming modes)
        self.materializing_paused = threading.Event()
        self.finished = threading.Event()  # set when run() has returned or raised
        self._running: set[str] = set()

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

    def stop(self, reason: str | None = None) -> None:
        """Ask every engine thread to stop gracefully; ``reason`` is shown by the front ends."""
        if not self.stop_event.is_set():
            self.publish(lambda s: replace(s, state="stopping", stopped_reason=reason or s.stopped_reason))
            self.stop_event.set()

    def fail(self, exc: BaseException) -> None:
        """An engine thread hit a terminal error: record it and stop everything."""
        if self._failure is None:
            self._failure = exc
            message = str(exc)
            self.events.emit("error", message=message, kind=type(exc).__name__)
            self.set_state("error", error=message)
        self.stop_event.set()

    def run(self) -> int:
        """Run the mode to its end (one-shot modes) or until stopped; return the exit code.

        Raises the terminal error that stopped the run, if any.
        """
        exit_code = 0
        pipeline = self.pipeline = Pipeline(self)
        if self.mode in LONG_RUNNING and self.config.path is not None:
            ConfigWatcher(self, self.config.path).start()
        try:
            if self.mode == "snapshot-only":
                pipeline.snapshot_only(self.only_tables)
            elif self.mode == "single":
                pipeline.run_single()
            elif self.mode == "stream-only":
                from pg2iceberg.runtime.stream_only import run_stream_only

                run_stream_only(pipeline)
            elif self.mode == "materializer-only":
                from pg2iceberg.runtime.materializer_only import run_materializer_only

                run_materializer_only(pipeline)
            elif self.mode == "verify":
                exit_code = self._one_shot(c.Verify(tables=self.only_tables))
            elif self.mode in ONE_SHOT:
                tables = self.only_tables or (None,)
                exit_code = max(self._one_shot(ONE_SHOT[self.mode](t)) for t in tables)
            else:
                raise TerminalError(f"mode {self.mode} is not available yet")
        except ConfigError:
            raise
        except Pg2IcebergError as exc:
            self.fail(exc)
        except Exception as exc:  # noqa: BLE001 - surfaced as an error event + exit 1
            log.exception("engine failure")
            self.fail(TerminalError(f"{type(exc).__name__}: {exc}"))
        finally:
            self._wait_for_commands(COMMAND_DRAIN_S)  # they use the pipeline's connections
            pipeline.close()
            self.finished.set()
        if self._failure is not None:
            raise self._failure
        self.set_state("stopping")  # the contract's states; the process exits right after
        return exit_code

    def _wait_for_commands(self, timeout_s: float) -> None:
        """Let commands still running (a re-copy, maintenance) end before the run closes.

        Cleanup is not waited for: it is the one waiting for this run to end.
        """
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._status_lock:
                others = self._running - {"cleanup", "plan_cleanup"}
            if not others:
                return
            time.sleep(0.05)
        log.warning("stopping while %s still runs", ", ".join(sorted(others)))

    def _one_shot(self, command: c.Command) -> int:
        outcome = self.execute(command)
        if not outcome.ok and outcome.exit_code == 0:
            raise TerminalError(outcome.summary)
        return outcome.exit_code

    # -- commands ------------------------------------------------------------------------

    def execute(self, command: c.Command) -> c.CommandOutcome:
        """Carry out a command in this thread, with ``command_started``/``command_finished`` events.

        Errors become an outcome with ``ok=False`` and the reason; a ConfigError is re-raised
        (it is the caller's mistake, exit 2).
        """
        name = c.command_name(command)
        self.events.emit("command_started", command=name, **_fields(command))
        try:
            outcome = handler_for(command)(self, command)
        except ConfigError:
            raise
        except Pg2IcebergError as exc:
            outcome = c.CommandOutcome(ok=False, summary=str(exc))
        except Exception as exc:  # noqa: BLE001 - reported, the pipeline keeps running
            log.exception("%s failed", name)
            outcome = c.CommandOutcome(ok=False, summary=f"{type(exc).__name__}: {exc}")
        self.events.emit("command_finished", command=name, ok=outcome.ok, summary=outcome.summary,
                         details=outcome.details)
        return outcome

    def submit(self, command: c.Command) -> bool:
        """Run a command in its own thread; returns False (and says why) if one like it runs."""
        name = c.command_name(command)
        with self._status_lock:
            if name in self._running:
                busy = True
            else:
                busy = False
                self._running.add(name)
        if busy:
            self.events.emit("command_rejected", command=name, reason=f"{name} is already running")
            return False
        self.publish(lambda s: replace(s, running_commands=tuple(sorted(self._running))))

        def body() -> None:
            try:
                self.execute(command)
            except ConfigError as exc:
                self.events.emit("command_finished", command=name, ok=False, summary=str(exc), details={})
            finally:
                with self._status_lock:
                    self._running.discard(name)
                self.publish(lambda s: replace(s, running_commands=tuple(sorted(self._running))))

        threading.Thread(target=body, name=f"command-{name}", daemon=True).start()
        return True

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



def _fields(command: c.Command) -> dict[str, object]:
    """A command's fields for its events (the cleanup confirmation is not repeated)."""
    return {k: getattr(command, k) for k in getattr(command, "__slots__", ()) if k != "confirm"}
