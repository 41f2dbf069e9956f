"""Durations and sizes: text with a unit at the edges, float seconds and int bytes inside."""

import math
import re

_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)")
_BARE_NUMBER = re.compile(r"\s*[+-]?\d+(?:\.\d*)?\s*")

_SIZE_UNITS = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*")


def parse_duration(text: str) -> float:
    """Parse ``'500ms'``, ``'10s'``, ``'5m'``, ``'168h'``, ``'7d'`` or ``'1h30m'`` into seconds.

    Raises:
        ValueError: the text is empty, a bare number (durations need a unit) or not a duration.
    """
    if not isinstance(text, str):
        raise ValueError(f"durations need a unit, e.g. 10s or 500ms; got {text!r}")
    if _BARE_NUMBER.fullmatch(text):
        raise ValueError(f"durations need a unit, e.g. {text.strip()}s; got {text!r}")
    total = 0.0
    position = 0
    for match in _DURATION_PART.finditer(text):
        if match.start() != position:
            break
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        position = match.end()
    if position == 0 or text[position:].strip():
        raise ValueError(
            f"{text!r} is not a duration: use a number with ms, s, m, h or d,"
            " e.g. 500ms, 10s, 1h30m"
        )
    return total


def parse_size(text: str | int) -> int:
    """Parse ``'64MiB'``, ``'1GiB'``, ``'500KB'`` or a bare byte count into bytes.

    KB, MB, GB, TB are powers of 1000; KiB, MiB, GiB, TiB powers of 1024 (case does not matter).

    Raises:
        ValueError: negative, fractional bytes, or an unknown unit.
    """
    if isinstance(text, bool):
        raise ValueError(f"{text!r} is not a size")
    if isinstance(text, int):
        if text < 0:
            raise ValueError(f"a size cannot be negative: {text}")
        return text
    match = _SIZE.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"{text!r} is not a size: use e.g. 64MiB, 1GiB, 500KB or a byte count")
    number, unit = match.groups()
    factor = _SIZE_UNITS.get(unit.lower() or "b")
    if factor is None:
        raise ValueError(
            f"{text!r}: unknown size unit {unit!r}; use B, KB, KiB, MB, MiB, GB, GiB, TB or TiB"
        )
    value = float(number) * factor
    if value != math.floor(value):
        raise ValueError(f"{text!r} is not a whole number of bytes")
    return int(value)


def format_duration(seconds: float) -> str:
    """Format seconds the way :func:`parse_duration` reads them: ``'1h30m'``, ``'500ms'``."""
    if seconds < 0:
        return "-" + format_duration(-seconds)
    millis = round(seconds * 1000)
    if millis == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        count, millis = divmod(millis, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def format_bytes(n: float) -> str:
    """Format a byte count for people: ``'512 B'``, ``'12.3 MiB'``, ``'1.0 GiB'``."""
    if n < 0:
        return "-" + format_bytes(-n)
    if n < 1024:
        return f"{int(n)} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        value /= 1024
        if value < 1023.95 or unit == "PiB":
            break
    return f"{value:.1f} {unit}"
