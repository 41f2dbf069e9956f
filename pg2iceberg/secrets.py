"""Keeping secrets out of every output: one place that knows what a password looks like."""

from __future__ import annotations

import re

_SECRET_WORDS = ("secret", "password", "token", "key", "credential")
_URL_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"]+")
_KV_PASSWORD = re.compile(r"(\b(?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'|\S*)", re.I)
_QUERY_PASSWORD = re.compile(r"([?&](?:ssl)?password=)[^&#]*", re.I)


def is_secret_key(key: str) -> bool:
    """Whether a property name looks like it holds a secret (its value is never shown)."""
    return any(word in key.lower() for word in _SECRET_WORDS)


def redact_dsn(dsn: str) -> str:
    """Hide the password of a URL (``user:***@host``, ``?password=***``) or key=value conninfo."""
    prefix = _URL_PREFIX.match(dsn)
    if prefix is None:
        return _KV_PASSWORD.sub(r"\1***", dsn)
    rest = dsn[prefix.end() :]
    cut = min([i for i in (rest.find("/"), rest.find("?")) if i >= 0], default=len(rest))
    authority = rest[:cut]
    if "@" in authority:
        userinfo, _, hosts = authority.rpartition("@")
        user, colon, _ = userinfo.partition(":")
        if colon:
            authority = f"{user}:***@{hosts}"
    return prefix.group(0) + authority + _QUERY_PASSWORD.sub(r"\1***", rest[cut:])


def redact(text: str) -> str:
    """Remove passwords from free text that may contain URLs or key=value conninfo."""
    out, last = [], 0
    for url in _URL_IN_TEXT.finditer(text):
        out += [_KV_PASSWORD.sub(r"\1***", text[last:url.start()]), redact_dsn(url.group(0))]
        last = url.end()
    out.append(_KV_PASSWORD.sub(r"\1***", text[last:]))
    return "".join(out)
