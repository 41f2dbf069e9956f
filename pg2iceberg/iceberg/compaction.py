"""Compaction: rewrite a table's small data files into files near the target size.

Contracts:
- The partition spec is kept. Small files are grouped by (spec, partition) and bin-packed
  by size; each bin is read through pyiceberg's scan (field ids, schema evolution) and
  written through the table's current spec, so partitioned tables stay partitioned.
- ONE overwrite commit per table swaps the old files for the new ones. Its summary carries
  the current snapshot's ``pg2iceberg.lsn`` and ``pg2iceberg.system-id`` forward unchanged:
  compaction changes no rows, so the table stays complete up to the same source position.
- Nothing a concurrent materializer commits is lost: the rewrite holds the table's lease
  in the coordinator (the materializer skips a leased table), and the commit asserts that
  the snapshot it read is still the current one, with pyiceberg's rebase-and-retry turned
  off (a rebased compaction would carry an older position). On a conflict the written files
  are deleted and the plan is made again from the new snapshot.
- The rewritten rows are counted against the input files' record counts before committing;
  a mismatch aborts without a commit.
- Tables with delete files are not rewritten (pg2iceberg writes none; pyiceberg 0.12 cannot
  drop delete files in a commit): they are reported with the reason.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Callable

import pyarrow as pa
from pyiceberg.exceptions import CommitFailedException, ValidationException
from pyiceberg.expressions import AlwaysTrue
from pyiceberg.io.pyarrow import ArrowScan, _dataframe_to_data_files, schema_to_pyarrow
from pyiceberg.manifest import DataFile, DataFileContent
from pyiceberg.table import FileScanTask, Table

from pg2iceberg.errors import TerminalError, TransientError
from pg2iceberg.iceberg.tables import LSN_PROPERTY, SYSTEM_ID_PROPERTY
from pg2iceberg.lsn import parse_lsn
from pg2iceberg.stream.leases import Leases, holder_id

COMPACTED_PROPERTY = "pg2iceberg.compacted-files"
_LOCAL_PROPERTIES = {"commit.retry.num-retries": "0"}  # fail on conflict, never rebase


@dataclass(frozen=True, slots=True)
class CompactionSettings:
    """Thresholds and sizes (from ``sink``), plus lease timing."""

    target_file_size_bytes: int
    data_file_threshold: int
    delete_file_threshold: int
    small_fraction: float = 0.75  # a data file below this share of the target is small
    lease_wait_s: float = 30.0
    lease_ttl_s: float = 900.0
    attempts: int = 3


@dataclass(frozen=True, slots=True)
class CompactionResult:
    """What compaction found and did for one table."""

    skipped: bool
    reason: str
    data_files: int
    small_files: int
    delete_files: int
    files_rewritten: int = 0
    files_added: int = 0
    bytes_rewritten: int = 0
    bytes_added: int = 0
    rows: int = 0
    partitions: int = 0
    lsn: int | None = None
    attempts: int = 0
    duration_s: float = 0.0

    def as_dict(self) -> dict[str, object]:
        """The fields for events and command details."""
        return asdict(self)


def live_files(table: Table) -> tuple[list[DataFile], list[DataFile]]:
    """(data files, delete files) of the current snapshot, from its manifests."""
    snap = table.current_snapshot()
    data: list[DataFile] = []
    deletes: list[DataFile] = []
    if snap is None:
        return data, deletes
    for manifest in snap.manifests(table.io):
        for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True):
            (data if entry.data_file.content == DataFileContent.DATA else deletes).append(entry.data_file)
    return data, deletes


def plan_bins(files: list[DataFile], settings: CompactionSettings) -> list[list[DataFile]]:
    """Bins of small files of one (spec, partition) each, about a target size apiece; 2+ files each."""
    limit = settings.small_fraction * settings.target_file_size_bytes
    groups: dict[tuple, list[DataFile]] = defaultdict(list)
    for f in files:
        if f.file_size_in_bytes < limit:
            groups[(f.spec_id, f.partition)].append(f)
    bins: list[list[DataFile]] = []
    for group in groups.values():
        current: list[DataFile] = []
        size = 0
        for f in sorted(group, key=lambda d: (d.file_size_in_bytes, d.file_path)):
            if current and size + f.file_size_in_bytes > settings.target_file_size_bytes:
                bins.append(current)
                current, size = [], 0
            current.append(f)
            size += f.file_size_in_bytes
        bins.append(current)
    return [b for b in bins if len(b) >= 2]


def compact_table(name: str, table: Table, settings: CompactionSettings, leases: Leases) -> CompactionResult:
    """Compact one table if it is over a threshold; the table's lease is held meanwhile."""
    started = time.monotonic()
    table.refresh()
    result = _check(table, settings)
    if result is not None:
        return result
    holder = holder_id("compact")
    ttl_s = settings.lease_ttl_s
    with leases.held(name, holder, ttl_s, wait_s=settings.lease_wait_s, purpose="compact") as got:
        if not got:
            data, deletes = live_files(table)
            return _skip(f"busy: the table is leased by {leases.holder(name) or 'another worker'}", data,
                         settings, deletes)

        def renew() -> None:
            if not leases.acquire(name, holder, settings.lease_ttl_s, "compact"):
                raise TransientError(f"{name}: lost the compaction lease; try again")

        for attempt in range(1, settings.attempts + 1):
            table.refresh()
            result = _check(table, settings)
            if result is not None:
                return result
            try:
                done = _rewrite_and_commit(table, settings, renew)
            except CommitFailedException:
                continue
            return CompactionResult(**{**done.as_dict(), "attempts": attempt,
                                       "duration_s": round(time.monotonic() - started, 3)})
    raise TransientError(f"{name}: compaction lost {settings.attempts} commit races in a row; try again")


def _skip(reason: str, data: list[DataFile], settings: CompactionSettings,
          deletes: list[DataFile]) -> CompactionResult:
    return CompactionResult(skipped=True, reason=reason, data_files=len(data),
                            small_files=_small_count(data, settings),
                            delete_files=len(deletes))


def _small_count(data: list[DataFile], settings: CompactionSettings) -> int:
    limit = settings.small_fraction * settings.target_file_size_bytes
    return sum(1 for f in data if f.file_size_in_bytes < limit)


def _check(table: Table, settings: CompactionSettings) -> CompactionResult | None:
    """A skip result when the table needs (or allows) no compaction now, else None."""
    data, deletes = live_files(table)
    skip = _skip("", data, settings, deletes)
    if deletes:
        reason = (f"{len(deletes)} delete file(s): not rewritten (pg2iceberg writes none, and pyiceberg "
                  "cannot drop them); compact this table with an engine that handles delete files")
        return CompactionResult(**{**skip.as_dict(), "reason": reason})
    if skip.small_files < settings.data_file_threshold:
        reason = (f"below thresholds: {skip.small_files} small data file(s) < "
                  f"{settings.data_file_threshold}, "
                  f"0 delete file(s) < {settings.delete_file_threshold}")
        return CompactionResult(**{**skip.as_dict(), "reason": reason})
    if not plan_bins(data, settings):
        return CompactionResult(**{**skip.as_dict(), "reason": "no partition has two small data files"})
    return None


def _rewrite_and_commit(table: Table, settings: CompactionSettings,
                        renew: Callable[[], None]) -> CompactionResult:
    """Rewrite every bin and commit once; raises CommitFailedException on a concurrent commit."""
    data, deletes = live_files(table)
    bins = plan_bins(data, settings)
    snap = table.current_snapshot()
    assert snap is not None
    summary = snap.summary.additional_properties if snap.summary is not None else {}
    props = {k: summary[k] for k in (LSN_PROPERTY, SYSTEM_ID_PROPERTY) if k in summary}
    removed = [f for b in bins for f in b]
    props[COMPACTED_PROPERTY] = str(len(removed))
    local = _local_table(table)
    added: list[DataFile] = []
    rows = 0
    committing = False
    try:
        for b in bins:
            added.extend(_rewrite_bin(local, b))
            rows += sum(f.record_count for f in b)
            renew()
        written = sum(f.record_count for f in added)
        if written != rows:
            raise TerminalError(
                f"{table.name()}: compaction read {rows} rows but wrote {written}; nothing committed")
        committing = True
        with local.transaction() as txn:
            with txn.update_snapshot(snapshot_properties=props).overwrite() as op:
                for f in removed:
                    op.delete_data_file(f)
                for f in added:
                    op.append_data_file(f)
    except (CommitFailedException, ValidationException):
        _delete_quietly(table, added)  # the commit surely did not land
        raise
    except BaseException:
        if not committing:  # an unknown commit outcome keeps its files
            _delete_quietly(table, added)
        raise
    table.refresh()
    lsn_text = props.get(LSN_PROPERTY)
    return CompactionResult(
        skipped=False, reason="", data_files=len(data), small_files=_small_count(data, settings),
        delete_files=len(deletes), files_rewritten=len(removed), files_added=len(added),
        bytes_rewritten=sum(f.file_size_in_bytes for f in removed),
        bytes_added=sum(f.file_size_in_bytes for f in added),
        rows=rows, partitions=len({(f.spec_id, f.partition) for f in removed}),
        lsn=parse_lsn(lsn_text) if lsn_text else None)


def _delete_quietly(table: Table, files: list[DataFile]) -> None:
    for f in files:
        try:
            table.io.delete(f.file_path)
        except OSError:
            pass  # an orphan; maintenance removes it after the grace period


def _local_table(table: Table) -> Table:
    """A view of ``table`` whose commits fail on conflict instead of rebasing (not persisted)."""
    properties = {**table.metadata.properties, **_LOCAL_PROPERTIES}
    metadata = table.metadata.model_copy(update={"properties": properties})
    return Table(table.name(), metadata=metadata, metadata_location=table.metadata_location, io=table.io,
                 catalog=table.catalog)


def _rewrite_bin(table: Table, files: list[DataFile]) -> list[DataFile]:
    """Read ``files`` through the current schema and write them as new files of the current spec."""
    schema = table.schema()
    scan = ArrowScan(table.metadata, table.io, schema, AlwaysTrue())
    data = scan.to_table([FileScanTask(f) for f in files])
    data = data.cast(schema_to_pyarrow(schema, include_field_ids=False))
    data = _sorted(data, sorted(schema.identifier_field_names(), key=schema.column_names.index))
    one_file = {"write.target-file-size-bytes": str(4 * data.nbytes + (1 << 20))}  # one file per partition
    metadata = table.metadata.model_copy(update={"properties": {**table.metadata.properties, **one_file}})
    return list(_dataframe_to_data_files(metadata, data, table.io, write_uuid=uuid.uuid4()))


def _sorted(data: pa.Table, keys: list[str]) -> pa.Table:
    """Rows in key order (tight key bounds help the materializer pick files); as-is if unsortable."""
    if not keys:
        return data
    try:
        return data.sort_by([(k, "ascending") for k in keys])
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError):
        return data
