"""Benchmark of CDC catch-up against a raw pgoutput drain, and memory of a 1M-row transaction.

1. Creates a small table, runs pg2iceberg until caught up, stops it (SIGTERM).
2. Creates a second logical slot (the baseline's), then, while pg2iceberg is stopped, makes
   ``--changes`` changes (default 300,000): inserts and updates, ~100 rows a transaction.
3. Baseline: drains that slot with a bare pgoutput ``START_REPLICATION`` (psycopg, replication
   connection), counting Insert/Update messages until all ``--changes`` have arrived.
4. Ours: restarts pg2iceberg and times until the first ``batch_committed`` event at or past
   the ``pg_current_wal_insert_lsn()`` captured after the changes (the changes are then in
   Iceberg). Timed twice: from ``streaming_started`` (the catch-up proper; the baseline's
   clock also starts at START_REPLICATION) and from spawning the process (adds ~0.7 s of
   interpreter start, imports, connections and checks).
5. With pg2iceberg running, one transaction inserting ``--big-rows`` rows (default 1,000,000)
   in one statement: time from commit to caught up, and the process's peak RSS (VmHWM).

Prints changes/s for both, the ratio ours/baseline (>= 0.5 meets the target) and peak RSS
against 512 MiB. Nothing is asserted.
Usage: ``.venv/bin/python bench/bench_catchup.py [--changes N] [--big-rows N]``.
"""

from __future__ import annotations

import argparse
import shutil
import struct
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "engine"))

import psycopg  # noqa: E402

from harness import Run, current_wal_lsn, write_config  # noqa: E402
from pg2iceberg.demo.local_postgres import LocalPostgres  # noqa: E402
from pg2iceberg.lsn import parse_lsn  # noqa: E402

SEED_ROWS = 1000
TX_ROWS = 100
PG_EPOCH_US = 946_684_800_000_000


def make_changes(url: str, n: int) -> None:
    """n changes: each transaction inserts TX_ROWS/2 new rows and updates TX_ROWS/2 rows."""
    next_id = SEED_ROWS + 1
    done = 0
    with psycopg.connect(url, autocommit=True) as conn:
        while done < n:
            size = min(TX_ROWS, n - done)
            ins = size // 2
            upd = size - ins
            with conn.transaction():
                if ins:
                    conn.execute("INSERT INTO public.small SELECT g, 'v' || g, 0 FROM generate_series(%s::bigint, %s::bigint) g",
                                 (next_id, next_id + ins - 1))
                lo = 1 + (done // 2) % max(1, next_id - upd - 1)
                conn.execute("UPDATE public.small SET n = n + 1, v = v || 'x' WHERE id BETWEEN %s::bigint AND %s::bigint",
                             (lo, lo + upd - 1))
            next_id += ins
            done += size


def raw_drain(url: str, slot: str, expected: int) -> float:
    """Seconds to receive ``expected`` Insert/Update messages from ``slot`` with bare pgoutput."""
    conn = psycopg.connect(url, replication="database", autocommit=True)
    try:
        pgconn = conn.pgconn
        start = time.perf_counter()
        pgconn.exec_(f"START_REPLICATION SLOT {slot} LOGICAL 0/0 "
                     f"(proto_version '1', publication_names 'pg2iceberg_pub')".encode())
        changes = 0
        last_lsn = 0
        last_reply = time.monotonic()
        while changes < expected:
            nbytes, data = pgconn.get_copy_data(0)
            if nbytes < 0:
                raise SystemExit(f"replication stream ended: {pgconn.error_message!r}")
            data = bytes(data)
            if data[:1] == b"w":
                last_lsn = struct.unpack_from(">Q", data, 9)[0]
                if data[25:26] in (b"I", b"U"):
                    changes += 1
            if time.monotonic() - last_reply > 10:  # keep the walsender from timing us out
                now = int(time.time() * 1e6) - PG_EPOCH_US
                pgconn.put_copy_data(b"r" + struct.pack(">QQQqB", last_lsn, last_lsn, last_lsn, now, 0))
                pgconn.flush()
                last_reply = time.monotonic()
        return time.perf_counter() - start
    finally:
        conn.close()


def event_time(run: Run, name: str) -> float:
    """Unix time of the first event ``name`` the run printed."""
    return _unix(run.events(name)[0]["ts"])


def wait_visible(run: Run, target: int, timeout_s: float = 1800) -> float:
    """Unix time of the first ``batch_committed`` event at or past ``target`` (the moment the
    changes became visible in Iceberg; status lines come only every 2 s)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if run.proc.poll() is not None:
            raise SystemExit(f"pg2iceberg exited {run.proc.returncode}: {run.stderr()[-2000:]}")
        for event in run.events("batch_committed"):
            if parse_lsn(event["lsn"]) >= target:
                return _unix(event["ts"])
        time.sleep(0.05)
    raise SystemExit(f"not caught up with {target} in {timeout_s}s")


def _unix(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=300_000)
    parser.add_argument("--big-rows", type=int, default=1_000_000)
    args = parser.parse_args()

    pg = LocalPostgres().start()
    work = Path(tempfile.mkdtemp(prefix="pg2iceberg-bench-cdc-"))
    run = None
    try:
        db = f"cdc{time.time_ns() % 10**9}"  # the harness names the slot after the database
        url = pg.create_database(db)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE public.small (id bigint PRIMARY KEY, v text NOT NULL, n int NOT NULL)")
            conn.execute("INSERT INTO public.small SELECT g, 'v' || g, 0 FROM generate_series(1, %s) g",
                         (SEED_ROWS,))
        config = write_config(work, url, ["public.small"])

        run = Run(config)
        run.wait_caught_up(url, timeout_s=120)
        run.stop()
        run = None
        print("pg2iceberg caught up on the seed rows and stopped", flush=True)

        raw_slot = f"bench_raw_{db}"
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (raw_slot,))
        t0 = time.perf_counter()
        make_changes(url, args.changes)
        target = current_wal_lsn(url)
        print(f"made {args.changes} changes in {time.perf_counter() - t0:.1f}s "
              f"(transactions of {TX_ROWS} rows, half inserts, half updates)", flush=True)

        base_s = raw_drain(url, raw_slot, args.changes)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SELECT pg_drop_replication_slot(%s)", (raw_slot,))
        print(f"baseline raw pgoutput drain: {base_s:.2f}s", flush=True)

        spawned = time.time()
        run = Run(config)
        visible = wait_visible(run, target)
        streaming = event_time(run, "streaming_started")
        ours_s, catchup_s = visible - spawned, visible - streaming
        hwm_catchup = run.peak_rss_kib()
        print(f"ours: process start to committed past the target {ours_s:.2f}s "
              f"(start-up to streaming_started {streaming - spawned:.2f}s, then {catchup_s:.2f}s), "
              f"peak RSS so far {hwm_catchup / 1024:.0f} MiB", flush=True)

        n = args.changes
        print(f"catch-up from streaming start: ours {n / catchup_s / 1000:.1f}k changes/s, "
              f"baseline {n / base_s / 1000:.1f}k changes/s, ratio {base_s / catchup_s:.2f} (target >= 0.5)",
              flush=True)
        print(f"catch-up from process start:   ours {n / ours_s / 1000:.1f}k changes/s, "
              f"ratio {base_s / ours_s:.2f}", flush=True)

        with psycopg.connect(url, autocommit=True) as conn:
            first = SEED_ROWS + args.changes + 1
            t0 = time.perf_counter()
            conn.execute("INSERT INTO public.small SELECT g, 'big-' || g, 0 FROM generate_series(%s::bigint, %s::bigint) g",
                         (first, first + args.big_rows - 1))
            commit_s = time.perf_counter() - t0
        committed = time.time()
        target = current_wal_lsn(url)
        big_s = wait_visible(run, target) - committed
        hwm = run.peak_rss_kib()
        print(f"big transaction: {args.big_rows} rows in one INSERT (took {commit_s:.1f}s in PostgreSQL), "
              f"commit to caught up {big_s:.2f}s ({args.big_rows / big_s / 1000:.1f}k rows/s)", flush=True)
        print(f"big transaction peak RSS: {hwm / 1024:.0f} MiB (target <= 512 MiB)", flush=True)
    finally:
        if run is not None:
            run.stop()
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
