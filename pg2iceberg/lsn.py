"""Log sequence numbers: ints inside, PostgreSQL's ``X/Y`` text only at the edges."""


def parse_lsn(text: str) -> int:
    """Parse ``'16/B374D848'`` into an int."""
    high, _, low = text.partition("/")
    if not low:
        raise ValueError(f"not an LSN: {text!r}")
    return (int(high, 16) << 32) | int(low, 16)


def format_lsn(lsn: int | None) -> str | None:
    """Format an int LSN the way PostgreSQL prints it (``0/16B3748``); None stays None."""
    if lsn is None:
        return None
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"
