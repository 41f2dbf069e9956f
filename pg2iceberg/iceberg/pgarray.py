"""Parse PostgreSQL's text form of a one-dimensional array into its element texts."""

from __future__ import annotations


def parse_array(text: str) -> list[str | None]:
    """Split ``{a,"b c",NULL}`` into ``['a', 'b c', None]``.

    Quoted elements keep their content (backslash escapes resolved); an unquoted ``NULL`` is
    SQL NULL. A leading dimension decoration (``[0:1]={...}``) is skipped. Multi-dimensional
    arrays raise ValueError: Iceberg lists here are one-dimensional.
    """
    if text.startswith("["):
        text = text[text.index("=") + 1:]
    if not (text.startswith("{") and text.endswith("}")):
        raise ValueError(f"not an array literal: {text[:40]!r}")
    body = text[1:-1]
    if not body:
        return []
    if body.startswith("{"):
        raise ValueError("multi-dimensional arrays cannot be stored as an Iceberg list")
    items: list[str | None] = []
    i, n = 0, len(body)
    while i <= n:
        if i < n and body[i] == '"':
            i += 1
            chunk: list[str] = []
            while body[i] != '"':
                if body[i] == "\\":
                    i += 1
                chunk.append(body[i])
                i += 1
            items.append("".join(chunk))
            i += 2  # closing quote and the comma
        else:
            end = body.find(",", i)
            end = n if end < 0 else end
            raw = body[i:end].strip()
            items.append(None if raw == "NULL" else raw)
            i = end + 1
    return items
