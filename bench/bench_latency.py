"""Benchmark of commit-to-visible latency at 1 s intervals.

pg2iceberg runs with ``flush_interval: 1s`` and ``materializer_interval: 1s`` while a writer
commits small transactions (default 5 a second for 60 s). For every transaction the bench
takes the WAL insert position right after its commit (its commit record lies before it) and
the wall time; the transaction is visible once a ``batch_committed`` event of its table
reaches that position. The latency is the event's time (its ``ts``, written just after the
Iceberg commit) minus the commit time. The same is measured as an outside watcher of the
headless output sees it: the first ``status`` line whose ``materialized_lsn`` reaches the
position. Prints p50/p90/p99/max against the 3 s target.
Nothing is asserted. Usage: ``.venv/bin/python bench/bench_latency.py [--seconds N] [--rate R]``.
"""

from __future__ import annotations

import argparse
import shutil
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


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def _unix(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def main() -> None:
    args = argparse.ArgumentParser()
    args.add_argument("--seconds", type=float, default=60)
    args.add_argument("--rate", type=float, default=5, help="transactions per second")
    opts = args.parse_args()
    pg = LocalPostgres().start()
    work = Path(tempfile.mkdtemp(prefix="pg2iceberg-bench-"))
    try:
        url = pg.create_database("latency")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE public.ticks (id bigint PRIMARY KEY, v text, n int)")
            conn.execute("INSERT INTO public.ticks SELECT g, 'v' || g, 0 FROM generate_series(1, 100000) g")
        config = write_config(work, url, ["public.ticks"])
        config.write_text(config.read_text().replace("flush_interval: 300ms", "flush_interval: 1s")
                          .replace("materializer_interval: 500ms", "materializer_interval: 1s"))
        run = Run(config)
        run.wait_caught_up(url, 120)
        commits: list[tuple[int, float]] = []
        with psycopg.connect(url, autocommit=True) as conn:
            end = time.time() + opts.seconds
            i = 0
            while time.time() < end:
                i += 1
                with conn.transaction():
                    conn.execute("UPDATE public.ticks SET n = n + 1 WHERE id = %s", (1 + (i * 7919) % 100000,))
                    conn.execute("INSERT INTO public.ticks VALUES (%s, 'new', 0)", (1_000_000 + i,))
                at = time.time()
                lsn = parse_lsn(conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()[0])
                commits.append((lsn, at))
                time.sleep(max(0.0, 1 / opts.rate - (time.time() - at)))
        run.wait_caught_up(url, 60, target=current_wal_lsn(url))
        peak = run.peak_rss_kib() // 1024
        run.stop()
        batches = sorted((parse_lsn(e["lsn"]), _unix(e["ts"])) for e in run.events("batch_committed"))
        statuses = [(parse_lsn(r["tables"][0]["materialized_lsn"]), _unix(r["ts"])) for r in run.lines()
                    if r.get("type") == "status" and r["tables"] and r["tables"][0]["materialized_lsn"]]
        print(f"{len(commits)} transactions at {opts.rate}/s over {opts.seconds:.0f} s, intervals 1 s, "
              f"{len(batches)} Iceberg commits, peak RSS {peak} MiB")
        for label, seen in (("batch_committed events", batches), ("status lines", statuses)):
            latencies = [next(ts for blsn, ts in seen if blsn >= lsn) - at for lsn, at in commits]
            p50, p90, p99 = (percentile(latencies, p) for p in (50, 90, 99))
            print(f"commit-to-visible ({label}): p50 {p50:.2f} s, p90 {p90:.2f} s, p99 {p99:.2f} s, "
                  f"max {max(latencies):.2f} s (target p99 <= 3 s: {'met' if p99 <= 3 else 'missed'})")
    finally:
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
