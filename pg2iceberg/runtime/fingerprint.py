"""The stream writer's config fingerprint: what every materializer worker must share with it.

The process that owns the slot (single or stream-only mode) stores, in the coordinator's
``meta`` table, one entry per setting that decides *what* is replicated *where*: the table
list (source name → Iceberg name, key override, partitioning), the catalog type and URI, the
warehouse, the namespace, the stream location and the slot. A materializer-only worker
compares its own config with it before it touches anything and refuses to start when a
setting differs (a :class:`~pg2iceberg.errors.ConfigError`: exit 2, nothing changed), naming
each differing key with both values.

Values are compared by SHA-256 of their raw text and shown redacted, so a catalog URI with a
password is neither stored nor printed in the clear. Settings that may rightly differ per
worker (credentials, catalog properties, intervals, flush sizes) are not part of it.
"""

from __future__ import annotations

import hashlib
import json

from pg2iceberg.config import Config
from pg2iceberg.errors import ConfigError
from pg2iceberg.secrets import redact

META_KEY = "config_fingerprint"


def _tables(config: Config) -> str:
    parts = []
    for t in sorted(config.tables, key=lambda t: t.name):
        text = f"{t.name} -> {config.sink.namespace}.{t.iceberg_name}"
        if t.primary_key:
            text += f" key({', '.join(t.primary_key)})"
        if t.partition:
            text += f" partition[{', '.join(t.partition)}]"
        parts.append(text)
    return "; ".join(parts)


def settings(config: Config) -> dict[str, str]:
    """The fingerprinted settings of ``config`` by key path, as raw text."""
    sink = config.sink
    return {
        "tables": _tables(config),
        "sink.catalog_type": sink.catalog_type,
        "sink.catalog_uri": sink.catalog_uri or "",
        "sink.warehouse": sink.warehouse,
        "sink.namespace": sink.namespace,
        "stream.location": config.stream.location,
        "source.logical.slot_name": config.source.slot_name,
    }


def fingerprint(config: Config) -> str:
    """The JSON stored in ``meta``: per key, the redacted value and the digest of the raw one."""
    return json.dumps({key: {"value": redact(value), "sha256": hashlib.sha256(value.encode()).hexdigest()}
                       for key, value in settings(config).items()}, sort_keys=True)


def differences(config: Config, stored: str) -> list[str]:
    """Human lines, one per key whose value differs from the stored fingerprint."""
    theirs = json.loads(stored)
    mine = json.loads(fingerprint(config))
    out = []
    for key in sorted(set(mine) | set(theirs)):
        a, b = mine.get(key), theirs.get(key)
        if a is None or b is None or a["sha256"] != b["sha256"]:
            out.append(f"{key}: this config has {a['value'] if a else '(nothing)'!r}, "
                       f"the stream writer has {b['value'] if b else '(nothing)'!r}")
    return out


def check(config: Config, stored: str) -> None:
    """Refuse (ConfigError) when ``config`` does not match the stream writer's fingerprint."""
    diffs = differences(config, stored)
    if diffs:
        where = str(config.path) if config.path else "the configuration"
        raise ConfigError(
            f"{where}: this materializer worker's config does not match the stream writer's, so it "
            "would apply the stream to other tables or another catalog. Use the stream writer's "
            "config (tables, catalog, warehouse, namespace, stream location, slot): " + "; ".join(diffs))
