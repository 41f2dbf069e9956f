"""Shared fixtures: one real PostgreSQL (wal_level=logical) per session, a database per test."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import psycopg
import pytest

from pg2iceberg.demo.local_postgres import LocalPostgres

_db_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def postgres() -> Iterator[LocalPostgres]:
    """A throwaway PostgreSQL server for the whole session."""
    server = LocalPostgres(max_replication_slots=60).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(postgres: LocalPostgres) -> Iterator[str]:
    """A fresh, empty database on the session server; its URL. Its replication slots are
    dropped afterwards (slots are per cluster, and the session creates many)."""
    url = postgres.create_database(f"t{next(_db_numbers)}")
    yield url
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                     "WHERE database = current_database() AND NOT active")
