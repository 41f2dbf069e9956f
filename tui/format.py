"""Pure text formatting for the console: LSNs, sizes, ages, rates, sparklines, progress, ETA.

Every function takes plain values (``None`` where the engine does not know yet) and returns
text; unknown values render as :data:`DASH`. Nothing here reads a clock: callers pass ``now``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from pg2iceberg.lsn import format_lsn

DASH = "–"
_SIZE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
_RATE_UNITS = ((1e9, "G"), (1e6, "M"), (1e3, "k"))
_SPARK = "▁▂▃▄▅▆▇█"
_BAR_PARTIAL = "░▏▎▍▌▋▊▉"  # index = eighths of the cell done


def lsn(value: int | None) -> str:
    """An LSN as PostgreSQL prints it (``0/16B3748``)."""
    return format_lsn(value) or DASH


def size(n_bytes: int | None) -> str:
    """Bytes in binary units: ``0 B``, ``512 B``, ``1.5 KiB``, ``12.0 MiB``."""
    if n_bytes is None:
        return DASH
    value = float(n_bytes)
    for unit in _SIZE_UNITS:
        if abs(value) < 1024 or unit == _SIZE_UNITS[-1]:
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def count(n: int | None) -> str:
    """A count with thousands separators: ``1,234,567``."""
    return DASH if n is None else f"{n:,}"


def duration(seconds: float | None) -> str:
    """A span of time, two units at most: ``0.4s``, ``12s``, ``3m05s``, ``2h03m``, ``3d04h``."""
    if seconds is None:
        return DASH
    seconds = max(0.0, seconds)
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def ago(at: float | None, now: float) -> str:
    """How long ago an epoch time was: ``12s ago``; a time in the future counts as now."""
    return DASH if at is None else f"{duration(now - at)} ago"


def rate(per_s: float | None, unit: str = "/s") -> str:
    """A rate with a metric suffix: ``0/s``, ``850/s``, ``1.2k/s``, ``3.4M/s``."""
    if per_s is None:
        return DASH
    for scale, suffix in _RATE_UNITS:
        if per_s >= scale:
            return f"{per_s / scale:.1f}{suffix}{unit}"
    return f"{per_s:.0f}{unit}" if per_s >= 10 or per_s == 0 else f"{per_s:.1f}{unit}"


def sparkline(values: Sequence[float], width: int) -> str:
    """The last ``width`` values as block characters scaled to their maximum."""
    recent = [max(0.0, v) for v in values[-width:]] if width > 0 else []
    if not recent:
        return ""
    top = max(recent)
    if top <= 0:
        return _SPARK[0] * len(recent)
    last = len(_SPARK) - 1
    return "".join(_SPARK[min(last, int(v / top * last + 0.5))] for v in recent)


def progress_bar(fraction: float, width: int) -> str:
    """A bar of ``width`` cells, ``█`` for done and ``░`` for to do, with eighth-cell steps."""
    fraction = min(1.0, max(0.0, fraction))
    eighths = int(fraction * width * 8)
    full, part = divmod(eighths, 8)
    bar = "█" * full
    if full < width:
        bar += _BAR_PARTIAL[part] + "░" * (width - full - 1)
    return bar


def fraction_done(rows: int, total: int) -> float | None:
    """How far a copy is (0..1), or None when the total is unknown; estimates may undershoot."""
    if total <= 0:
        return None
    return min(1.0, rows / total)


def eta(rows: int, total: int, rows_per_s: float) -> str:
    """Time left for a copy at its current rate; ``–`` when the total or rate is unknown."""
    if total <= 0 or rows_per_s <= 0:
        return DASH
    return duration(max(0, total - rows) / rows_per_s)


def clock_time(at: float) -> str:
    """An epoch time as local ``HH:MM:SS`` (for the event log)."""
    return time.strftime("%H:%M:%S", time.localtime(at))


def or_dash(value: object) -> str:
    """``str(value)``, or ``–`` for None and empty text."""
    return DASH if value is None or value == "" else str(value)
