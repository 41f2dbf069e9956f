"""Table maintenance with any catalog: snapshot expiry, then orphan-file removal.

Contracts:
- Expiry removes snapshots older than ``maintenance_retention`` through an ordinary
  metadata commit (pyiceberg's ``ExpireSnapshots``, which every catalog accepts). The current
  snapshot and every branch or tag head are always kept; the current snapshot carries the
  position the pipeline resumes from, so nothing the pipeline needs is expired.
- A file under the table's data or metadata folder is deleted only when (a) nothing
  references it: not the current metadata file, not a metadata-log entry, not a statistics
  file, not a remaining snapshot's manifest list or manifest, and no data or delete file
  that is live in a remaining snapshot (a file a snapshot marks deleted is still live in
  its parent while that is kept; once the parent expired nobody can read it); (b) no in-flight initial copy holds it (the coordinator's ``snapshots.files``);
  (c) it is older than ``maintenance_grace`` by its storage modification time. (c) protects
  every in-flight commit: what a writer has written but not yet committed is young. Old
  metadata files that fell out of the metadata log are removed by the same rule.
- References are computed after the expiry commit from freshly loaded metadata; files are
  listed with ``pyarrow.fs`` (FileIO cannot list), local or S3, with the table's own FileIO
  settings. Stream files must live outside the table's folders: if ``stream.location`` lies
  inside them, orphan removal refuses to run for that table.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from urllib.parse import urlparse

import pyarrow.fs as pafs
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.table import Table

from pg2iceberg.errors import TerminalError, TransientError
from pg2iceberg.stream.coordinator import Coordinator

_OBJECT_STORES = ("s3", "s3a", "s3n")


@dataclass(frozen=True, slots=True)
class MaintenanceSettings:
    """Retention of snapshots and the grace period of unreferenced files (seconds)."""

    retention_s: float
    grace_s: float


@dataclass(frozen=True, slots=True)
class MaintenanceResult:
    """What one maintenance cycle did to one table."""

    snapshots_expired: int
    snapshots_kept: int
    files_listed: int
    files_referenced: int
    files_removed: int
    bytes_removed: int
    metadata_files_removed: int
    young_files_kept: int
    duration_s: float

    def as_dict(self) -> dict[str, object]:
        """The fields for events and command details."""
        return asdict(self)


def normalize(uri: str) -> str:
    """A location as a filesystem path: ``bucket/key`` for object stores, the path for files."""
    parsed = urlparse(uri)
    if parsed.scheme in _OBJECT_STORES:
        return f"{parsed.netloc}{parsed.path}"
    if parsed.scheme in ("file", ""):
        return parsed.path if parsed.scheme else uri
    return f"{parsed.netloc}{parsed.path}"


def filesystem_for(location: str, props: dict[str, str]) -> pafs.FileSystem:
    """A pyarrow filesystem for ``location`` with the FileIO's S3 settings."""
    scheme = urlparse(location).scheme
    if scheme in ("file", ""):
        return pafs.LocalFileSystem()
    if scheme in _OBJECT_STORES:
        endpoint = props.get("s3.endpoint") or None
        return pafs.S3FileSystem(
            endpoint_override=endpoint, access_key=props.get("s3.access-key-id"),
            secret_key=props.get("s3.secret-access-key"), session_token=props.get("s3.session-token"),
            region=props.get("s3.region") or props.get("client.region") or "us-east-1",
            scheme=urlparse(endpoint).scheme if endpoint else "https")
    return pafs.FileSystem.from_uri(location)[0]


def in_flight_files(coordinator: Coordinator) -> set[str]:
    """Data files written by initial copies that are still running (not yet committed)."""
    rows = coordinator.conn.execute(
        f"SELECT files FROM {coordinator.s}.snapshots WHERE state = 'running'").fetchall()
    return {normalize(path) for (files,) in rows for path in (files or [])}


def table_folders(table: Table) -> list[str]:
    """The data and metadata folders of a table (``write.*.path`` honoured)."""
    location = table.metadata.location.rstrip("/")
    props = table.metadata.properties
    return [props.get("write.data.path", f"{location}/data").rstrip("/"),
            props.get("write.metadata.path", f"{location}/metadata").rstrip("/")]


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def check_stream_outside(table: Table, stream_location: str | None) -> None:
    """Refuse when the stream location lies inside the table's folders (or contains them)."""
    if not stream_location:
        return
    stream = f"{urlparse(stream_location).scheme or 'file'}:{normalize(stream_location).rstrip('/')}"
    for folder in [table.metadata.location.rstrip("/"), *table_folders(table)]:
        where = f"{urlparse(folder).scheme or 'file'}:{normalize(folder)}"
        if _inside(stream, where) or _inside(where, stream):
            raise TerminalError(
                f"stream.location {stream_location} overlaps the Iceberg table folder {folder}: orphan-file "
                "removal could delete staged changes. Move stream.location outside the warehouse tables.")


def expire_snapshots(table: Table, retention_s: float, now: float, attempts: int = 3) -> int:
    """Expire snapshots older than ``retention_s`` (never the current one or a ref head)."""
    for _ in range(attempts):
        table.refresh()
        cutoff_ms = (now - retention_s) * 1000
        keep = {ref.snapshot_id for ref in table.metadata.refs.values()}
        current = table.current_snapshot()
        if current is not None:
            keep.add(current.snapshot_id)
        ids = [s.snapshot_id for s in table.metadata.snapshots
               if s.timestamp_ms < cutoff_ms and s.snapshot_id not in keep]
        if not ids:
            return 0
        try:
            table.maintenance.expire_snapshots().by_ids(ids).commit()
        except CommitFailedException:
            continue
        return len(ids)
    raise TransientError(f"{table.name()}: snapshot expiry lost {attempts} commit races in a row; try again")


def referenced_files(table: Table) -> set[str]:
    """Every file the table's metadata references, normalized (see module docstring)."""
    meta = table.metadata
    refs = {table.metadata_location, *(e.metadata_file for e in meta.metadata_log)}
    refs.update(s.statistics_path for s in meta.statistics)
    refs.update(s.statistics_path for s in meta.partition_statistics)
    seen: set[str] = set()
    for snapshot in meta.snapshots:
        refs.add(snapshot.manifest_list)
        for manifest in snapshot.manifests(table.io):
            if manifest.manifest_path in seen:
                continue
            seen.add(manifest.manifest_path)
            for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True):
                refs.add(entry.data_file.file_path)
    refs |= seen
    return {normalize(r) for r in refs}


def remove_orphans(table: Table, grace_s: float, now: float, *,
                   protected: frozenset[str] | set[str] = frozenset(),
                   stream_location: str | None = None) -> tuple[int, int, int, int, int, int]:
    """Delete unreferenced old files; (listed, referenced, removed, bytes, metadata removed, young kept)."""
    check_stream_outside(table, stream_location)
    table.refresh()
    referenced = referenced_files(table)
    fs = filesystem_for(table.metadata.location, dict(table.io.properties))
    listed = removed = removed_bytes = metadata_removed = young = 0
    for folder in table_folders(table):
        selector = pafs.FileSelector(normalize(folder), recursive=True, allow_not_found=True)
        for info in fs.get_file_info(selector):
            if info.type != pafs.FileType.File:
                continue
            listed += 1
            if info.path in referenced or info.path in protected:
                continue
            mtime = info.mtime.timestamp() if info.mtime is not None else now
            if now - mtime < grace_s:
                young += 1
                continue
            try:
                fs.delete_file(info.path)
            except FileNotFoundError:
                continue
            removed += 1
            removed_bytes += info.size or 0
            metadata_removed += info.path.endswith(".metadata.json")
    return listed, len(referenced), removed, removed_bytes, metadata_removed, young


def maintain_table(table: Table, settings: MaintenanceSettings, *,
                   protected: frozenset[str] | set[str] = frozenset(),
                   stream_location: str | None = None, now: float | None = None) -> MaintenanceResult:
    """Expire old snapshots, then remove orphan files, for one table."""
    started = time.monotonic()
    now = time.time() if now is None else now
    check_stream_outside(table, stream_location)  # before changing anything
    expired = expire_snapshots(table, settings.retention_s, now)
    listed, referenced, removed, removed_bytes, metadata_removed, young = remove_orphans(
        table, settings.grace_s, now, protected=protected, stream_location=stream_location)
    return MaintenanceResult(
        snapshots_expired=expired, snapshots_kept=len(table.metadata.snapshots), files_listed=listed,
        files_referenced=referenced, files_removed=removed, bytes_removed=removed_bytes,
        metadata_files_removed=metadata_removed, young_files_kept=young,
        duration_s=round(time.monotonic() - started, 3))

