"""Connections to the source database, always with the same pinned session settings.

The snapshot path (ADBC, binary COPY) and the stream path (pgoutput, text) must produce
identical values, so every connection pins the settings that change a value's text form:
TimeZone UTC, ISO dates, ISO-8601 intervals, shortest-exact floats, hex bytea.
"""

from __future__ import annotations

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

SESSION_SETTINGS = {
    "TimeZone": "UTC",
    "DateStyle": "ISO",
    "IntervalStyle": "iso_8601",
    "extra_float_digits": "3",
    "bytea_output": "hex",
    "lc_monetary": "C",
}
_OPTIONS = " ".join(f"-c {k}={v}" for k, v in SESSION_SETTINGS.items())


def session_dsn(dsn: str, *, application_name: str = "pg2iceberg") -> str:
    """Return ``dsn`` as a conninfo string carrying the pinned session settings."""
    params = conninfo_to_dict(dsn)
    options = f"{params.get('options', '')} {_OPTIONS}".strip()
    params["options"] = options
    params.setdefault("application_name", application_name)
    return make_conninfo(**{k: str(v) for k, v in params.items()})


def connect(dsn: str, *, autocommit: bool = True, replication: bool = False,
            application_name: str = "pg2iceberg", connect_timeout: int = 10) -> psycopg.Connection:
    """Open a psycopg connection with the pinned session settings."""
    kwargs: dict[str, object] = {"autocommit": autocommit, "connect_timeout": connect_timeout}
    if replication:
        kwargs["replication"] = "database"
    return psycopg.connect(session_dsn(dsn, application_name=application_name), **kwargs)
