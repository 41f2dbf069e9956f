"""kill -9 at random moments under a running workload: nothing lost, nothing duplicated."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import psycopg

from harness import Run, assert_same, write_config


class Workload(threading.Thread):
    """Random inserts, updates (incl. key moves) and deletes in small transactions."""

    def __init__(self, url: str, seed: int):
        super().__init__(daemon=True)
        self.url, self.rng, self.stop_flag = url, random.Random(seed), threading.Event()
        self.transactions = 0

    def run(self) -> None:
        next_id = 100_000
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stop_flag.is_set():
                with conn.transaction():
                    for _ in range(self.rng.randint(1, 20)):
                        pick = self.rng.random()
                        key = self.rng.randint(1, 2000)
                        if pick < 0.4:
                            next_id += 1
                            conn.execute("INSERT INTO t (id, v, n) VALUES (%s, %s, %s)",
                                         (next_id, f"v{next_id}", self.rng.random()))
                        elif pick < 0.8:
                            conn.execute("UPDATE t SET v = v || 'u', n = %s WHERE id = %s",
                                         (self.rng.random(), key))
                        elif pick < 0.9:
                            next_id += 1
                            conn.execute("UPDATE t SET id = %s WHERE id = %s", (next_id, key))
                        else:
                            conn.execute("DELETE FROM t WHERE id = %s", (key,))
                self.transactions += 1
                time.sleep(0.005)


def test_kill_9_under_load_then_restart(pg_url: str, tmp_path: Path) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id bigint PRIMARY KEY, v text, n double precision)")
        conn.execute("INSERT INTO t SELECT g, 'v' || g, random() FROM generate_series(1, 20000) g")
    config = write_config(tmp_path, pg_url, ["public.t"])
    workload = Workload(pg_url, seed=7)
    rng = random.Random(11)
    workload.start()
    try:
        for round_ in range(4):
            run = Run(config)
            time.sleep(rng.uniform(0.5, 6.0) if round_ else rng.uniform(1.0, 2.5))  # first: mid-snapshot
            run.kill()
    finally:
        workload.stop_flag.set()
        workload.join()
    assert workload.transactions > 50
    run = Run(config)
    try:
        run.wait_caught_up(pg_url, timeout_s=120)
        assert_same(pg_url, tmp_path, "public.t", "t", "id")
    finally:
        assert run.stop() == 0, run.stderr()[-3000:]
