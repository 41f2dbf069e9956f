"""Parse PostgreSQL's text form of a one-dimensional array into its element texts.

The input is what ``array_out`` writes (pgoutput sends exactly that): elements are separated
by the element type's delimiter (``,`` for every built-in type except ``box``); an element is
double-quoted when it is empty, is ``NULL`` in any letter case, or holds a quote, backslash,
brace, delimiter or white space, and inside quotes ``\\`` escapes the next character. An
unquoted ``NULL`` is SQL NULL. Arrays whose lower bound is not 1 carry a dimension decoration
such as ``[0:1]={7,8}``.
"""

from __future__ import annotations


def parse_array(text: str, delimiter: str = ",") -> list[str | None]:
    """Split ``{a,"b c",NULL,"NULL"}`` into ``['a', 'b c', None, 'NULL']``.

    Raises:
        ValueError: not an array literal, a malformed one, or a multi-dimensional array
            (Iceberg lists here are one-dimensional).
    """
    if text.startswith("["):  # dimension decoration: [lo:hi]={...} (or [..][..]= when nested)
        equals = text.find("=")
        if equals < 0:
            raise ValueError(f"malformed array literal: {_short(text)}")
        if text.count("[", 0, equals) > 1:
            raise _multi_dimensional()
        text = text[equals + 1:]
    if len(text) < 2 or text[0] != "{" or text[-1] != "}":
        raise ValueError(f"not an array literal: {_short(text)}")
    body = text[1:-1]
    if not body:
        return []
    if body[0] == "{":
        raise _multi_dimensional()
    items: list[str | None] = []
    i, n = 0, len(body)
    while True:
        if body[i] == '"':
            chunk, i = _quoted(body, i + 1, text)
            items.append(chunk)
        else:
            end = body.find(delimiter, i)
            end = n if end < 0 else end
            raw = body[i:end].strip()
            if not raw or raw[0] in '{}"':
                raise ValueError(f"malformed array literal: {_short(text)}")
            items.append(None if raw.upper() == "NULL" else raw)
            i = end
        if i == n:
            return items
        if body[i] != delimiter:
            raise ValueError(f"malformed array literal: {_short(text)}")
        i += 1
        if i == n:
            raise ValueError(f"malformed array literal: {_short(text)}")


def _quoted(body: str, i: int, text: str) -> tuple[str, int]:
    """Read a quoted element starting after its opening quote; return (content, next index)."""
    chunk: list[str] = []
    n = len(body)
    while i < n:
        ch = body[i]
        if ch == '"':
            return "".join(chunk), i + 1
        if ch == "\\":
            i += 1
            if i == n:
                break
            ch = body[i]
        chunk.append(ch)
        i += 1
    raise ValueError(f"unterminated quoted element in array literal: {_short(text)}")


def _multi_dimensional() -> ValueError:
    return ValueError("multi-dimensional arrays cannot be stored as an Iceberg list "
                      "(only one-dimensional arrays are replicated)")


def _short(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...")
