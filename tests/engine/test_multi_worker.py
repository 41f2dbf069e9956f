"""Multi-worker mode from outside: one --stream-only writer, --materializer-only workers.

Workers split the tables, a killed worker's tables move to the survivor, a restarted one takes
its share back, two workers forced onto the same tables never duplicate or lose a row, a
worker with another config is refused, and a worker started before the writer waits.
"""

from __future__ import annotations

import threading
import time
from contextlib import ExitStack, closing
from pathlib import Path
from typing import Any, Callable, Iterator

import psycopg
import pytest

from harness import Run, Workload, assert_same, write_config

from pg2iceberg.config import load_config
from pg2iceberg.runtime.materializer_only import open_worker
from pg2iceberg.runtime.pipeline import Pipeline
from pg2iceberg.runtime.supervisor import Supervisor
from pg2iceberg.stream.coordinator import Coordinator

TABLES = ["a", "b", "c", "d"]


def _create(url: str, rows: int = 2000) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for t in TABLES:
            conn.execute(f"CREATE TABLE {t} (id bigint PRIMARY KEY, v text, n double precision)")
            conn.execute(f"INSERT INTO {t} SELECT g, 'v' || g, g / 3.0 FROM generate_series(1, %s) g", (rows,))


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
    load = Workload(pg_url, TABLES, seed=3, max_changes=10)
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


def _everything(tables: list[str], workers: list[str]) -> dict[str, tuple[str, ...]]:
    """A forced overlap: every worker holds every table."""
    return {w: tuple(tables) for w in workers}


def test_forced_overlap_never_duplicates_or_loses(pg_url: str, tmp_path: Path, started: list[Run]) -> None:
    """Two workers applying the same tables at once, without leases: only Iceberg's optimistic
    commit on the position-carrying snapshot fences them."""
    _create(pg_url)
    config = write_config(tmp_path, pg_url, [f"public.{t}" for t in TABLES],
                          "  materializer_interval: 10ms\n").read_text()
    (tmp_path / "config.yaml").write_text(config.replace("  materializer_interval: 500ms\n", ""))
    writer = _start(started, tmp_path / "config.yaml", "--stream-only")
    _wait("the initial copies", lambda: len(writer.events("snapshot_completed")) == len(TABLES), started)
    load = Workload(pg_url, TABLES, seed=5, max_changes=10)
    load.start()
    events: list[Any] = []
    threads: list[threading.Thread] = []
    stops: list[threading.Event] = []
    with ExitStack() as stack:
        for wid in ("x1", "x2"):
            sup = Supervisor(load_config(tmp_path / "config.yaml", overrides={"materializer_worker_id": wid}),
                             "materializer-only")
            sup.events.subscribe(events.append)
            with closing(Coordinator(pg_url, "_pg2iceberg")) as coord:
                system_id = coord.checkpoint(f"slot_{pg_url.rsplit('/', 1)[1]}")[0]
            loop, _ = open_worker(Pipeline(sup), wid, system_id, stack, assign_tables=_everything,
                                  use_leases=False)
            stops.append(sup.stop_event)
            threads.append(threading.Thread(target=loop.run, daemon=True))
        try:
            for thread in threads:
                thread.start()
            conflicts = lambda: [e for e in events if e.name == "commit_conflict"]  # noqa: E731
            def raced() -> bool:
                assert all(t.is_alive() for t in threads), "a worker loop died"
                return len(conflicts()) >= 3

            _wait("three lost commit races", raced, [writer], timeout_s=120)
        finally:
            load.finish()
        writer.wait_caught_up(pg_url, timeout_s=120)
        assert all(t.is_alive() for t in threads)
        for stop in stops:
            stop.set()
        for thread in threads:
            thread.join(60)
    committed = {(e.fields["worker"], e.fields["table"]) for e in events if e.name == "batch_committed"}
    assert {w for w, _ in committed} == {"x1", "x2"}  # both really applied the same tables
    assert all(e.fields["still_held"] for e in conflicts())
    _compare(pg_url, tmp_path)
    assert writer.stop() == 0, writer.stderr()[-3000:]


def test_mismatched_config_is_refused(pg_url: str, tmp_path: Path, started: list[Run]) -> None:
    _create(pg_url, rows=10)
    config = write_config(tmp_path, pg_url, ["public.a", "public.b"])
    writer = _start(started, config, "--stream-only")
    writer.wait_caught_up(pg_url)
    text = config.read_text()
    other_tables = tmp_path / "other-tables.yaml"
    other_tables.write_text(text.replace("  - name: 'public.b'\n", ""))
    other_warehouse = tmp_path / "other-warehouse.yaml"
    other_warehouse.write_text(text.replace("sink:\n", f"sink:\n  warehouse: {tmp_path}/elsewhere\n"))
    for path, key in ((other_tables, "tables"), (other_warehouse, "sink.warehouse")):
        worker = _worker(started, path, "w9")
        assert worker.proc.wait(60) == 2
        err = worker.stderr()
        assert f"{key}: this config has" in err and "the stream writer has" in err and str(path) in err, err
        assert worker.events("worker_started") == []
    with closing(Coordinator(pg_url, "_pg2iceberg")) as coord:
        assert coord.consumer_rows() == []  # refused before registering anything
    assert not (tmp_path / "elsewhere").exists()
    assert writer.stop() == 0


def test_worker_started_first_waits_then_works(pg_url: str, tmp_path: Path, started: list[Run]) -> None:
    _create(pg_url, rows=500)
    config = write_config(tmp_path, pg_url, [f"public.{t}" for t in TABLES])
    worker = _worker(started, config, "early")
    _wait("a waiting worker", lambda: worker.events("waiting") and _last_status(worker).get("waiting_for"),
          [worker])
    assert _last_status(worker)["state"] == "starting"
    writer = _start(started, config, "--stream-only")
    _wait("the copies", lambda: writer.events("streaming_started"), started)  # changes after them
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE a SET v = 'after start' WHERE id < 100")
        conn.execute("DELETE FROM d WHERE id > 400")
    writer.wait_caught_up(pg_url)
    worker.wait_caught_up(pg_url)  # the worker's own status agrees
    _compare(pg_url, tmp_path)
    assert {e["table"] for e in worker.events("batch_committed")} == {"public.a", "public.d"}
    assert _last_status(worker)["waiting_for"] is None
    assert worker.stop() == 0 and writer.stop() == 0
