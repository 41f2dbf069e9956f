"""Fold a batch of staged changes into one final state per key (columnar, pyarrow).

Rules: the last image of a key wins; a PK change arrives as a delete of the old key before
the new image; a TRUNCATE drops every earlier change of the batch and empties the table
first. Unchanged TOASTed columns of an UPDATE are filled from the previous image of the same
key in the batch when there is one; the rest are left for the merge, which reads the old
row from the Iceberg file that holds it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from pg2iceberg.stream.files import Op

ORD = "_ord"
OP = "_op"
UNCHANGED = "_unchanged"


@dataclass(frozen=True, slots=True)
class Folded:
    """The net effect of a batch on a table."""

    upserts: pa.Table  # final images, table schema + _unchanged (list of column names or null)
    delete_keys: pa.Table  # key columns of keys whose last change is a delete
    truncate: bool  # empty the table before applying the rest
    # new key -> old key, for images whose key changed and whose unchanged TOASTed values must
    # come from the old key's row in Iceberg
    moved_from: dict[tuple, tuple] = field(default_factory=dict)

    @property
    def touched_keys(self) -> pa.Table:
        """Every key the batch changes (upserted or deleted)."""
        keys = self.delete_keys.column_names
        return pa.concat_tables([self.upserts.select(keys), self.delete_keys])


def storage_keys(table: pa.Table, keys: tuple[str, ...]) -> pa.Table:
    """Key columns with extension types (uuid) replaced by their storage, for hashing."""
    cols = []
    for name in keys:
        col = table.column(name)
        if isinstance(col.type, pa.ExtensionType):
            col = pa.chunked_array([c.storage for c in col.chunks], type=col.type.storage_type)
        cols.append(col)
    return pa.Table.from_arrays(cols, names=list(keys))


def fold(changes: pa.Table, keys: tuple[str, ...]) -> Folded:
    """Fold ``changes`` (table schema + ``_op`` + ``_unchanged``, in commit order) per key."""
    changes = changes.append_column(ORD, pa.array(range(changes.num_rows), pa.int64()))
    ops = changes.column(OP)
    truncate = False
    truncates = pc.indices_nonzero(pc.equal(ops, int(Op.TRUNCATE)))
    if len(truncates):
        truncate = True
        changes = changes.slice(truncates[-1].as_py() + 1)
    key_frame = storage_keys(changes, keys).append_column(ORD, changes.column(ORD))
    last = key_frame.group_by(list(keys), use_threads=False).aggregate([(ORD, "max")])
    first_ord = changes.column(ORD)[0].as_py() if changes.num_rows else 0
    take = pc.sort_indices(last.column(f"{ORD}_max"))
    positions = pc.subtract(pc.take(last.column(f"{ORD}_max"), take), first_ord)
    final = changes.take(positions)
    is_delete = pc.is_in(final.column(OP), value_set=pa.array([int(Op.DELETE), int(Op.MOVE)], pa.int8()))
    upserts = final.filter(pc.invert(is_delete))
    deletes = final.filter(is_delete).select(list(keys))
    moved_from: dict[tuple, tuple] = {}
    if upserts.num_rows and pc.any(pc.is_valid(upserts.column(UNCHANGED))).as_py():
        upserts, moved_from = _fill_unchanged_from_batch(changes, upserts, keys)
    return Folded(upserts=upserts.drop_columns([OP, ORD]), delete_keys=deletes, truncate=truncate,
                  moved_from=moved_from)


def _fill_unchanged_from_batch(changes: pa.Table, upserts: pa.Table,
                               keys: tuple[str, ...]) -> tuple[pa.Table, dict[tuple, tuple]]:
    """Fill unchanged-TOAST columns of final images from earlier images of the same key (or,
    after a key change, of the old key); returns the moves whose old image is not in the batch."""
    rows = changes.to_pylist()
    current: dict[tuple, dict] = {}
    moved_from: dict[tuple, tuple] = {}
    moved: tuple[tuple, dict | None] | None = None  # the old key just deleted by a key change
    for row in rows:  # replay in order: each image inherits what it left unchanged
        key = tuple(row[k] for k in keys)
        if row[OP] in (Op.DELETE, Op.TRUNCATE, Op.MOVE):
            old_image = current.pop(key, None)
            moved = (key, old_image) if row[OP] == Op.MOVE else None
            continue
        missing = row[UNCHANGED]
        prev = current.get(key)
        if missing and prev is None and moved is not None:
            old_key, prev = moved
            prev = prev or {UNCHANGED: missing}
            if any(c in (prev[UNCHANGED] or ()) for c in missing):
                # still unknown in the batch: the merge reads them from the old key's Iceberg row
                moved_from[key] = moved_from.get(old_key, old_key)
        if missing and prev is not None:
            for col in missing:
                row[col] = prev.get(col)
            row[UNCHANGED] = [c for c in missing if prev.get(UNCHANGED) and c in prev[UNCHANGED]] or None
        moved = None
        current[key] = row
    filled = [current[tuple(r[k] for k in keys)] for r in upserts.select(list(keys)).to_pylist()]
    return pa.Table.from_pylist(filled, schema=upserts.schema), moved_from
