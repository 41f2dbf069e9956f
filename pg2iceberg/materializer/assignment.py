"""Which live materializer worker applies which table: bounded-load rendezvous hashing.

Every worker computes the assignment on its own, from the same two inputs: the configured
table names (the workers' configs must match the stream writer's, see
``runtime/fingerprint.py``) and the ids of the live workers of the group (a heartbeat within
:func:`heartbeat_ttl_s`). There is no leader and no lock: the answer is a pure function.

- Rendezvous (highest random weight) hashing ranks the workers per table by a stable hash of
  ``(table, worker)``; a table goes to its best-ranked worker that still has room.
- Room is ``ceil(tables / workers)``, so the split is even (no worker idles while another
  holds everything), and the result depends only on the set of live ids: a worker that dies
  gives its tables to the survivors, and when it returns it gets the same tables back.

Workers may briefly disagree (a heartbeat seen by one and not yet by another). Correctness
does not depend on agreement: the table's Iceberg position plus the optimistic commit fence a
second worker (see ``runtime/materializer_only.py``); disagreement only costs a lost commit.
"""

from __future__ import annotations

import hashlib
import math
from typing import Iterable

MIN_HEARTBEAT_TTL_S = 10.0


def heartbeat_ttl_s(materializer_interval_s: float) -> float:
    """How long a silent worker still counts as alive: three cycles, at least 10 s."""
    return max(MIN_HEARTBEAT_TTL_S, 3.0 * materializer_interval_s)


def heartbeat_interval_s(materializer_interval_s: float) -> float:
    """How often a worker heartbeats: well inside the TTL, whatever its cycles take."""
    return heartbeat_ttl_s(materializer_interval_s) / 5.0


def _weight(table: str, worker: str) -> int:
    digest = hashlib.sha256(f"{table}\x00{worker}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def assign(tables: Iterable[str], workers: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """Split ``tables`` over ``workers``: worker id → its tables (sorted); every table once.

    Deterministic: the same sets give the same answer in every process, whatever their order.
    """
    ids = sorted(set(workers))
    names = sorted(set(tables))
    if not ids:
        return {}
    room = math.ceil(len(names) / len(ids))
    held: dict[str, list[str]] = {w: [] for w in ids}
    for name in names:
        for worker in sorted(ids, key=lambda w: (-_weight(name, w), w)):
            if len(held[worker]) < room:
                held[worker].append(name)
                break
    return {w: tuple(ts) for w, ts in held.items()}
