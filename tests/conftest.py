"""Shared fixtures: one real PostgreSQL (wal_level=logical) per session, a database per test."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from pg2iceberg.demo.local_postgres import LocalPostgres

_db_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def postgres() -> Iterator[LocalPostgres]:
    """A throwaway PostgreSQL server for the whole session."""
    server = LocalPostgres(max_replication_slots=40).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(postgres: LocalPostgres) -> str:
    """A fresh, empty database on the session server; its URL."""
    return postgres.create_database(f"t{next(_db_numbers)}")
