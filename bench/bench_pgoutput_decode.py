"""Micro-benchmark of the pgoutput decoder.

Decodes 200k synthetic Insert messages of 5 text columns and compares the time
against a baseline measured in the same run: merely slicing each buffer
(``buf[1:]``). Usage: ``.venv/bin/python bench/bench_pgoutput_decode.py``.
"""

from __future__ import annotations

import struct
import sys
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pg2iceberg.source.pgoutput import Insert, PgOutputDecoder  # noqa: E402

N = 200_000
ROUNDS = 5


def make_insert(i: int) -> bytes:
    """One Insert of 5 text columns, the shapes a typical narrow table sends."""
    cols = (str(i), f"customer-{i % 997}", "2024-01-01 12:34:56.789+00", f"{i * 1.25:.2f}", "ok")
    out = b"I" + struct.pack(">I", 16385) + b"N" + struct.pack(">h", len(cols))
    for col in cols:
        raw = col.encode()
        out += b"t" + struct.pack(">i", len(raw)) + raw
    return out


def time_once(fn: Callable[[list[bytes]], None], bufs: list[bytes]) -> float:
    """Wall time of one ``fn(bufs)``."""
    t0 = time.perf_counter()
    fn(bufs)
    return time.perf_counter() - t0


def run_slice(bufs: list[bytes]) -> None:
    for buf in bufs:
        buf[1:]


def run_decode(bufs: list[bytes]) -> None:
    decode = PgOutputDecoder().decode
    for buf in bufs:
        decode(buf)


def main() -> None:
    bufs = [make_insert(i) for i in range(N)]
    first = PgOutputDecoder().decode(bufs[0])
    assert isinstance(first, Insert) and len(first.new) == 5
    # interleave the rounds so both sides see the same machine load; keep the best of each
    t_slice = t_decode = float("inf")
    for _ in range(ROUNDS):
        t_slice = min(t_slice, time_once(run_slice, bufs))
        t_decode = min(t_decode, time_once(run_decode, bufs))
    print(f"messages:        {N} Inserts x 5 text columns, best of {ROUNDS}")
    print(f"slice baseline:  {N / t_slice:>12,.0f} msg/s  ({t_slice * 1e9 / N:7.1f} ns/msg)")
    print(f"decode:          {N / t_decode:>12,.0f} msg/s  ({t_decode * 1e9 / N:7.1f} ns/msg)")
    print(f"decode / slice:  {t_decode / t_slice:.1f}x the baseline time")


if __name__ == "__main__":
    main()
