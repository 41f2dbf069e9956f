"""The ``workers`` part of the status: materializer workers as the coordinator sees them.

A worker is ``dead`` once its heartbeat is older than the TTL (its tables then move to the
survivors), ``lagging`` when a table it holds has staged changes older than
:func:`lagging_after_s`, else ``running``. Its ``cursor_lsn`` is the lowest cursor row it
wrote for the tables it holds (a hint: the Iceberg position is the truth).
"""

from __future__ import annotations

from typing import Mapping, Sequence

from pg2iceberg.runtime.status import TableStatus, WorkerStatus
from pg2iceberg.stream.coordinator import ConsumerRow


def lagging_after_s(materializer_interval_s: float) -> float:
    """Backlog age from which a live worker counts as lagging: six cycles, at least 30 s."""
    return max(30.0, 6.0 * materializer_interval_s)


def worker_statuses(rows: Sequence[ConsumerRow], tables: Mapping[str, TableStatus], *,
                    ttl_s: float, lagging_s: float) -> tuple[WorkerStatus, ...]:
    """One :class:`WorkerStatus` per registered worker."""
    out = []
    for row in rows:
        alive = row.heartbeat_age_s < ttl_s
        ages = [tables[n].backlog_oldest_age_s for n in row.tables
                if n in tables and tables[n].backlog_oldest_age_s is not None]
        state = "dead" if not alive else "lagging" if ages and max(ages) > lagging_s else "running"
        out.append(WorkerStatus(id=row.worker_id, group=row.group_id,
                                heartbeat_age_s=round(row.heartbeat_age_s, 1), tables=tuple(row.tables),
                                alive=alive, cursor_lsn=row.cursor_lsn, last_commit_at=row.last_commit_at,
                                state=state))
    return tuple(out)
