"""While the console owns the terminal, engine log records go to its event log, not stderr.

Writing to stderr would scribble over the screen; records at WARNING and above become
:class:`LogRecorded` messages (posting is thread-safe), lower ones are dropped until the
console closes and the previous handlers are back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from textual.message import Message
from textual.message_pump import MessagePump

from pg2iceberg.secrets import redact


class LogRecorded(Message):
    """A log record worth showing (posted from any thread)."""

    def __init__(self, level: str, text: str, at: float):
        super().__init__()
        self.level = level
        self.text = text
        self.at = at


class _Forward(logging.Handler):
    def __init__(self, target: MessagePump, level: int):
        super().__init__(level)
        self.target = target

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = redact(f"{record.name}: {record.getMessage()}")
            self.target.post_message(LogRecorded(record.levelname, text, record.created))
        except Exception:  # noqa: BLE001 - logging must never raise into the engine
            self.handleError(record)


def forward_logs(target: MessagePump, level: int = logging.WARNING) -> Callable[[], None]:
    """Replace the root logger's handlers by one posting to ``target``; returns the undo."""
    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers[:] = [_Forward(target, level)]

    def restore() -> None:
        root.handlers[:] = saved

    return restore
