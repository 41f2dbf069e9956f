"""The warehouse and the stream on an S3-compatible server (moto's), end to end."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Iterator

import boto3
import psycopg
import pytest
from moto.server import ThreadedMotoServer
from pyiceberg.catalog import load_catalog

from harness import Run, _norm, source_rows, write_config

KEY, SECRET, REGION, BUCKET = "test-access", "test-secret-value", "us-east-1", "lake"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=KEY, aws_secret_access_key=SECRET,
                 region_name=REGION).create_bucket(Bucket=BUCKET)
    try:
        yield endpoint
    finally:
        server.stop()


def _objects(endpoint: str, prefix: str) -> list[str]:
    s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=KEY, aws_secret_access_key=SECRET,
                      region_name=REGION)
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def test_pipeline_on_s3_keeps_the_table_equal(pg_url: str, tmp_path: Path, s3_endpoint: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, v text, amount numeric(10,2), at timestamptz)")
        conn.execute("INSERT INTO t SELECT g, 'v' || g, g / 4.0, now() FROM generate_series(1, 3000) g")
    prefix = tmp_path.name
    sink = (f"  warehouse: s3://{BUCKET}/{prefix}/warehouse\n  s3_endpoint: {s3_endpoint}\n"
            f"  s3_access_key: {KEY}\n  s3_secret_key: ${{TEST_S3_SECRET}}\n  s3_region: {REGION}\n")
    config = write_config(tmp_path, pg_url, ["public.t"], extra_sink=sink)
    config.write_text(config.read_text() + f"stream:\n  location: s3://{BUCKET}/{prefix}/stream\n")
    monkeypatch.setenv("TEST_S3_SECRET", SECRET)  # the config names it; the run inherits it
    run = Run(config)
    try:
        run.wait_caught_up(pg_url)
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("UPDATE t SET v = NULL, amount = amount * 2 WHERE id % 3 = 0")
            conn.execute("DELETE FROM t WHERE id > 2900")
            conn.execute("UPDATE t SET id = id + 10000 WHERE id < 20")
        run.wait_caught_up(pg_url)
    finally:
        assert run.stop() == 0
    catalog = load_catalog("default", type="sql", uri=f"sqlite:///{tmp_path}/catalog.db",
                           warehouse=f"s3://{BUCKET}/{prefix}/warehouse", **{
                               "s3.endpoint": s3_endpoint, "s3.access-key-id": KEY,
                               "s3.secret-access-key": SECRET, "s3.region": REGION})
    table = catalog.load_table(("pg2iceberg", "t"))
    got = sorted(tuple(_norm(v) for v in r.values()) for r in table.scan().to_arrow().to_pylist())
    assert got == source_rows(pg_url, "public.t", "id")
    assert table.metadata_location.startswith(f"s3://{BUCKET}/{prefix}/warehouse/")
    assert any(k.endswith(".parquet") for k in _objects(s3_endpoint, f"{prefix}/stream/"))
    assert not (tmp_path / "warehouse").exists()  # nothing went to local disk instead
    everything = "\n".join(p.read_text() for p in tmp_path.glob("out-*"))
    assert SECRET not in everything
