"""kill -9 at random moments under a running workload: nothing lost, nothing duplicated."""

from __future__ import annotations

import random
import time
from pathlib import Path

import psycopg

from harness import Run, Workload, assert_same, write_config


def test_kill_9_under_load_then_restart(pg_url: str, tmp_path: Path) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id bigint PRIMARY KEY, v text, n double precision)")
        conn.execute("INSERT INTO t SELECT g, 'v' || g, random() FROM generate_series(1, 20000) g")
    config = write_config(tmp_path, pg_url, ["public.t"])
    workload = Workload(pg_url, ["t"], seed=7)
    rng = random.Random(11)
    workload.start()
    try:
        for round_ in range(4):
            run = Run(config)
            time.sleep(rng.uniform(0.5, 6.0) if round_ else rng.uniform(1.0, 2.5))  # first: mid-snapshot
            run.kill()
    finally:
        workload.finish()
    assert workload.transactions > 50
    run = Run(config)
    try:
        run.wait_caught_up(pg_url, timeout_s=120)
        assert_same(pg_url, tmp_path, "public.t", "t", "id")
    finally:
        assert run.stop() == 0, run.stderr()[-3000:]
