"""Multi-worker mode from outside: one --stream-only writer, --materializer-only workers.

Workers split the tables, a killed worker's tables move to the survivor, a restarted one takes
its share back, two workers forced onto the same tables never duplicate or lose a row, a
worker with another config is refused, and a worker started before the writer waits.
"""

from __future__ import annotations

import random
import threading
import time
from contextlib import ExitStack, closing
from pathlib import Path
from typing import Any, Callable, Iterator

import psycopg
import pytest

from harness import Run, assert_same, write_config

from pg2iceberg.config import load_config
from pg2iceberg.runtime.materializer_only import open_worker
from pg2iceberg.runtime.supervisor import Supervisor
from pg2iceberg.stream.coordinator import Coordinator

TABLES = ["a", "b", "c", "d"]


def _create(url: str, rows: int = 2000) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for t in TABLES:
            conn.execute(f"CREATE TABLE {t} (id bigint PRIMARY KEY, v text, n double precision)")
            conn.execute(f"INSERT INTO {t} SELECT g, 'v' || g, g / 3.0 FROM generate_series(1, %s) g", (rows,))


class Workload(threading.Thread):
    """Inserts, updates (some moving the key) and deletes over every table, small transactions."""

    def __init__(self, url: str, seed: int):
        super().__init__(daemon=True)
        self.url, self.rng, self.stop_flag = url, random.Random(seed), threading.Event()
        self.transactions = 0

    def run(self) -> None:
        next_id = 1_000_000
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stop_flag.is_set():
                with conn.transaction():
                    for _ in range(self.rng.randint(1, 10)):
                        table, key, pick = self.rng.choice(TABLES), self.rng.randint(1, 2000), self.rng.random()
                        next_id += 1
                        if pick < 0.4:
                            conn.execute(f"INSERT INTO {table} VALUES (%s, 'new', %s)", (next_id, pick))
                        elif pick < 0.8:
                            conn.execute(f"UPDATE {table} SET v = v || 'u', n = %s WHERE id = %s", (pick, key))
                        elif pick < 0.9:
                            conn.execute(f"UPDATE {table} SET id = %s WHERE id = %s", (next_id, key))
                        else:
                            conn.execute(f"DELETE FROM {table} WHERE id = %s", (key,))
                self.transactions += 1
                time.sleep(0.005)

    def finish(self) -> None:
        self.stop_flag.set()
        self.join()


def _wait(what: str, cond: Callable[[], Any], runs: list[Run], timeout_s: float = 90) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for run in runs:
            if run.proc.poll() is not None:
                raise AssertionError(f"exited {run.proc.returncode} while waiting for {what}: {run.stderr()[-3000:]}")
        value = cond()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _last_status(run: Run) -> dict[str, Any]:
    statuses = [r for r in run.lines() if r.get("type") == "status"]
    return statuses[-1] if statuses else {}


def _split(run: Run) -> dict[str, tuple[str, ...]]:
    """Alive worker id → tables it holds, as the stream writer's status shows them."""
    return {w["id"]: tuple(w["tables"]) for w in _last_status(run).get("workers", []) if w["alive"]}


def _compare(url: str, folder: Path) -> None:
    for t in TABLES:
        assert_same(url, folder, f"public.{t}", t, "id")


@pytest.fixture
def started() -> Iterator[list[Run]]:
    """Every process a test starts; those still running at the end are killed."""
    runs: list[Run] = []
    yield runs
    for run in runs:
        if run.proc.poll() is None:
            run.kill()


def _start(started: list[Run], config: Path, *args: str) -> Run:
    run = Run(config, *args)
    started.append(run)
    return run


def _worker(started: list[Run], config: Path, worker_id: str) -> Run:
    return _start(started, config, "--materializer-only", "--materializer-worker-id", worker_id)


def test_split_failover_and_rebalance(pg_url: str, tmp_path: Path, started: list[Run]) -> None:
    _create(pg_url)
    config = write_config(tmp_path, pg_url, [f"public.{t}" for t in TABLES])
    writer = _start(started, config, "--stream-only")
    workers = {"w1": _worker(started, config, "w1"), "w2": _worker(started, config, "w2")}
    everything = tuple(f"public.{t}" for t in TABLES)
    load = Workload(pg_url, seed=3)
    load.start()
    try:
        def split_in_two() -> dict[str, tuple[str, ...]] | None:
            split = _split(writer)
            ok = set(split) == {"w1", "w2"} and all(len(ts) == 2 for ts in split.values())
            return split if ok and tuple(sorted(n for ts in split.values() for n in ts)) == everything else None

        first = _wait("two workers holding two tables each", split_in_two, started)
        for wid, run in workers.items():  # once given its share, each commits only those tables
            settled = max(i for i, r in enumerate(run.lines()) if r.get("event") == "assignment_changed")
            assert run.lines()[settled]["tables"] == list(first[wid])
            commits = lambda: {r["table"] for r in run.lines()[settled:]  # noqa: E731
                               if r.get("event") == "batch_committed"}
            _wait(f"{wid} committing its share", commits, started)
            assert commits() <= set(first[wid])
        assert writer.events("batch_committed") == []  # the stream writer commits nothing itself

        workers["w1"].kill()
        since = len(workers["w2"].lines())
        _wait("w2 holding every table", lambda: _split(writer) == {"w2": everything}, [writer, workers["w2"]])
        gained = [r for r in workers["w2"].lines()[since:] if r.get("event") == "assignment_changed"]
        assert sorted(gained[-1]["gained"]) == sorted(first["w1"])
        _wait("w2 committing the moved tables", lambda: {
            r["table"] for r in workers["w2"].lines()[since:] if r.get("event") == "batch_committed"}
            & set(first["w1"]), [writer, workers["w2"]])

        since = len(workers["w2"].lines())
        workers["w1"] = _worker(started, config, "w1")
        _wait("the same split again", lambda: split_in_two() == first, [writer, *workers.values()])
        lost = [r for r in workers["w2"].lines()[since:] if r.get("event") == "assignment_changed"]
        assert sorted(lost[-1]["lost"]) == sorted(first["w1"])
    finally:
        load.finish()
    assert load.transactions > 50
    writer.wait_caught_up(pg_url, timeout_s=120)
    _compare(pg_url, tmp_path)
    for run in [writer, *workers.values()]:
        assert run.stop() == 0, run.stderr()[-3000:]
    with closing(Coordinator(pg_url, "_pg2iceberg")) as coord:  # a clean stop unregisters the worker
        assert coord.consumer_rows() == []
