"""The snapshot path and the stream path turn every contract type into the same Arrow values.

One table holds every type the contract maps, with a NULL in every column and edge values.
It is read twice: by the real snapshot reader (ADBC, binary COPY) into ``from_snapshot``, and
as the text the server's type output functions produce under the pinned session settings —
exactly what pgoutput sends (checked against a real pgoutput slot) — into ``from_text``.
The two results must be equal Arrow tables (floats compared bit for bit, so NaN and -0.0 are
checked honestly), and a few cells must equal values computed here independently of the code
under test.

Values Iceberg cannot hold (numeric NaN/±Infinity or too many digits, ±infinity dates and
timestamps, ...) must be refused on both paths with an error naming table and column.
"""

from __future__ import annotations

import time as clock

import struct
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal

import psycopg
import pyarrow as pa
import pytest
from psycopg import pq
from pyiceberg.catalog import Catalog, load_catalog

from pg2iceberg.demo.local_postgres import LocalPostgres
from pg2iceberg.iceberg.tables import IcebergTarget, bind_table
from pg2iceberg.iceberg.typemap import ValueError_
from pg2iceberg.source.connection import connect
from pg2iceberg.source.pgoutput import Insert, PgOutputDecoder, Relation
from pg2iceberg.source.schema import describe_table
from pg2iceberg.source.snapshot import SnapshotReader
from pg2iceberg.sqlident import quote_ident

UTC = timezone.utc


@dataclass(frozen=True)
class Expr:
    """A value written as an SQL expression (not as input text)."""

    sql: str


# Every string in here is the *input* text of a value (bound as a parameter and cast to the
# column type); Expr values are inlined SQL. Row 1 is NULL everywhere; row k+2 holds the
# k-th value of each list, and NULL where a column's list is shorter.
TEXTS = [
    "", " ", "plain", "it's", 'say "hi"', "back\\slash", "\\", '\\"', "a,b", "{braces}", "}{",
    "[0:1]={x}", "NULL", "null", "é", "e\u0301", "🎉👍🏽👨‍👩‍👧", "שלום עולם", "\u202eevil",
    "tab\tnew\nline\r", "\\x00ff", "t", "日本語", "x" * 5000,
]
ARRAY_TEXTS = [
    ['a"b', "c\\d", "e,f", "{g}", " h ", "NULL", None, "", "é🎉", "}", "{", "\\\"", "a b"],
    [],
    [None],
    ["NULL"],
    [""],
    ["שלום", "e\u0301"],
]
JSON_TEXT = ('{"a": 1,  "b": "\\u00e9\\ud83c\\udf89", "nested": {"arr": [1, 2.50, null, true, '
             '"x\\"y\\\\z"], "empty": {}, "k,{}": "v"}}')
TSTZ = [
    "2021-03-28 01:59:59.999999+01",  # Berlin, just before spring forward
    "2021-03-28 03:00:00+02",  # Berlin, just after
    "2021-10-31 02:30:00+02",  # Berlin, the ambiguous half hour, first time
    "2021-10-31 02:30:00+01",  # ... second time
    "2021-03-14 01:59:59-05",  # New York, spring forward
    "2021-03-14 03:00:00-04",
    "2021-11-07 01:30:00-04",  # New York, the ambiguous hour, first time
    "2021-11-07 01:30:00-05",  # ... second time
    "1900-01-01 00:00:00+00:09:21",  # odd historical offset, seconds included
    "1969-12-31 23:59:59.999999+00",
    "0001-01-01 00:00:00+00",
    "9999-12-31 23:59:59.999999+00",
]
COLUMNS: list[tuple[str, str, list[object]]] = [
    ("c_int2", "smallint", ["-32768", "32767", "0"]),
    ("c_int4", "integer", ["-2147483648", "2147483647", "0"]),
    ("c_int8", "bigint", ["-9223372036854775808", "9223372036854775807", "0"]),
    ("c_float4", "real", ["NaN", "Infinity", "-Infinity", "-0", "1.4e-45", "3.4028235e38", "1.1",
                          "1.17549435e-38", Expr("'Infinity'::real - 'Infinity'::real"), "0",
                          "-1.2345678e-40"]),
    ("c_float8", "double precision", ["NaN", "Infinity", "-Infinity", "-0", "5e-324",
                                      "1.7976931348623157e308", "0.1", "2.2250738585072014e-308",
                                      Expr("'Infinity'::float8 - 'Infinity'::float8"), "0",
                                      "-4.9e-320", "0.30000000000000004"]),
    ("c_num10_2", "numeric(10,2)", ["-99999999.99", "99999999.99", "0", "0.01", "-0.5"]),
    ("c_num38_10", "numeric(38,10)", ["-9999999999999999999999999999.9999999999",
                                      "9999999999999999999999999999.9999999999", "0.0000000001"]),
    ("c_num", "numeric", ["-99999999999999999999.999999999999999999",
                          "99999999999999999999.999999999999999999", "0.000000000000000001",
                          "1.50000000000000000000", "0", "-0.0", "123", "1e5"]),
    ("c_bool", "boolean", ["true", "false"]),
    ("c_text", "text", TEXTS),
    ("c_varchar", "varchar(5)", ["", "🎉🎉🎉🎉🎉", 'a"b,c', "\\", "e\u0301"]),
    ("c_char", "char(3)", ["a", "", "é🎉", "abc", " b"]),
    ("c_date", "date", ["1969-12-31", "0001-01-01", "9999-12-31", "1900-02-28", "2000-02-29",
                        "1970-01-01"]),
    ("c_time", "time", ["00:00:00", "23:59:59.999999", "12:34:56.000001"]),
    ("c_ts", "timestamp", ["1969-12-31 23:59:59.999999", "0001-01-01 00:00:00",
                           "9999-12-31 23:59:59.999999", "2021-03-28 02:30:00",
                           "1900-01-01 00:00:00.000001"]),
    ("c_tstz", "timestamptz", TSTZ),
    ("c_uuid", "uuid", ["00000000-0000-0000-0000-000000000000",
                        "ffffffff-ffff-ffff-ffff-ffffffffffff",
                        "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"]),
    ("c_bytea", "bytea", ["\\x", "\\x00ff7f5c22", Expr("convert_to('é🎉', 'UTF8')")]),
    ("c_json", "json", [JSON_TEXT, "[]", '"just a string"', "null", '{"nul": "\\u0000"}',
                        "1e400", ' { "spaced" : [ ] } ']),
    ("c_jsonb", "jsonb", [JSON_TEXT, "[]", '"just a string"', "null", '{"b": 1, "a": 2}',
                          "1e400", ' { "spaced" : [ ] } ']),
    ("c_int_arr", "integer[]", ["{}", "{1,NULL,-2147483648,2147483647}", "[0:1]={7,8}", "{NULL}",
                                " { 1 , 2 } "]),
    ("c_text_arr", "text[]", ARRAY_TEXTS),
    ("c_num_arr", "numeric(6,2)[]", ["{}", "{1.5,-9999.99,NULL,0}"]),
    ("c_tstz_arr", "timestamptz[]", [TSTZ[:4] + [None], [], TSTZ[4:]]),
    ("c_bool_arr", "boolean[]", ["{t,f,NULL}", "{}"]),
    ("c_enum", "mood", ["happy", "so-so, \"meh\"", "NULL", "🎉 party", "with\\backslash"]),
    ("c_enum_arr", "mood[]", [["happy", 'so-so, "meh"', None, "NULL", "🎉 party",
                               "with\\backslash"], []]),
    ("c_interval", "interval", ["1 year 2 months 3 days 04:05:06.789", "-1 day", "0",
                                "178000000 years", "-00:00:00.000001"]),
    ("c_inet", "inet", ["192.168.1.1", "10.0.0.0/8", "::1", "2001:db8::1/64", "192.168.1.1/24"]),
    ("c_money", "money", ["1234.56", "-92233720368547758.08", "0"]),
    ("c_timetz", "timetz", ["12:34:56.789+05:30", "00:00:00-12", "24:00:00+00"]),
    ("c_dom_int", "dom_int", ["-2147483648", "42"]),
    ("c_dom_text", "dom_text", ["🎉", "", "NULL"]),
    ("c_uuid_arr", "uuid[]", [["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", None], []]),
    ("c_bytea_arr", "bytea[]", ['{"\\\\x00ff",NULL,"\\\\x"}']),
    ("c_float8_arr", "double precision[]", ["{NaN,Infinity,-Infinity,-0,5e-324,NULL,0.1}"]),
    ("c_date_arr", "date[]", ["{1969-12-31,NULL,9999-12-31}"]),
    ("c_num_neg_scale", "numeric(5,-2)", ["12345", "-9999949"]),
    ("c_num_tiny", "numeric(3,5)", ["0.00123", "-0.00999"]),
    ("c_dom_int_arr", "dom_int_arr", ["{1,NULL,-3}", "{}"]),  # a domain over int[]
    ("c_arr_of_dom", "dom_int[]", ["{4,NULL}"]),  # an array of a domain over int
    ('Odd "Name", é', "numeric(4,1)", ["-999.9", "0.5"]),  # read through a quoted identifier
]
N_ROWS = 1 + max(len(values) for _, _, values in COLUMNS)
SLOT = "type_paths"  # a logical slot (and publication) that sees the all-types inserts

SCHEMA = """
CREATE TYPE mood AS ENUM ('happy', 'so-so, "meh"', 'NULL', '🎉 party', 'with\\backslash');
CREATE DOMAIN dom_int AS integer;
CREATE DOMAIN dom_text AS text;
CREATE DOMAIN dom_int_arr AS integer[];
"""


# -- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def db_url(postgres: LocalPostgres) -> Iterator[str]:
    """A database on the session server holding the all-types table and the refusal tables."""
    url = postgres.create_database("type_paths")
    try:
        with connect(url) as conn:
            conn.execute(SCHEMA)
            conn.execute(f"CREATE PUBLICATION {SLOT} FOR ALL TABLES")
            conn.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (SLOT,))
            _create_all_types(conn)
            for i, (type_sql, literal, _) in enumerate(REFUSALS):
                conn.execute(f'CREATE TABLE public.bad_{i} '
                             f'(id int PRIMARY KEY, "Bad ""col""" {type_sql})')
                conn.execute(f"INSERT INTO public.bad_{i} VALUES (1, NULL), (2, %s::{type_sql})",
                             (literal,))
        yield url
    finally:
        with connect(url) as conn:
            conn.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                         "WHERE slot_name = %s", (SLOT,))  # its WAL is not kept for the rest of the session


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """A SQL catalog in a temporary folder with the namespace ``t``."""
    folder = tmp_path_factory.mktemp("catalog")
    cat = load_catalog("default", type="sql", uri=f"sqlite:///{folder}/catalog.db",
                       warehouse=f"file://{folder}/wh")
    cat.create_namespace("t")
    return cat


def _create_all_types(conn: psycopg.Connection) -> None:
    cols = ", ".join(f"{quote_ident(name)} {type_sql}" for name, type_sql, _ in COLUMNS)
    conn.execute(f"CREATE TABLE public.all_types (id integer PRIMARY KEY, {cols})")
    for row in range(N_ROWS):
        exprs, params = ["%s"], [row + 1]
        for _, type_sql, values in COLUMNS:
            value = values[row - 1] if 0 < row <= len(values) else None
            if isinstance(value, Expr):
                exprs.append(f"({value.sql})::{type_sql}")
            else:
                exprs.append(f"%s::{type_sql}")
                params.append(value)
        conn.execute(f"INSERT INTO public.all_types VALUES ({', '.join(exprs)})", params)


# -- the two paths -------------------------------------------------------------------------


def _bind(url: str, catalog: Catalog, table: str) -> IcebergTarget:
    with connect(url) as conn:
        info = describe_table(conn, "public", table)
    assert info is not None
    return bind_table(catalog, "t", table, info)


def snapshot_path(url: str, target: IcebergTarget) -> pa.Table:
    """The table as the initial copy converts it: SnapshotReader batches → from_snapshot."""
    reader = SnapshotReader(url, None)
    try:
        parts = [target.from_snapshot(batch)
                 for batch, _ in reader.read(target.info, target.column_types, None)]
    finally:
        reader.close()
    return pa.concat_tables(parts)


def output_texts(url: str, table: str, columns: list[str]) -> dict[str, list[str | None]]:
    """Each column's values in the server's text output form, in key order.

    Read with raw libpq in text format, so each value is exactly its type's output function
    result under the pinned session settings — the same bytes pgoutput sends.
    """
    sql = (f"SELECT {', '.join(quote_ident(c) for c in columns)} "
           f"FROM public.{quote_ident(table)} ORDER BY id")
    with connect(url) as conn:
        res = conn.pgconn.exec_(sql.encode())
        assert res.status == pq.ExecStatus.TUPLES_OK, res.error_message
        return {name: [None if (v := res.get_value(r, i)) is None else bytes(v).decode()
                       for r in range(res.ntuples)]
                for i, name in enumerate(columns)}


def text_path(url: str, target: IcebergTarget) -> pa.Table:
    """The table as the stream converts it: pgoutput's text values → from_text."""
    names = [c.column.name for c in target.column_types]
    texts = output_texts(url, target.info.name, names)
    rows = len(texts[names[0]])
    return target.from_text({n: pa.array(v, pa.string()) for n, v in texts.items()}, rows)


def pgoutput_texts(url: str, table: str) -> list[tuple[object, ...]]:
    """The column values pgoutput really sent for the rows inserted into ``table``."""
    # The server runs with synchronous_commit=off: decoding sees a commit only once the WAL
    # writer has flushed it, and every row was its own transaction, so poll (bounded) until
    # all of them are decodable.
    deadline = clock.monotonic() + 20
    with connect(url) as conn:
        while True:
            changes = conn.execute(
                "SELECT data FROM pg_logical_slot_peek_binary_changes(%s, NULL, NULL, "
                "'proto_version', '1', 'publication_names', %s)", (SLOT, SLOT)).fetchall()
            decoder, relations, rows = PgOutputDecoder(), {}, []
            for (data,) in changes:
                message = decoder.decode(data)
                if isinstance(message, Relation):
                    relations[message.rel_id] = message.name
                elif isinstance(message, Insert) and relations[message.rel_id] == table:
                    rows.append(message.new)
            if len(rows) >= N_ROWS or clock.monotonic() > deadline:
                return rows
            clock.sleep(0.2)


def bitwise(table: pa.Table) -> pa.Table:
    """Floats (also in lists) replaced by their bit patterns: NaN == NaN, -0.0 != 0.0."""
    for i, field in enumerate(table.schema):
        arr = table.column(i).combine_chunks()
        if pa.types.is_floating(field.type):
            arr = arr.view(pa.int32() if field.type == pa.float32() else pa.int64())
        elif pa.types.is_large_list(field.type) and pa.types.is_floating(field.type.value_type):
            bits = pa.int32() if field.type.value_type == pa.float32() else pa.int64()
            arr = pa.LargeListArray.from_arrays(arr.offsets, arr.values.view(bits),
                                                mask=arr.is_null())
        else:
            continue
        table = table.set_column(i, field.name, arr)
    return table


# -- equality of the two paths ---------------------------------------------------------------


@pytest.fixture(scope="module")
def both_paths(db_url: str, catalog: Catalog) -> tuple[pa.Table, pa.Table]:
    """(snapshot path result, text path result) for the all-types table."""
    target = _bind(db_url, catalog, "all_types")
    return snapshot_path(db_url, target), text_path(db_url, target)


def test_paths_produce_identical_arrow_tables(both_paths: tuple[pa.Table, pa.Table]) -> None:
    snap, text = both_paths
    assert snap.num_rows == text.num_rows == N_ROWS
    assert snap.schema == text.schema
    snap_bits, text_bits = bitwise(snap), bitwise(text)
    differ = {}  # per column first, for a readable failure: column → (row, snapshot, text)
    for name in snap.column_names:
        pairs = zip(snap_bits.column(name).to_pylist(), text_bits.column(name).to_pylist())
        bad = [(row, a, b) for row, (a, b) in enumerate(pairs) if a != b]
        if bad:
            differ[name] = bad[0]
    assert not differ, "\n".join(f"{n}: row {r}: snapshot {a!r} != text {b!r}"
                                  for n, (r, a, b) in differ.items())
    assert snap_bits.equals(text_bits)


def test_text_inputs_are_what_pgoutput_sends(db_url: str) -> None:
    """The text path's inputs (output-function text over libpq) equal pgoutput's values."""
    names = ["id"] + [name for name, _, _ in COLUMNS]
    texts = output_texts(db_url, "all_types", names)
    from_libpq = [tuple(texts[n][r] for n in names) for r in range(N_ROWS)]
    assert pgoutput_texts(db_url, "all_types") == from_libpq


def test_every_column_has_a_null_row(both_paths: tuple[pa.Table, pa.Table]) -> None:
    for table in both_paths:
        first = table.slice(0, 1).to_pylist()[0]
        assert first.pop("id") == 1
        assert set(first.values()) == {None}, first


def _column(table: pa.Table, name: str) -> list[object]:
    """The column's values of the rows after the all-NULL row, in input order."""
    return table.column(name).to_pylist()[1:]


def _bits(value: float, fmt: str) -> bytes:
    return struct.pack(fmt, value)


@pytest.mark.parametrize("path", [0, 1], ids=["snapshot", "text"])
def test_cells_match_independent_expectations(both_paths: tuple[pa.Table, pa.Table],
                                              path: int) -> None:
    table = both_paths[path]
    assert _column(table, "c_int8")[:3] == [-2**63, 2**63 - 1, 0]
    assert _column(table, "c_int2")[:2] == [-2**15, 2**15 - 1]

    floats8 = _column(table, "c_float8")
    nan8 = struct.pack("<d", float("nan"))
    assert [_bits(v, "<d") for v in floats8[:8]] == [
        nan8, _bits(float("inf"), "<d"), _bits(float("-inf"), "<d"), b"\x00" * 7 + b"\x80",
        _bits(5e-324, "<d"), _bits(1.7976931348623157e308, "<d"), _bits(0.1, "<d"),
        _bits(2.2250738585072014e-308, "<d")]
    assert _bits(floats8[8], "<d") == nan8  # inf - inf: any NaN is stored as the canonical NaN
    floats4 = _column(table, "c_float4")
    assert _bits(floats4[4], "<f") == struct.pack("<I", 1)  # smallest subnormal
    assert _bits(floats4[6], "<f") == _bits(1.1, "<f")
    assert _bits(floats4[3], "<f") == b"\x00\x00\x00\x80"  # -0.0 keeps its sign

    assert _column(table, "c_num10_2")[:5] == [Decimal("-99999999.99"), Decimal("99999999.99"),
                                               Decimal(0), Decimal("0.01"), Decimal("-0.5")]
    assert _column(table, "c_num38_10")[1] == Decimal("9999999999999999999999999999.9999999999")
    assert _column(table, "c_num")[:4] == [Decimal("-99999999999999999999.999999999999999999"),
                                           Decimal("99999999999999999999.999999999999999999"),
                                           Decimal("1e-18"), Decimal("1.5")]
    assert _column(table, "c_num")[7] == Decimal(100000)

    assert _column(table, "c_tstz")[:8] == [
        datetime(2021, 3, 28, 0, 59, 59, 999999, UTC), datetime(2021, 3, 28, 1, 0, 0, tzinfo=UTC),
        datetime(2021, 10, 31, 0, 30, tzinfo=UTC), datetime(2021, 10, 31, 1, 30, tzinfo=UTC),
        datetime(2021, 3, 14, 6, 59, 59, tzinfo=UTC), datetime(2021, 3, 14, 7, 0, tzinfo=UTC),
        datetime(2021, 11, 7, 5, 30, tzinfo=UTC), datetime(2021, 11, 7, 6, 30, tzinfo=UTC)]
    lmt = timedelta(minutes=9, seconds=21)
    assert _column(table, "c_tstz")[8] == datetime(1900, 1, 1, tzinfo=UTC) - lmt
    assert _column(table, "c_tstz")[11] == datetime(9999, 12, 31, 23, 59, 59, 999999, UTC)
    assert _column(table, "c_ts")[:2] == [datetime(1969, 12, 31, 23, 59, 59, 999999),
                                          datetime(1, 1, 1)]
    assert _column(table, "c_date")[:3] == [date(1969, 12, 31), date(1, 1, 1), date(9999, 12, 31)]
    assert _column(table, "c_time")[:3] == [time(0), time(23, 59, 59, 999999), time(12, 34, 56, 1)]

    assert _column(table, "c_text")[:len(TEXTS)] == TEXTS
    # char(n) is blank-padded, as PostgreSQL shows it
    assert _column(table, "c_char")[:5] == ["a  ", "   ", "é🎉 ", "abc", " b "]
    assert _column(table, "c_text_arr")[:len(ARRAY_TEXTS)] == ARRAY_TEXTS
    assert _column(table, "c_int_arr")[:5] == [[], [1, None, -2**31, 2**31 - 1], [7, 8], [None],
                                               [1, 2]]
    assert _column(table, "c_num_arr")[1] == [Decimal("1.5"), Decimal("-9999.99"), None, Decimal(0)]
    assert _column(table, "c_tstz_arr")[0][:2] == [datetime(2021, 3, 28, 0, 59, 59, 999999, UTC),
                                                   datetime(2021, 3, 28, 1, 0, 0, tzinfo=UTC)]
    assert _column(table, "c_bool_arr")[:2] == [[True, False, None], []]
    assert _column(table, "c_enum_arr")[0] == ["happy", 'so-so, "meh"', None, "NULL", "🎉 party",
                                               "with\\backslash"]

    assert _column(table, "c_uuid")[2] == uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
    assert _column(table, "c_bytea")[:3] == [b"", b'\x00\xff\x7f\\"', "é🎉".encode()]
    assert _column(table, "c_json")[0] == JSON_TEXT  # json keeps its input text verbatim
    assert _column(table, "c_jsonb")[0] == (
        '{"a": 1, "b": "é🎉", "nested": {"arr": [1, 2.50, null, true, "x\\"y\\\\z"], '
        '"k,{}": "v", "empty": {}}}')  # jsonb: escapes resolved, shorter keys first
    assert _column(table, "c_jsonb")[4] == '{"a": 2, "b": 1}'

    assert _column(table, "c_interval")[:3] == ["P1Y2M3DT4H5M6.789S", "P-1D", "PT0S"]
    assert _column(table, "c_inet")[:2] == ["192.168.1.1", "10.0.0.0/8"]  # no "/32" added
    assert _column(table, "c_money")[0] == "$1,234.56"
    assert _column(table, "c_timetz")[0] == "12:34:56.789+05:30"
    assert _column(table, "c_dom_int")[:2] == [-2**31, 42]
    assert _column(table, "c_dom_text")[:3] == ["🎉", "", "NULL"]
    assert _column(table, "c_uuid_arr")[0] == [uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
                                                None]
    assert _column(table, "c_bytea_arr")[0] == [b"\x00\xff", None, b""]
    assert _column(table, "c_float8_arr")[0][1:] == [float("inf"), float("-inf"), -0.0, 5e-324,
                                                     None, 0.1]
    assert _column(table, "c_date_arr")[0] == [date(1969, 12, 31), None, date(9999, 12, 31)]
    assert _column(table, "c_num_neg_scale")[:2] == [Decimal(12300), Decimal(-9999900)]
    assert _column(table, "c_num_tiny")[:2] == [Decimal("0.00123"), Decimal("-0.00999")]
    assert _column(table, "c_dom_int_arr")[:2] == [[1, None, -3], []]
    assert _column(table, "c_arr_of_dom")[0] == [4, None]
    assert _column(table, 'Odd "Name", é')[:2] == [Decimal("-999.9"), Decimal("0.5")]


def test_iceberg_types(db_url: str, catalog: Catalog) -> None:
    target = _bind(db_url, catalog, "all_types")
    types = {f.name: str(f.field_type) for f in target.table.schema().fields}
    assert types["c_int2"] == types["c_int4"] == types["c_dom_int"] == "int"
    assert types["c_int8"] == "long"
    assert (types["c_float4"], types["c_float8"]) == ("float", "double")
    assert types["c_num10_2"] == "decimal(10, 2)"
    assert types["c_num"] == "decimal(38, 18)"
    assert types["c_num_arr"] == "list<decimal(6, 2)>"
    assert types["c_tstz_arr"] == "list<timestamptz>"
    assert types["c_enum_arr"] == types["c_text_arr"] == "list<string>"
    for name in ("c_text", "c_varchar", "c_char", "c_json", "c_jsonb", "c_enum", "c_interval",
                 "c_inet", "c_money", "c_timetz", "c_dom_text"):
        assert types[name] == "string", name
    assert (types["c_uuid"], types["c_bytea"], types["c_time"]) == ("uuid", "binary", "time")
    assert (types["c_num_neg_scale"], types["c_num_tiny"]) == ("decimal(7, 0)", "decimal(5, 5)")
    assert types["c_uuid_arr"] == "list<uuid>"
    assert types["c_dom_int_arr"] == types["c_arr_of_dom"] == "list<int>"


# -- refusals ------------------------------------------------------------------------------

# (column type, input text, what the message must mention)
REFUSALS: list[tuple[str, str, str]] = [
    ("numeric", "NaN", "NaN"),
    ("numeric(10,2)", "NaN", "NaN"),  # a constrained numeric holds NaN, never Infinity
    ("numeric", "Infinity", "Infinity"),
    ("numeric", "-Infinity", "Infinity"),
    ("numeric(6,2)[]", "{1.00,NaN}", "NaN"),
    ("numeric", "0.1234567890123456789", "fractional digits"),  # 19 > 18: never rounded
    ("numeric", "123456789012345678901", "integer digits"),  # 21 > 20
    ("date", "infinity", "infinity"),
    ("date", "-infinity", "infinity"),
    ("timestamp", "infinity", "infinity"),
    ("timestamptz", "-infinity", "infinity"),
    ("timestamptz[]", "{infinity}", "infinity"),
    ("date", "0044-03-15 BC", "year"),
    ("timestamp", "10000-01-01 00:00:00", "year"),
    ("time", "24:00:00", "24:00:00"),
    ("integer[]", "{{1,2},{3,4}}", "multi-dimensional"),
]


@pytest.mark.parametrize("path", ["snapshot", "text"])
@pytest.mark.parametrize("case", range(len(REFUSALS)),
                         ids=[f"{t}:{v}" for t, v, _ in REFUSALS])
def test_unrepresentable_values_are_refused(db_url: str, catalog: Catalog, case: int,
                                            path: str) -> None:
    type_sql, literal, mention = REFUSALS[case]
    table = f"bad_{case}"
    target = _bind(db_url, catalog, table)
    with pytest.raises(ValueError_) as caught:
        snapshot_path(db_url, target) if path == "snapshot" else text_path(db_url, target)
    message = str(caught.value)
    assert f"public.{table}" in message and 'Bad "col"' in message, message
    assert mention in message, message
