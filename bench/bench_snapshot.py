"""Benchmark of the initial snapshot against a naive ADBC + pyiceberg copy.

Creates a table of ``--rows`` rows (default 1,000,000) in a throwaway PostgreSQL, then:

* baseline: ADBC ``SELECT *`` -> ``fetch_arrow_table()``, numeric columns cast to decimal,
  one ``table.append()`` into a fresh pyiceberg SQL-catalog table, run as its own Python
  process (``bench/naive_snapshot.py``, which imports nothing else);
* ours: ``python -m pg2iceberg --headless`` until its ``snapshot_completed`` event.

Two comparisons, each like for like:

* copy: the baseline's time from its connect to its append's end, against our event's
  ``duration_s`` (from the copy's start to its commit);
* end to end: each process's wall time from spawn (so both pay interpreter start and
  imports; ours also creates the publication, the slot and the Iceberg table).

Prints rows/s and the ratios baseline / ours (>= 1.0 meets the target), and our process's
peak RSS (VmHWM). Nothing is asserted.
Usage: ``.venv/bin/python bench/bench_snapshot.py [--rows N]``.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "engine"))

import psycopg  # noqa: E402

from harness import Run, write_config  # noqa: E402
from pg2iceberg.demo.local_postgres import LocalPostgres  # noqa: E402

TABLE_SQL = """
CREATE TABLE public.bench (
    id bigint PRIMARY KEY,
    name text NOT NULL,
    note text,
    amount numeric(12, 2),
    score double precision,
    created_at timestamptz NOT NULL
)"""

FILL_SQL = """
INSERT INTO public.bench
SELECT g, 'customer-' || (g %% 9973), md5(g::text), (g %% 100000) / 100.0, g * 0.37,
       timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second'
FROM generate_series(1, %s) AS g"""


def baseline_process(url: str, folder: Path) -> tuple[float, float, int]:
    """(in-process seconds, wall seconds from spawn to exit, peak RSS KiB) of the baseline,
    run as a child process (RUSAGE_CHILDREN's peak: the other children waited for are initdb
    and pg_ctl, far smaller)."""
    start = time.perf_counter()
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "naive_snapshot.py"), url, str(folder)],
                         check=True, capture_output=True, text=True).stdout
    wall = time.perf_counter() - start
    return float(out.strip().splitlines()[-1]), wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss


def ours(url: str, folder: Path) -> tuple[float, float, int, int]:
    """(event duration_s, wall seconds to the event, rows, peak RSS KiB) of one pg2iceberg run."""
    config = write_config(folder, url, ["public.bench"])
    start = time.perf_counter()
    run = Run(config)
    try:
        while True:
            if run.proc.poll() is not None:
                raise SystemExit(f"pg2iceberg exited {run.proc.returncode}: {run.stderr()[-3000:]}")
            done = run.events("snapshot_completed")
            if done:
                wall = time.perf_counter() - start
                break
            time.sleep(0.05)
        hwm = run.peak_rss_kib()
    finally:
        run.stop()
    return float(done[-1].get("duration_s", 0.0)), wall, int(done[-1].get("rows", 0)), hwm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()

    pg = LocalPostgres().start()
    work = Path(tempfile.mkdtemp(prefix="pg2iceberg-bench-snap-"))
    try:
        db = f"snap{time.time_ns() % 10**9}"
        url = pg.create_database(db)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(TABLE_SQL)
            conn.execute(FILL_SQL, (args.rows,))
            conn.execute("VACUUM ANALYZE public.bench")
        print(f"table public.bench: {args.rows} rows", flush=True)

        base_s, base_wall_s, base_hwm = baseline_process(url, work / "baseline")
        print(f"baseline (ADBC + one pyiceberg append): copy {base_s:.2f}s, process wall {base_wall_s:.2f}s, "
              f"peak RSS {base_hwm / 1024:.0f} MiB", flush=True)
        duration_s, wall_s, rows, hwm = ours(url, work / "ours")
        print(f"ours: snapshot_completed rows={rows} copy (duration_s) {duration_s:.2f}s, "
              f"process wall to the event {wall_s:.2f}s, peak RSS {hwm / 1024:.0f} MiB", flush=True)

        n = args.rows
        print(f"snapshot copy:       ours {n / duration_s / 1000:.0f}k rows/s, baseline {n / base_s / 1000:.0f}k rows/s, "
              f"ratio {base_s / duration_s:.2f} (target >= 1.0)")
        print(f"snapshot end to end: ours {n / wall_s / 1000:.0f}k rows/s, baseline {n / base_wall_s / 1000:.0f}k rows/s, "
              f"ratio {base_wall_s / wall_s:.2f} (target >= 1.0)")
        print(f"snapshot peak RSS: {hwm / 1024:.0f} MiB (target <= 512 MiB)")
    finally:
        pg.stop()
        import shutil
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
