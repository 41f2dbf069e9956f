"""The configuration model: immutable, typed, and safe to print.

Frozen dataclasses, tuples and read-only mappings. Durations are float seconds (``*_s``),
sizes int bytes (``*_bytes``). Secrets (passwords, S3 keys, secret-looking catalog
properties, a password in the catalog URI) never appear in a repr or str. Import these
names from :mod:`pg2iceberg.config`, which also loads them.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from types import MappingProxyType

from pg2iceberg.errors import ConfigError
from pg2iceberg.secrets import is_secret_key, redact_dsn
from pg2iceberg.sqlident import display_ident, parse_ident, parse_qualified_name, quote_ident

# SinkConfig fields whose YAML key differs (the unit suffix); the others share their name.
SINK_FIELD_KEYS: Mapping[str, str] = MappingProxyType({
    "flush_interval_s": "flush_interval", "materializer_interval_s": "materializer_interval",
    "target_file_size_bytes": "target_file_size", "maintenance_interval_s": "maintenance_interval",
    "maintenance_retention_s": "maintenance_retention", "maintenance_grace_s": "maintenance_grace",
})  # fmt: skip
# Key paths a running pipeline applies at once; every other change needs a restart.
HOT_KEYS = frozenset(
    "sink." + key
    for key in (
        "flush_interval", "flush_rows", "flush_bytes", "materializer_interval", "target_file_size",
        "data_file_threshold", "delete_file_threshold", "maintenance_interval",
        "maintenance_retention", "maintenance_grace",
    )
)  # fmt: skip
_TABLE_FIELD_KEYS = (
    ("primary_key", "primary_key"),
    ("iceberg_name", "iceberg.name"),
    ("partition", "iceberg.partition"),
)
_TRANSFORM_CALL = re.compile(r"\s*([A-Za-z_]+)\s*(?:\[\s*([^\]]*?)\s*\])?\s*\((.*)\)\s*", re.S)
_TRANSFORMS = ("identity", "year", "month", "day", "hour", "bucket", "truncate")
_MiB = 1024 * 1024


@dataclass(frozen=True, slots=True, repr=False)
class PostgresConfig:
    """How to reach one PostgreSQL database; ``dsn`` holds the password, so only connect with it."""

    dsn: str

    @property
    def redacted(self) -> str:
        """The connection string with its password replaced by ``***``."""
        return redact_dsn(self.dsn)

    def __repr__(self) -> str:
        return f"PostgresConfig({self.redacted!r})"

    def __str__(self) -> str:
        return self.redacted


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """The source database and its logical replication objects."""

    postgres: PostgresConfig
    publication_name: str = "pg2iceberg_pub"
    slot_name: str = "pg2iceberg_slot"


@dataclass(frozen=True, slots=True, repr=False)
class SinkConfig:
    """The Iceberg catalog, the warehouse, and the flush, compaction and maintenance knobs."""

    catalog_type: str
    catalog_uri: str | None
    catalog_props: Mapping[str, str]
    warehouse: str
    namespace: str = "pg2iceberg"
    s3_endpoint: str | None = None
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_region: str | None = None
    flush_interval_s: float = 10.0
    flush_rows: int = 10_000
    flush_bytes: int = 64 * _MiB
    materializer_interval_s: float = 10.0
    materializer_chunk_rows: int = 200_000
    target_file_size_bytes: int = 128 * _MiB
    data_file_threshold: int = 20
    delete_file_threshold: int = 10
    maintenance_interval_s: float = 3600.0
    maintenance_retention_s: float = 168 * 3600.0
    maintenance_grace_s: float = 1800.0

    def __repr__(self) -> str:
        shown = []
        for field in fields(self):
            value = getattr(self, field.name)
            if field.name in ("s3_access_key", "s3_secret_key") and value is not None:
                value = "***"
            elif field.name == "catalog_uri" and value is not None:
                value = redact_dsn(value)
            elif field.name == "catalog_props":
                value = {k: "***" if is_secret_key(k) else v for k, v in value.items()}
            shown.append(f"{field.name}={value!r}")
        return f"SinkConfig({', '.join(shown)})"


@dataclass(frozen=True, slots=True)
class StreamConfig:
    """Where staged change files go (a ``file://`` or object-store URI)."""

    location: str


@dataclass(frozen=True, slots=True)
class StateConfig:
    """The database holding the coordinator and checkpoint tables."""

    postgres: PostgresConfig
    coordinator_schema: str = "_pg2iceberg"


@dataclass(frozen=True, slots=True)
class PartitionField:
    """One Iceberg partition field: a transform of one source column."""

    transform: str  # identity, year, month, day, hour, bucket, truncate
    column: str  # raw column name
    width: int | None = None  # N of bucket[N], W of truncate[W]

    def __str__(self) -> str:
        column = display_ident(self.column)
        if self.transform == "identity":
            return column
        width = "" if self.width is None else f"[{self.width}]"
        return f"{self.transform}{width}({column})"


def parse_partition_field(text: str) -> PartitionField:
    """Parse ``col``, ``day(col)``, ``bucket[16](col)``, ``truncate[4](col)`` and the like.

    Raises:
        ValueError: unknown transform, missing or bad width, or a bad column name.
    """
    if not text.strip():
        raise ValueError("a partition field cannot be empty")
    match = None if text.lstrip().startswith('"') else _TRANSFORM_CALL.fullmatch(text)
    if match is None:
        return PartitionField("identity", parse_ident(text))
    name, width, inner = match.group(1).lower(), match.group(2), match.group(3)
    if name not in _TRANSFORMS:
        raise ValueError(
            f"unknown transform {match.group(1)!r}; use col, year(col), month(col), day(col),"
            " hour(col), bucket[N](col) or truncate[W](col)"
        )
    column = parse_ident(inner)
    if name in ("bucket", "truncate"):
        if width is None or not (width.isascii() and width.isdigit()) or int(width) < 1:
            example = f"{name}[16]({inner.strip()})"
            raise ValueError(f"{name} needs a positive whole number, e.g. {example}")
        return PartitionField(name, column, int(width))
    if width is not None:
        raise ValueError(f"{name} takes no [...] argument: write {name}({inner.strip()})")
    return PartitionField(name, column)


@dataclass(frozen=True, slots=True)
class TableConfig:
    """One replicated table: its source identity and its Iceberg shape."""

    name: str  # display form: schema.table, quoted only where needed
    schema: str  # raw identifier
    table: str  # raw identifier
    primary_key: tuple[str, ...] | None = None  # raw column names; None: the table's own key
    iceberg_name: str = ""  # the Iceberg table within sink.namespace; "" means the table name
    partition: tuple[str, ...] = ()  # canonical partition field texts

    def __post_init__(self) -> None:
        if not self.iceberg_name:
            object.__setattr__(self, "iceberg_name", self.table)

    @property
    def qualified_sql(self) -> str:
        """``"schema"."table"`` quoted for SQL."""
        return f"{quote_ident(self.schema)}.{quote_ident(self.table)}"

    @property
    def partition_fields(self) -> tuple[PartitionField, ...]:
        """The partition fields, parsed."""
        return tuple(parse_partition_field(text) for text in self.partition)


@dataclass(frozen=True, slots=True)
class Config:
    """The whole, validated configuration."""

    source: SourceConfig
    sink: SinkConfig
    stream: StreamConfig
    state: StateConfig
    tables: tuple[TableConfig, ...]
    path: Path | None = None
    materializer_worker_id: str | None = None

    def table(self, name: str) -> TableConfig:
        """The configured table named ``name`` (``schema.table``, any valid spelling).

        Raises:
            ConfigError: the name is malformed or not configured.
        """
        try:
            key = parse_qualified_name(name)
        except ValueError as exc:
            raise ConfigError(f"table {name!r}: {exc}") from None
        for table in self.tables:
            if (table.schema, table.table) == key:
                return table
        known = ", ".join(t.name for t in self.tables)
        raise ConfigError(f"table {name!r}: not a configured table (configured: {known})")


@dataclass(frozen=True, slots=True)
class ConfigDiff:
    """Changed key paths between two configs: applied at once (hot) or needing a restart."""

    hot: tuple[str, ...] = ()
    restart: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        """Whether nothing changed."""
        return not self.hot and not self.restart


def diff_config(old: Config, new: Config) -> ConfigDiff:
    """List the key paths whose values differ: hot ones (:data:`HOT_KEYS`) and restart-only ones."""
    was, now = old.source, new.source
    pairs: list[tuple[str, object, object]] = [
        ("source.postgres", was.postgres, now.postgres),
        ("source.logical.publication_name", was.publication_name, now.publication_name),
        ("source.logical.slot_name", was.slot_name, now.slot_name),
    ]
    for field in fields(SinkConfig):
        key = "sink." + SINK_FIELD_KEYS.get(field.name, field.name)
        pairs.append((key, getattr(old.sink, field.name), getattr(new.sink, field.name)))
    pairs += [
        ("stream.location", old.stream.location, new.stream.location),
        ("state.postgres_url", old.state.postgres, new.state.postgres),
        ("state.coordinator_schema", old.state.coordinator_schema, new.state.coordinator_schema),
        ("materializer_worker_id", old.materializer_worker_id, new.materializer_worker_id),
    ]
    hot = [key for key, before, after in pairs if before != after and key in HOT_KEYS]
    restart = [key for key, before, after in pairs if before != after and key not in HOT_KEYS]
    old_tables = {(t.schema, t.table): t for t in old.tables}
    new_tables = {(t.schema, t.table): t for t in new.tables}
    if old_tables.keys() != new_tables.keys():
        restart.append("tables")
    for key, after in new_tables.items():
        before = old_tables.get(key)
        for attr, path in _TABLE_FIELD_KEYS:
            if before is not None and getattr(before, attr) != getattr(after, attr):
                restart.append(f"tables[{after.name}].{path}")
    return ConfigDiff(tuple(hot), tuple(restart))
