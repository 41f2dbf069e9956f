"""PostgreSQL identifiers: parse what people write, quote what goes into SQL.

Rules follow the server with a UTF-8 database: an unquoted identifier has its ASCII letters
folded to lower case (other letters stay as written); a double-quoted one keeps everything,
may hold dots and spaces, and writes a double quote as ``""``. Identifiers longer than 63
bytes are refused rather than silently truncated as the server would.
"""

import re

MAX_IDENTIFIER_BYTES = 63

_UNQUOTED = re.compile(r"[A-Za-z_\u0080-\U0010ffff][A-Za-z0-9_$\u0080-\U0010ffff]*")
_PLAIN = re.compile(r"[a-z_\u0080-\U0010ffff][a-z0-9_$\u0080-\U0010ffff]*")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def quote_ident(name: str) -> str:
    """Quote one identifier for SQL, always: ``Odd"Name`` → ``"Odd""Name"``."""
    if "\x00" in name:
        raise ValueError("identifiers cannot contain a NUL character")
    return '"' + name.replace('"', '""') + '"'


def display_ident(name: str) -> str:
    """Write an identifier for people, quoted only where reading it back needs quotes."""
    return name if _PLAIN.fullmatch(name) else quote_ident(name)


def display_qualified(schema: str, table: str) -> str:
    """``schema.table`` for people, quoting only the parts that need it."""
    return f"{display_ident(schema)}.{display_ident(table)}"


def parse_ident(text: str) -> str:
    """Parse one identifier (quoted or not) into its raw name.

    Raises:
        ValueError: not exactly one valid identifier.
    """
    parts = _parse_dotted(text)
    if len(parts) != 1:
        raise ValueError(f"{text!r} is not one identifier; quote names that hold dots")
    return parts[0]


def parse_qualified_name(text: str) -> tuple[str, str]:
    """Parse ``schema.table`` (each part quoted or not) into raw ``(schema, table)``.

    Raises:
        ValueError: no schema, too many parts, or an invalid identifier.
    """
    parts = _parse_dotted(text)
    if len(parts) == 1:
        raise ValueError(f"{text!r} needs a schema: write schema.table, e.g. public.{text.strip()}")
    if len(parts) != 2:
        raise ValueError(
            f"{text!r} has {len(parts)} parts; write schema.table (quote names that hold dots)"
        )
    return parts[0], parts[1]


def _parse_dotted(text: str) -> list[str]:
    """Split ``a."B.c".d`` into raw identifiers."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("a name cannot be empty")
    parts: list[str] = []
    position = 0
    while True:
        position = _skip_spaces(text, position)
        name, position = _read_ident(text, position)
        if len(name.encode()) > MAX_IDENTIFIER_BYTES:
            raise ValueError(f"identifier {name!r} is longer than {MAX_IDENTIFIER_BYTES} bytes")
        parts.append(name)
        position = _skip_spaces(text, position)
        if position == len(text):
            return parts
        if text[position] != ".":
            raise ValueError(f"{text!r}: unexpected {text[position]!r} at position {position + 1}")
        position += 1


def _skip_spaces(text: str, position: int) -> int:
    while position < len(text) and text[position].isspace():
        position += 1
    return position


def _read_ident(text: str, position: int) -> tuple[str, int]:
    if position < len(text) and text[position] == '"':
        chars: list[str] = []
        position += 1
        while position < len(text):
            if text[position] == '"':
                if text.startswith('""', position):
                    chars.append('"')
                    position += 2
                    continue
                if not chars:
                    raise ValueError(f"{text!r}: a quoted identifier cannot be empty")
                return "".join(chars), position + 1
            chars.append(text[position])
            position += 1
        raise ValueError(f"{text!r}: unterminated quoted identifier")
    match = _UNQUOTED.match(text, position)
    if match is None:
        found = repr(text[position]) if position < len(text) else "the end"
        raise ValueError(
            f"{text!r}: expected an identifier at position {position + 1}, found {found}"
        )
    return match.group(0).translate(_ASCII_LOWER), match.end()
