"""Live config reload: watch the config file, validate, apply hot settings, report the rest.

The watcher looks at the file's directory (editors save by writing a new file and renaming
it over the old one, which a watch on the file itself would lose). On a change it loads and
validates the whole file. An invalid file is rejected with its reason (``config_rejected``)
and the running config stays. A valid one is diffed against the running config: the hot
keys (intervals, sizes, thresholds) are applied at once by swapping the supervisor's frozen
config, whose readers pick the new values on their next loop; keys that need a restart
(connection, slot, catalog, table list, ...) are reported in ``config_reloaded`` and in the
status, and keep their running values.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import watchfiles

from pg2iceberg.config import Config, ConfigError, HOT_KEYS, SinkConfig, diff_config, load_config
from pg2iceberg.config_model import SINK_FIELD_KEYS

if TYPE_CHECKING:
    from pg2iceberg.runtime.supervisor import Supervisor

log = logging.getLogger("pg2iceberg")
_HOT_SINK_FIELDS = tuple(f.name for f in fields(SinkConfig)
                         if "sink." + SINK_FIELD_KEYS.get(f.name, f.name) in HOT_KEYS)


def with_hot_settings(running: Config, loaded: Config) -> Config:
    """``running`` with the hot sink settings of ``loaded``; everything else unchanged."""
    hot = {name: getattr(loaded.sink, name) for name in _HOT_SINK_FIELDS}
    return replace(running, sink=replace(running.sink, **hot))


def reload_once(sup: "Supervisor", load: Callable[[], Config]) -> None:
    """Load the file once and apply it to ``sup`` (or reject it), with events and status."""
    try:
        loaded = load()
    except ConfigError as exc:
        reason = str(exc)
        log.warning("config rejected: %s", reason)
        sup.publish(lambda s: replace(s, config_error=reason))
        sup.events.emit("config_rejected", reason=reason)
        return
    running = sup.config
    diff = diff_config(running, loaded)
    # Restart-only keys keep their running values, so this diff lists every pending one
    # (and drops a key edited back to its running value).
    restart = tuple(diff.restart)
    sup.config = with_hot_settings(running, loaded)
    sup.publish(lambda s: replace(s, config_error=None, restart_needed=restart))
    if diff.empty:
        return
    sup.events.emit("config_reloaded", applied=list(diff.hot), restart_needed=list(diff.restart))


class ConfigWatcher:
    """A daemon thread that reloads the config file whenever it changes."""

    def __init__(self, sup: "Supervisor", path: Path, load: Callable[[], Config] | None = None,
                 *, debounce_ms: int = 300):
        self.sup = sup
        self.path = path.resolve()
        self.load = load or (lambda: load_config(
            self.path, overrides={"materializer_worker_id": sup.config.materializer_worker_id}))
        self.debounce_ms = debounce_ms
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start watching (returns at once)."""
        self.sup.publish(lambda s: replace(s, config_path=str(self.path)))
        self._thread = threading.Thread(target=self._watch, name="config-watch", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        name = self.path.name

        def ours(_change: watchfiles.Change, changed: str) -> bool:
            return Path(changed).name == name

        try:
            for _changes in watchfiles.watch(self.path.parent, watch_filter=ours, recursive=False,
                                             debounce=self.debounce_ms, stop_event=self.sup.stop_event,
                                             raise_interrupt=False):
                if self.sup.stop_event.is_set():
                    return
                reload_once(self.sup, self.load)
        except Exception:  # noqa: BLE001 - reload is a convenience; the pipeline keeps running
            log.exception("the config watcher stopped; edits of %s are no longer picked up", self.path)
