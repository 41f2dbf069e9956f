"""Stream files: staged changes of one table, as Parquet in ``stream.location``.

Each file holds whole transactions of one table in commit order. Columns: ``_op`` (int8,
see :class:`Op`), ``_unchanged`` (list of the column names pgoutput sent as unchanged
TOAST, else null), then the source columns as PostgreSQL text, named as the source named
them when the changes were decoded. Every name is unique (uuid), so a retry or a second
process can never overwrite a live file.

Each file also records, in its Parquet schema metadata (key ``pg2iceberg.relation``), the
relation it was decoded under: the columns pgoutput's Relation message listed (name, type
oid, type modifier, replica-identity flag) and the replica identity. A file never spans a
change of that relation, so the materializer converts every file under the types it was
written with, whatever the table looks like now.
"""

from __future__ import annotations

import enum
import json
import uuid
from dataclasses import dataclass
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

OP_COLUMN = "_op"
UNCHANGED_COLUMN = "_unchanged"
META_COLUMNS = (OP_COLUMN, UNCHANGED_COLUMN)
RELATION_METADATA_KEY = b"pg2iceberg.relation"


@dataclass(frozen=True, slots=True)
class SourceColumn:
    """One column as a Relation message describes it."""

    name: str
    type_oid: int
    type_mod: int
    is_key: bool


@dataclass(frozen=True, slots=True)
class StagedRelation:
    """The source relation a stream file was decoded under."""

    columns: tuple[SourceColumn, ...]
    replica_identity: str  # d default, f full, i index, n nothing

    def to_metadata(self) -> dict[bytes, bytes]:
        """The Parquet schema metadata that records this relation."""
        cols = [[c.name, c.type_oid, c.type_mod, c.is_key] for c in self.columns]
        doc = {"columns": cols, "replica_identity": self.replica_identity}
        return {RELATION_METADATA_KEY: json.dumps(doc).encode()}

    @staticmethod
    def from_schema(schema: pa.Schema) -> "StagedRelation | None":
        """The relation recorded in a stream file's schema; None for a file without one."""
        raw = (schema.metadata or {}).get(RELATION_METADATA_KEY)
        if raw is None:
            return None
        doc = json.loads(raw)
        return StagedRelation(tuple(SourceColumn(str(n), int(o), int(m), bool(k))
                                    for n, o, m, k in doc["columns"]), str(doc["replica_identity"]))


class Op(enum.IntEnum):
    """Kinds of staged change."""

    INSERT = 1
    UPDATE = 2
    DELETE = 3
    TRUNCATE = 4
    MOVE = 5  # the old key of an UPDATE that changed the key (a delete); its new image follows


class StreamStore:
    """Reads and writes stream files under one location (``file://``, path or ``s3://``)."""

    def __init__(self, location: str, *, s3_options: dict[str, str] | None = None):
        self.location = location.rstrip("/")
        parsed = urlparse(self.location)
        if parsed.scheme == "s3":
            opts = s3_options or {}
            self.fs: pafs.FileSystem = pafs.S3FileSystem(
                endpoint_override=opts.get("endpoint"), access_key=opts.get("access_key"),
                secret_key=opts.get("secret_key"), region=opts.get("region") or "us-east-1",
                scheme=urlparse(opts["endpoint"]).scheme if opts.get("endpoint") else "https",
            )
            self.root = f"{parsed.netloc}{parsed.path}"
        else:
            self.fs = pafs.LocalFileSystem()
            self.root = parsed.path if parsed.scheme == "file" else self.location
            self.fs.create_dir(self.root, recursive=True)

    def new_path(self, table_dir: str, first_lsn: int) -> str:
        """A fresh, never-reused path for a file of ``table_dir``."""
        return f"{self.root}/{table_dir}/{first_lsn:016X}-{uuid.uuid4().hex}.parquet"

    def write(self, path: str, data: pa.Table) -> int:
        """Write ``data`` durably at ``path``; returns the file's size in bytes."""
        parent = path.rsplit("/", 1)[0]
        self.fs.create_dir(parent, recursive=True)
        with self.fs.open_output_stream(path) as out:
            pq.write_table(data, out, compression="zstd")
        if isinstance(self.fs, pafs.LocalFileSystem):
            import os

            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        return int(self.fs.get_file_info(path).size)

    def read(self, path: str) -> pa.Table:
        """Read a stream file."""
        with self.fs.open_input_file(path) as f:
            return pq.read_table(f)

    def read_schema(self, path: str) -> pa.Schema:
        """A stream file's schema (with its relation metadata), from the footer only."""
        with self.fs.open_input_file(path) as f:
            return pq.read_schema(f)

    def delete(self, path: str) -> None:
        """Remove a stream file (missing is fine)."""
        try:
            self.fs.delete_file(path)
        except FileNotFoundError:
            pass


def table_dir_name(table_name: str) -> str:
    """A folder name for a table's stream files (safe for any object store)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in table_name)
    return f"{safe}-{uuid.uuid5(uuid.NAMESPACE_URL, table_name).hex[:8]}"
