"""Typed configuration: load and validate the YAML file; diff two configs for live reload.

The model lives in :mod:`pg2iceberg.config_model` and is re-exported here. Precedence is
file < environment (the Go-era names in :data:`ENV_OVERRIDES`, plus ``TABLES`` and
``MATERIALIZER_WORKER_ID``) < ``overrides`` (the command line, as dotted key paths).
``TABLES`` picks the tables to replicate; a picked table that the file also lists keeps the
file's settings. Relative paths are relative to the config file's folder (the working folder
without a file). Every error is a :class:`ConfigError` ``<file>: <key.path>: <reason>``.
"""

import os
import re
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

from psycopg import ProgrammingError
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pg2iceberg.config_load import (
    COMMAND_LINE,
    ENVIRONMENT,
    Node,
    Origins,
    interpolate,
    kind,
    read_yaml,
    resolve_location,
    resolve_sqlite_uri,
    set_path,
)
from pg2iceberg.config_model import (
    HOT_KEYS,
    SINK_FIELD_KEYS,
    Config,
    ConfigDiff,
    PartitionField,
    PostgresConfig,
    SinkConfig,
    SourceConfig,
    StateConfig,
    StreamConfig,
    TableConfig,
    diff_config,
    is_secret_key,
    parse_partition_field,
    redact_dsn,
)
from pg2iceberg.errors import ConfigError
from pg2iceberg.sqlident import (
    MAX_IDENTIFIER_BYTES,
    display_qualified,
    parse_ident,
    parse_qualified_name,
)

__all__ = [
    "Config", "ConfigDiff", "PartitionField", "PostgresConfig", "SinkConfig", "SourceConfig",
    "StateConfig", "StreamConfig", "TableConfig", "diff_config", "is_secret_key", "load_config",
    "parse_partition_field", "redact_dsn", "ENV_OVERRIDES", "HOT_KEYS",
]  # fmt: skip

ENV_OVERRIDES: Mapping[str, str] = MappingProxyType({
    "POSTGRES_URL": "source.postgres.url",
    "SLOT_NAME": "source.logical.slot_name",
    "PUBLICATION_NAME": "source.logical.publication_name",
    "WAREHOUSE": "sink.warehouse",
    "NAMESPACE": "sink.namespace",
    "S3_ENDPOINT": "sink.s3_endpoint",
    "S3_ACCESS_KEY": "sink.s3_access_key",
    "S3_SECRET_KEY": "sink.s3_secret_key",
    "S3_REGION": "sink.s3_region",
    "STATE_POSTGRES_URL": "state.postgres_url",
})  # fmt: skip
_ALIASES = {
    "compaction_data_files": "data_file_threshold",
    "compaction_delete_files": "delete_file_threshold",
}
_ENV_BESIDE = {"TABLES": "tables", "MATERIALIZER_WORKER_ID": "materializer_worker_id"}
_TOP_KEYS = ("source", "sink", "stream", "state", "tables")
_POSTGRES_KEYS = ("url", "host", "port", "database", "user", "password", "sslmode")
_SINK_KEYS = ("catalog_type", "catalog_uri", "catalog_props", "warehouse", "namespace",
              "s3_endpoint", "s3_access_key", "s3_secret_key", "s3_region", *_ALIASES,
              *SINK_FIELD_KEYS.values(), "flush_rows", "flush_bytes", "data_file_threshold",
              "delete_file_threshold", "materializer_chunk_rows")  # fmt: skip
_SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_SLOT_NAME = re.compile(r"[a-z0-9_]{1,63}")
# SinkConfig fields read as numbers; their defaults are the model's.
_KNOBS = (*SINK_FIELD_KEYS, "flush_rows", "flush_bytes", "materializer_chunk_rows", *_ALIASES.values())


def load_config(
    path: str | Path | None,
    env: Mapping[str, str] = os.environ,
    overrides: Mapping[str, object] | None = None,
) -> Config:
    """Load, merge and validate the configuration.

    Args:
        path: the YAML file, or None to build the config from ``env`` and ``overrides`` alone.
        env: the environment, for ``${VAR}`` references and the Go-era overrides.
        overrides: dotted key paths (``sink.flush_interval``, ``tables``, ...) set last.

    Raises:
        ConfigError: anything wrong, as ``<file>: <key.path>: <reason>``.
    """
    file = Path(path) if path is not None else None
    label = str(path) if path is not None else ENVIRONMENT
    base = file.resolve().parent if file is not None else Path.cwd()
    tree: dict[str, Any] = {}
    if file is not None:
        tree = read_yaml(file, label)
        if "materializer_worker_id" in tree:
            raise ConfigError(
                f"{label}: materializer_worker_id: unknown key; give each worker its id with"
                " --materializer-worker-id or MATERIALIZER_WORKER_ID"
            )
        tree = interpolate(tree, env, label)
    origins = Origins(label)
    beside: dict[str, Node] = {}  # the table picks and the worker id live beside the tree
    for var, key in (*ENV_OVERRIDES.items(), *_ENV_BESIDE.items()):
        if env.get(var):
            _override(tree, origins, beside, key, env[var], ENVIRONMENT, var)
    for key, value in (overrides or {}).items():
        if value is not None:
            _override(tree, origins, beside, key, value, COMMAND_LINE)

    root = Node(tree, "", origins)
    root.mapping(_TOP_KEYS)
    source = _source(root.child("source"))
    sink = _sink(root.child("sink"), base)
    stream = root.child("stream")
    stream.mapping(("location",))
    location = stream.child("location").optional_text()
    stream_location = resolve_location(location, base) if location else sink.warehouse + "/_stream"
    state = _state(root.child("state"), source.postgres)
    tables = _tables(root.child("tables"), beside.get("tables"), sink.namespace)
    worker = beside.get("materializer_worker_id")
    worker_id = worker.text().strip() if worker is not None else None
    if worker is not None and not worker_id:
        raise worker.error("must not be empty")
    return Config(
        source=source,
        sink=sink,
        stream=StreamConfig(stream_location),
        state=state,
        tables=tables,
        path=file.resolve() if file is not None else None,
        materializer_worker_id=worker_id,
    )


def _override(
    tree: dict[str, Any],
    origins: Origins,
    beside: dict[str, Node],
    key: str,
    value: object,
    label: str,
    via: str | None = None,
) -> None:
    """Set one overriding value; a URL replaces the whole connection, an alias its canonical key."""
    if key in _ENV_BESIDE.values():
        beside[key] = _side_node(value, key, label, via)
        return
    section, _, name = key.rpartition(".")
    if section == "sink" and name in _ALIASES:
        key = "sink." + _ALIASES[name]
    if key == "source.postgres.url":
        key, value = "source.postgres", {"url": value}
    spellings = [a for a, canonical in _ALIASES.items() if "sink." + canonical == key]
    set_path(tree, key, value, replaces=spellings)
    origins.mark(key, label, via)


def _side_node(value: object, path: str, label: str, via: str | None = None) -> Node:
    """A node for a value given beside the tree (a table pick list or the worker id)."""
    origins = Origins(label)
    origins.mark(path, label, via)
    if path == "tables" and isinstance(value, str):
        value = [name.strip() for name in value.split(",") if name.strip()]
    return Node(value, path, origins)


def _postgres(node: Node) -> PostgresConfig:
    given = {k for k, v in node.mapping(_POSTGRES_KEYS).items() if v is not None}
    if not given:
        raise node.error(
            "missing; give url, or host and database (with port, user, password, sslmode)"
        )
    if "url" in given:
        if given - {"url"}:
            raise node.error(f"give either url or {', '.join(sorted(given - {'url'}))}, not both")
        return _conninfo(node.child("url"))
    sslmode = node.child("sslmode").optional_text()
    if sslmode is not None and sslmode not in _SSLMODES:
        raise node.child("sslmode").error(f"must be one of {', '.join(_SSLMODES)}, got {sslmode!r}")
    params = {
        "host": node.child("host").text(),
        "port": node.child("port").integer(5432, minimum=1, maximum=65535),
        "dbname": node.child("database").text(),
        "user": node.child("user").optional_text(),
        "password": node.child("password").optional_text(),
        "sslmode": sslmode,
    }
    return PostgresConfig(make_conninfo(**{k: v for k, v in params.items() if v is not None}))


def _conninfo(node: Node) -> PostgresConfig:
    dsn = node.text()
    try:
        params = conninfo_to_dict(dsn)
    except ProgrammingError:
        # libpq's reason can quote the password, so it is not repeated here
        raise node.error(
            "not a valid PostgreSQL URL or conninfo string (e.g."
            " postgresql://user:pass@host:5432/db; percent-encode special characters"
            " in the password)"
        ) from None
    ports = str(params.get("port") or "5432").split(",")
    if not all(port.isascii() and port.isdigit() for port in ports):
        raise node.error(f"the port must be a number, got {params['port']!r}")
    return PostgresConfig(dsn)


def _source(node: Node) -> SourceConfig:
    node.mapping(("postgres", "logical"))
    postgres = _postgres(node.child("postgres"))
    logical = node.child("logical")
    logical.mapping(("publication_name", "slot_name"))
    publication_default = _default(SourceConfig, "publication_name")
    publication = _name(logical.child("publication_name"), publication_default)
    slot_node = logical.child("slot_name")
    slot = slot_node.text(_default(SourceConfig, "slot_name"))
    if not _SLOT_NAME.fullmatch(slot):
        raise slot_node.error(f"{slot!r}: a slot name may only hold a-z, 0-9 and _ (at most 63)")
    return SourceConfig(postgres, publication, slot)


def _name(node: Node, default: str) -> str:
    """A raw PostgreSQL object name (quoted when used), at most 63 bytes."""
    name = node.text(default)
    if len(name.encode()) > MAX_IDENTIFIER_BYTES:
        raise node.error(f"longer than {MAX_IDENTIFIER_BYTES} bytes")
    return name


def _sink(node: Node, base: Path) -> SinkConfig:
    given = node.mapping(_SINK_KEYS)
    for alias, canonical in _ALIASES.items():
        if alias in given and canonical in given:
            raise node.child(alias).error(
                f"is another name for sink.{canonical}, which is also given; keep one"
            )
    catalog_type = node.child("catalog_type").text("sql")
    catalog_uri = node.child("catalog_uri").optional_text()
    if catalog_uri is None and catalog_type == "sql":
        catalog_uri = "sqlite:///catalog.db"
    props = node.child("catalog_props")
    catalog_props = {}
    for key, value in props.mapping().items():
        if value is None or isinstance(value, (dict, list)):
            raise props.child(key).error(f"expected text, got {kind(value)}")
        catalog_props[key] = str(value).lower() if isinstance(value, bool) else str(value)
    knobs: dict[str, Any] = {name: _default(SinkConfig, name) for name in _KNOBS}
    for field, key in SINK_FIELD_KEYS.items():
        never_zero = field in ("flush_interval_s", "materializer_interval_s")
        if field.endswith("_bytes"):
            knobs[field] = node.child(key).size(knobs[field])
        else:
            knobs[field] = node.child(key).duration(knobs[field], allow_zero=not never_zero)
    knobs["flush_rows"] = node.child("flush_rows").integer(knobs["flush_rows"], minimum=1)
    knobs["flush_bytes"] = node.child("flush_bytes").size(knobs["flush_bytes"])
    knobs["materializer_chunk_rows"] = node.child("materializer_chunk_rows").integer(
        knobs["materializer_chunk_rows"], minimum=1)
    for alias, canonical in _ALIASES.items():
        chosen = node.child(canonical) if canonical in given else node.child(alias)
        knobs[canonical] = chosen.integer(knobs[canonical], minimum=1)
    return SinkConfig(
        catalog_type=catalog_type,
        catalog_uri=resolve_sqlite_uri(catalog_uri, base) if catalog_uri else None,
        catalog_props=MappingProxyType(catalog_props),
        warehouse=resolve_location(node.child("warehouse").text("warehouse"), base),
        namespace=node.child("namespace").text(_default(SinkConfig, "namespace")),
        s3_endpoint=node.child("s3_endpoint").optional_text(),
        s3_access_key=node.child("s3_access_key").optional_text(),
        s3_secret_key=node.child("s3_secret_key").optional_text(),
        s3_region=node.child("s3_region").optional_text(),
        **knobs,
    )


def _default(model: type, name: str) -> Any:
    """The default the model declares for one field."""
    return next(f.default for f in fields(model) if f.name == name)


def _state(node: Node, source: PostgresConfig) -> StateConfig:
    node.mapping(("postgres_url", "coordinator_schema"))
    url = node.child("postgres_url")
    postgres = _conninfo(url) if url.optional_text() is not None else source
    schema = _name(node.child("coordinator_schema"), _default(StateConfig, "coordinator_schema"))
    return StateConfig(postgres, schema)


def _tables(node: Node, picks: Node | None, namespace: str) -> tuple[TableConfig, ...]:
    configured: dict[tuple[str, str], tuple[TableConfig, Node]] = {}
    for item in node.items():
        table = _table(item)
        key = (table.schema, table.table)
        if key in configured:
            first = configured[key][1].path
            raise item.error(f"{table.name} is configured twice (also at {first})")
        configured[key] = (table, item)
    chosen = list(configured.values())
    if picks is not None:
        chosen = []
        for item in picks.items():
            schema, name = _qualified(item)
            if any((t.schema, t.table) == (schema, name) for t, _ in chosen):
                raise item.error(f"{display_qualified(schema, name)} is named twice")
            default = TableConfig(display_qualified(schema, name), schema, name)
            chosen.append(configured.get((schema, name), (default, item)))
    where = picks if picks is not None else node
    if not chosen:
        problem = "no tables" if where.present else "missing"
        raise where.error(f"{problem}; list at least one schema.table to replicate")
    seen: dict[str, TableConfig] = {}
    for table, item in chosen:
        other = seen.setdefault(table.iceberg_name.casefold(), table)
        if other is not table:
            raise item.child("iceberg").child("name").error(
                f"{other.name} and {table.name} both map to Iceberg table"
                f" {namespace}.{table.iceberg_name}; give one of them another iceberg.name"
            )
    return tuple(table for table, _ in chosen)


def _table(item: Node) -> TableConfig:
    """One entry of ``tables``: a mapping, or just its ``schema.table`` name as text."""
    name_node = item
    if not isinstance(item.value, str):
        item.mapping(("name", "primary_key", "iceberg"))
        name_node = item.child("name")
    schema, table = _qualified(name_node)
    primary_key = None
    key_node = item.child("primary_key")
    if key_node.present:
        primary_key = tuple(_column(column) for column in key_node.items())
        if not primary_key:
            raise key_node.error("must not be empty; leave it out to use the table's primary key")
        if len(set(primary_key)) != len(primary_key):
            raise key_node.error("names a column twice")
    iceberg = item.child("iceberg")
    iceberg.mapping(("name", "partition"))
    partition: list[str] = []
    for field_node in iceberg.child("partition").items():
        if not isinstance(field_node.value, str):
            got = kind(field_node.value)
            raise field_node.error(f"expected text like day(created_at), got {got}")
        try:
            text = str(parse_partition_field(field_node.value))
        except ValueError as exc:
            raise field_node.error(str(exc)) from None
        if text in partition:
            raise field_node.error(f"{text} is given twice")
        partition.append(text)
    return TableConfig(
        name=display_qualified(schema, table),
        schema=schema,
        table=table,
        primary_key=primary_key,
        iceberg_name=iceberg.child("name").text(table),
        partition=tuple(partition),
    )


def _qualified(node: Node) -> tuple[str, str]:
    try:
        return parse_qualified_name(node.text())
    except ValueError as exc:
        raise node.error(str(exc)) from None


def _column(node: Node) -> str:
    try:
        return parse_ident(node.text())
    except ValueError as exc:
        raise node.error(str(exc)) from None
