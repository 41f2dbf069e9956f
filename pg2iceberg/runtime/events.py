"""Events: things that happened, delivered to observers (headless prints, the TUI posts)."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

log = logging.getLogger("pg2iceberg")


@dataclass(frozen=True, slots=True)
class Event:
    """A named occurrence with its fields (``batch_committed``, ``error``, ...)."""

    name: str
    fields: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.time)


Observer = Callable[[Event], None]


class EventBus:
    """Fan events out to observers; an observer that raises is logged, not fatal."""

    def __init__(self) -> None:
        self._observers: list[Observer] = []
        self._lock = threading.Lock()

    def subscribe(self, observer: Observer) -> None:
        """Receive every later event."""
        with self._lock:
            self._observers.append(observer)

    def emit(self, name: str, **fields: Any) -> None:
        """Publish an event."""
        event = Event(name, fields)
        with self._lock:
            observers = list(self._observers)
        for observer in observers:
            try:
                observer(event)
            except Exception:  # noqa: BLE001 - an observer must not stop the engine
                log.exception("event observer failed")
