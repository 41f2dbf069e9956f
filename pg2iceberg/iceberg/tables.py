"""Iceberg side of one replicated table: catalog, schema, Arrow conversion, positions.

The position contract: every snapshot pg2iceberg commits carries in its summary
``pg2iceberg.lsn`` (the source position the table is complete up to, PostgreSQL text form)
and ``pg2iceberg.system-id`` (the source's system identifier). After a crash, the position
read back from the table's current snapshot is the truth: stream data at or before it is
already in the table and is never applied again.

Schema changes (see :mod:`pg2iceberg.iceberg.evolution`) are staged with
:meth:`IcebergTarget.begin_change`: until the next :meth:`IcebergTarget.commit_files`, the
target converts, conforms and writes data under the staged schema, and that commit carries
the schema change, the data and the position together. Data files are read back by field id,
so a dropped column's old data never reappears under a re-added column of the same name.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping

import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg.catalog import Catalog, load_catalog
from pyiceberg.exceptions import CommitFailedException, NamespaceAlreadyExistsError, NoSuchTableError
from pyiceberg.io.pyarrow import _dataframe_to_data_files, schema_to_pyarrow
from pyiceberg.manifest import DataFile, DataFileContent
from pyiceberg.partitioning import UNPARTITIONED_PARTITION_SPEC, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table, Transaction
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.table.snapshots import Snapshot
from pyiceberg.types import ListType, NestedField

from pg2iceberg.config import Config
from pg2iceberg.errors import TerminalError
from pg2iceberg.iceberg.evolution import SOURCE_TYPES_PROPERTY, encode_source_types
from pg2iceberg.iceberg.typemap import (
    CHECK_PREFIX, ColumnType, column_type, convert_column, refuse_flagged, snapshot_converter, text_converter,
)
from pg2iceberg.lsn import format_lsn, parse_lsn
from pg2iceberg.source.schema import TableInfo

LSN_PROPERTY = "pg2iceberg.lsn"
SYSTEM_ID_PROPERTY = "pg2iceberg.system-id"
SNAPSHOT_PROPERTY = "pg2iceberg.snapshot"  # "anchored" or "unanchored" on initial copies

RETRIES_PROPERTY = "commit.retry.num-retries"
CATALOG_NAME = "default"  # pyiceberg's default name; SQL catalogs scope tables by it

TABLE_PROPERTIES = {
    "format-version": "2",
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "20",
    "write.parquet.compression-codec": "zstd",
    # pyiceberg would otherwise retry a commit that lost a race by re-applying it on the newer
    # snapshot (fast appends without any check): a stale materializer would then apply a batch
    # twice. Our commits are derived from the snapshot they start from, so a lost race must fail.
    RETRIES_PROPERTY: "0",
}


def open_catalog(config: Config) -> Catalog:
    """Load the configured pyiceberg catalog (any type) and make sure the namespace exists."""
    sink = config.sink
    props: dict[str, str] = {"type": sink.catalog_type, "warehouse": sink.warehouse}
    if sink.catalog_uri:
        props["uri"] = sink.catalog_uri
    if sink.s3_endpoint:
        props["s3.endpoint"] = sink.s3_endpoint
    if sink.s3_access_key:
        props["s3.access-key-id"] = sink.s3_access_key
    if sink.s3_secret_key:
        props["s3.secret-access-key"] = sink.s3_secret_key
    if sink.s3_region:
        props["s3.region"] = sink.s3_region
    props.update({k: str(v) for k, v in sink.catalog_props.items()})
    catalog = load_catalog(CATALOG_NAME, **props)
    try:
        catalog.create_namespace(sink.namespace)
    except NamespaceAlreadyExistsError:
        pass
    return catalog


def build_schema(info: TableInfo, columns: Iterable[ColumnType], existing: Schema | None = None) -> Schema:
    """An Iceberg schema for the source table, reusing field ids of ``existing`` by name."""
    next_id = itertools.count((existing.highest_field_id if existing else 0) + 1)
    fields: list[NestedField] = []
    key_ids: list[int] = []
    for ctype in columns:
        col = ctype.column
        old = existing.find_field(col.name) if existing and col.name in existing._name_to_id else None
        itype = ctype.iceberg_type
        if isinstance(itype, ListType):
            element_id = (old.field_type.element_id if old is not None and isinstance(old.field_type, ListType)
                          else -1)
            field_id = old.field_id if old is not None else next(next_id)
            element_id = element_id if element_id > 0 else next(next_id)
            itype = ListType(element_id=element_id, element_type=itype.element_type, element_required=False)
        else:
            field_id = old.field_id if old is not None else next(next_id)
        is_key = col.name in info.primary_key
        fields.append(NestedField(field_id, col.name, itype, required=is_key))
        if is_key:
            key_ids.append(field_id)
    return Schema(*fields, identifier_field_ids=key_ids)


@dataclass
class IcebergTarget:
    """A source table bound to its Iceberg table, with converters for both value paths."""

    info: TableInfo
    table: Table
    column_types: tuple[ColumnType, ...]
    created: bool = False  # bind_table created the Iceberg table (it was missing)
    _txn: Transaction | None = field(default=None, repr=False)

    @property
    def key_columns(self) -> tuple[str, ...]:
        """The primary-key column names."""
        return self.info.primary_key

    def metadata(self) -> TableMetadata:
        """The table's metadata, including a staged (not yet committed) schema change."""
        return self._txn.table_metadata if self._txn is not None else self.table.metadata

    def schema(self) -> Schema:
        """The current Iceberg schema, or the staged one during a schema change."""
        return self.metadata().schema()

    def arrow_schema(self) -> pa.Schema:
        """The Arrow schema data files of this table are written with."""
        return schema_to_pyarrow(self.schema(), include_field_ids=False)

    def begin_change(self, stage: Callable[[Transaction], None]) -> None:
        """Stage schema/property updates; the next :meth:`commit_files` commits them with its data."""
        txn = self.table.transaction()
        stage(txn)
        self._txn = txn

    def abandon_change(self) -> None:
        """Forget a staged change (nothing of it was committed)."""
        self._txn = None

    def adopt(self, column_types: tuple[ColumnType, ...]) -> None:
        """Take the source columns a committed schema change brought (snapshot path, status)."""
        self.column_types = column_types
        columns = tuple(c.column for c in column_types)
        self.info = TableInfo(oid=self.info.oid, schema=self.info.schema, name=self.info.name,
                              columns=columns, primary_key=self.info.primary_key,
                              replica_identity=self.info.replica_identity, relkind=self.info.relkind)

    def _assemble(self, columns: Mapping[str, pa.Array], num_rows: int,
                  schema: pa.Schema | None = None) -> pa.Table:
        schema = schema or self.arrow_schema()
        arrays = []
        for field in schema:
            arr = columns.get(field.name)
            if isinstance(arr, pa.ChunkedArray):
                arr = arr.combine_chunks()
            if arr is None:
                arr = pa.nulls(num_rows, field.type)
            elif isinstance(field.type, pa.ExtensionType) and arr.type != field.type:
                arr = pa.ExtensionArray.from_storage(field.type, arr.cast(field.type.storage_type))
            elif arr.type != field.type:
                arr = arr.cast(field.type)
            arrays.append(arr)
        return pa.Table.from_arrays(arrays, schema=schema)

    def check_columns(self, names: Iterable[str], where: str) -> None:
        """Refuse staged columns the Iceberg table does not have (a source schema change)."""
        known = set(self.schema().column_names)
        unknown = [n for n in names if n not in known]
        if unknown:
            raise TerminalError(
                f"{self.info.display_name}: staged changes in {where} have column(s) {unknown} "
                "that the Iceberg table lacks: the source schema changed. Re-snapshot this table.")

    def conform(self, data: pa.Table) -> pa.Table:
        """Bring a table read back from a data file to the current schema (by field id, else name)."""
        names = {f.field_id: f.name for f in self.schema().fields}
        columns = {}
        for fld, column in zip(data.schema, data.columns):
            raw_id = (fld.metadata or {}).get(b"PARQUET:field_id")
            name = names.get(int(raw_id)) if raw_id is not None else fld.name
            if name is not None:
                columns[name] = column
        return self._assemble(columns, data.num_rows)

    def from_snapshot(self, batch: pa.RecordBatch) -> pa.Table:
        """Convert a batch read by the snapshot reader into this table's Arrow schema,
        refusing the values its check columns flag (see ``ColumnType.check_sql``)."""
        names = set(batch.schema.names)
        schema = self.arrow_schema()
        for ctype in self.column_types:
            if ctype.check_name in names and ctype.column.name in schema.names:
                where = f"{self.info.display_name}.{ctype.column.name} ({ctype.column.type_display})"
                refuse_flagged(ctype, batch.column(ctype.check_name), schema.field(ctype.column.name).type, where)
        columns = {name: batch.column(name) for name in names if not name.startswith(CHECK_PREFIX)}
        return self._convert(columns, batch.num_rows, snapshot_converter)

    def from_text(self, columns: Mapping[str, pa.Array], num_rows: int,
                  column_types: tuple[ColumnType, ...] | None = None) -> pa.Table:
        """Convert string columns of pgoutput text values into this table's Arrow schema.

        ``column_types`` are the source types the text was written under (a stream file's
        relation); each value is parsed as that type, then widened to the table's type.
        """
        return self._convert(columns, num_rows, lambda ctype, t: text_converter(ctype.iceberg_type, t),
                             column_types)

    def _convert(self, columns: Mapping[str, pa.Array], num_rows: int,
                 converter: Callable[[ColumnType, pa.DataType], Callable[[pa.Array], pa.Array]],
                 column_types: tuple[ColumnType, ...] | None = None) -> pa.Table:
        """Run each column's converter (into its storage type) and assemble the table."""
        schema = self.arrow_schema()
        out = {}
        for ctype in column_types if column_types is not None else self.column_types:
            name = ctype.column.name
            if name not in columns or name not in schema.names:
                continue
            target = schema.field(name).type
            if column_types is not None:
                target = schema_to_pyarrow(ctype.iceberg_type, include_field_ids=False)
            storage = target.storage_type if isinstance(target, pa.ExtensionType) else target
            where = f"{self.info.display_name}.{name} ({ctype.column.type_display})"
            out[name] = convert_column(converter(ctype, storage), columns[name], where)
        return self._assemble(out, num_rows, schema)

    def write_data_files(self, data: pa.Table) -> list[DataFile]:
        """Write ``data`` as new, uniquely named data files (not yet committed)."""
        if data.num_rows == 0:
            return []
        return list(_dataframe_to_data_files(self.metadata(), data, self.table.io,
                                             write_uuid=uuid.uuid4()))

    def read_file(self, f: DataFile, columns: list[str] | None = None) -> pa.Table:
        """One data file as written (not conformed to the current schema), or some columns of it."""
        with self.table.io.new_input(f.file_path).open() as stream:
            return pq.read_table(stream, columns=columns)

    def data_files(self) -> list[DataFile]:
        """Every live data file of the current snapshot, read from the manifests."""
        snap = self.table.current_snapshot()
        if snap is None:
            return []
        files = []
        for manifest in snap.manifests(self.table.io):
            for entry in manifest.fetch_manifest_entry(self.table.io, discard_deleted=True):
                if entry.data_file.content == DataFileContent.DATA:
                    files.append(entry.data_file)
        return files

    def position(self) -> int | None:
        """The source LSN this table is complete up to, from its current snapshot."""
        return read_position(self.table)

    def commit_files(self, *, delete: Iterable[DataFile], add: Iterable[DataFile],
                     lsn: int, system_id: str, extra: Mapping[str, str] | None = None) -> None:
        """One Iceberg commit (one snapshot): drop ``delete``, add ``add``, record the position."""
        props = {LSN_PROPERTY: format_lsn(lsn) or "", SYSTEM_ID_PROPERTY: system_id, **(extra or {})}
        delete, add = list(delete), list(add)
        txn, self._txn = self._txn or self.table.transaction(), None
        with txn:
            if delete:
                with txn.update_snapshot(snapshot_properties=props).overwrite() as op:
                    for f in delete:
                        op.delete_data_file(f)
                    for f in add:
                        op.append_data_file(f)
            else:
                with txn.update_snapshot(snapshot_properties=props).fast_append() as op:
                    for f in add:
                        op.append_data_file(f)


def snapshot_position(snap: Snapshot | None) -> int | None:
    """The ``pg2iceberg.lsn`` a snapshot records, or None."""
    if snap is None or snap.summary is None:
        return None
    value = snap.summary.additional_properties.get(LSN_PROPERTY)
    return parse_lsn(value) if value else None


def read_position(table: Table) -> int | None:
    """The ``pg2iceberg.lsn`` of the table's current snapshot, or None."""
    return snapshot_position(table.current_snapshot())


def snapshot_property(table: Table, key: str) -> str | None:
    """A summary property of the current snapshot."""
    snap = table.current_snapshot()
    if snap is None or snap.summary is None:
        return None
    return snap.summary.additional_properties.get(key)


def bind_table(catalog: Catalog, namespace: str, iceberg_name: str, info: TableInfo,
               partition: tuple[str, ...] = ()) -> IcebergTarget:
    """Load the Iceberg table for ``info`` (creating it when missing) and bind converters."""
    from pg2iceberg.iceberg.partitioning import build_partition_spec

    ctypes = tuple(column_type(c) for c in info.columns if not c.generated)
    identifier = (namespace, iceberg_name)
    created = False
    try:
        table = catalog.load_table(identifier)
    except NoSuchTableError:
        schema = build_schema(info, ctypes)
        spec: PartitionSpec = (build_partition_spec(schema, partition) if partition
                               else UNPARTITIONED_PARTITION_SPEC)
        types = encode_source_types([(c.column.name, c.column.type_oid, c.column.typmod) for c in ctypes])
        table = catalog.create_table(identifier, schema=schema, partition_spec=spec,
                                     properties={**TABLE_PROPERTIES, SOURCE_TYPES_PROPERTY: types})
        created = True
    return IcebergTarget(info=info, table=_without_commit_retries(catalog, identifier, table),
                         column_types=ctypes, created=created)


def _without_commit_retries(catalog: Catalog, identifier: tuple[str, str], table: Table) -> Table:
    """``table`` with pyiceberg's commit retries off (tables made by an older version lack it)."""
    for _ in range(10):
        if table.properties.get(RETRIES_PROPERTY) == "0":
            return table
        try:
            with table.transaction() as txn:
                txn.set_properties({RETRIES_PROPERTY: "0"})
        except CommitFailedException:  # another process committed meanwhile: look again
            table = catalog.load_table(identifier)
    raise TerminalError(f"{'.'.join(identifier)}: could not set {RETRIES_PROPERTY}=0 "
                        "(too many concurrent commits); start again")
