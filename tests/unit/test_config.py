"""Config loading: defaults, interpolation, overrides, identifiers, errors, redaction, diff."""

import dataclasses
import textwrap
from pathlib import Path

import pytest

from pg2iceberg.config import Config, PostgresConfig, diff_config, load_config, parse_partition_field
from pg2iceberg.errors import ConfigError
from pg2iceberg.sqlident import display_qualified, parse_ident, parse_qualified_name, quote_ident

REPO = Path(__file__).resolve().parents[2]
MINIMAL = """
source:
  postgres:
    url: postgresql://repl:pw@db:5432/shop
tables:
  - name: public.orders
"""


def write(tmp_path: Path, text: str, name: str = "pg2iceberg.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None, **kwargs: object) -> Config:
    return load_config(write(tmp_path, text), env=env or {}, **kwargs)  # type: ignore[arg-type]


def error_of(tmp_path: Path, text: str, env: dict[str, str] | None = None, **kwargs: object) -> str:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text, env, **kwargs)
    return str(caught.value)


def assert_error(message: str, path: object, key: str, reason: str) -> None:
    assert message.startswith(f"{path}: {key}: "), message
    assert reason in message, message


# --- defaults and paths ------------------------------------------------------------------


def test_minimal_file_gets_the_contract_defaults(tmp_path):
    config = load(tmp_path, MINIMAL)
    base = tmp_path.resolve()
    assert config.path == base / "pg2iceberg.yaml"
    assert config.source.postgres.dsn == "postgresql://repl:pw@db:5432/shop"
    assert (config.source.publication_name, config.source.slot_name) == ("pg2iceberg_pub", "pg2iceberg_slot")
    sink = config.sink
    assert sink.catalog_type == "sql"
    assert sink.catalog_uri == f"sqlite:///{base}/catalog.db"
    assert dict(sink.catalog_props) == {}
    assert sink.warehouse == f"file://{base}/warehouse"
    assert sink.namespace == "pg2iceberg"
    assert (sink.s3_endpoint, sink.s3_access_key, sink.s3_secret_key, sink.s3_region) == (None,) * 4
    assert (sink.flush_interval_s, sink.flush_rows, sink.flush_bytes) == (10.0, 10_000, 64 * 1024**2)
    assert sink.materializer_interval_s == 10.0
    assert sink.target_file_size_bytes == 128 * 1024**2
    assert (sink.data_file_threshold, sink.delete_file_threshold) == (20, 10)
    assert sink.maintenance_interval_s == 3600.0
    assert sink.maintenance_retention_s == 168 * 3600.0
    assert sink.maintenance_grace_s == 1800.0
    assert config.stream.location == f"file://{base}/warehouse/_stream"
    assert config.state.postgres == config.source.postgres
    assert config.state.coordinator_schema == "_pg2iceberg"
    assert config.materializer_worker_id is None
    (table,) = config.tables
    assert (table.name, table.schema, table.table, table.iceberg_name) == ("public.orders", "public", "orders", "orders")
    assert (table.primary_key, table.partition) == (None, ())
    assert table.qualified_sql == '"public"."orders"'


def test_every_sink_value_is_read(tmp_path):
    config = load(tmp_path, MINIMAL + """
sink:
  catalog_type: rest
  catalog_uri: http://catalog:8181
  catalog_props: {warehouse: wh, header.x-tenant: 7, rest.sigv4-enabled: true}
  warehouse: s3://bucket/prefix/
  namespace: analytics
  s3_endpoint: http://127.0.0.1:9000
  s3_access_key: AKIA
  s3_secret_key: shh
  s3_region: eu-west-1
  flush_interval: 500ms
  flush_rows: "250"
  flush_bytes: 1GiB
  materializer_interval: 1m
  target_file_size: 500MB
  data_file_threshold: 5
  delete_file_threshold: 3
  maintenance_interval: 0s
  maintenance_retention: 1h30m
  maintenance_grace: 2d
state:
  postgres_url: host=state dbname=coord
  coordinator_schema: repl_meta
""")
    sink = config.sink
    assert sink.catalog_uri == "http://catalog:8181"
    assert dict(sink.catalog_props) == {"warehouse": "wh", "header.x-tenant": "7", "rest.sigv4-enabled": "true"}
    assert sink.warehouse == "s3://bucket/prefix"
    assert config.stream.location == "s3://bucket/prefix/_stream"
    assert (sink.namespace, sink.s3_endpoint, sink.s3_region) == ("analytics", "http://127.0.0.1:9000", "eu-west-1")
    assert (sink.s3_access_key, sink.s3_secret_key) == ("AKIA", "shh")
    assert (sink.flush_interval_s, sink.flush_rows, sink.flush_bytes) == (0.5, 250, 1024**3)
    assert (sink.materializer_interval_s, sink.target_file_size_bytes) == (60.0, 500_000_000)
    assert (sink.data_file_threshold, sink.delete_file_threshold) == (5, 3)
    assert (sink.maintenance_interval_s, sink.maintenance_retention_s, sink.maintenance_grace_s) == (0.0, 5400.0, 172800.0)
    assert config.state.postgres.dsn == "host=state dbname=coord"
    assert config.state.coordinator_schema == "repl_meta"


def test_non_sql_catalog_has_no_default_uri(tmp_path):
    config = load(tmp_path, MINIMAL + "sink: {catalog_type: glue}\n")
    assert config.sink.catalog_uri is None


def test_relative_paths_are_relative_to_the_config_folder(tmp_path, monkeypatch):
    folder = tmp_path / "conf"
    folder.mkdir()
    monkeypatch.chdir(tmp_path)
    config = load(folder, MINIMAL + """
sink:
  catalog_uri: sqlite:///state/cat.db
  warehouse: ../data/wh
stream:
  location: staged
""")
    base = folder.resolve()
    assert config.sink.catalog_uri == f"sqlite:///{base}/state/cat.db"
    assert config.sink.warehouse == f"file://{tmp_path.resolve()}/data/wh"
    assert config.stream.location == f"file://{base}/staged"


def test_absolute_paths_and_uris_stay(tmp_path):
    config = load(tmp_path, MINIMAL + """
sink:
  catalog_uri: sqlite:////var/lib/cat.db
  warehouse: /srv/wh
stream:
  location: s3://other/stream
""")
    assert config.sink.catalog_uri == "sqlite:////var/lib/cat.db"
    assert config.sink.warehouse == "file:///srv/wh"
    assert config.stream.location == "s3://other/stream"


def test_without_a_file_paths_are_relative_to_the_working_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config(None, env={"POSTGRES_URL": "postgresql://u@h/db", "TABLES": "public.a, sales.b"})
    base = Path.cwd()
    assert config.path is None
    assert config.sink.catalog_uri == f"sqlite:///{base}/catalog.db"
    assert config.sink.warehouse == f"file://{base}/warehouse"
    assert [t.name for t in config.tables] == ["public.a", "sales.b"]


def test_without_a_file_missing_values_name_the_environment():
    with pytest.raises(ConfigError) as caught:
        load_config(None, env={"TABLES": "public.a"})
    assert_error(str(caught.value), "<environment>", "source.postgres", "missing")


# --- interpolation ------------------------------------------------------------------------


def test_interpolation_replaces_variables_and_defaults(tmp_path):
    config = load(tmp_path, """
source:
  postgres:
    url: postgresql://repl:${PGPASSWORD}@${PGHOST:-localhost}:5432/shop
  logical:
    slot_name: ${SLOT:-fallback_slot}
sink:
  namespace: ns_${EMPTY:-dflt}
  catalog_props: {note: "cost $${NOT_A_VAR} and $5"}
tables: [public.orders]
""", env={"PGPASSWORD": "s3cret", "EMPTY": ""})
    assert config.source.postgres.dsn == "postgresql://repl:s3cret@localhost:5432/shop"
    assert config.source.slot_name == "fallback_slot"
    assert config.sink.namespace == "ns_dflt"
    assert config.sink.catalog_props["note"] == "cost ${NOT_A_VAR} and $5"


def test_unset_variable_without_default_names_variable_and_key(tmp_path):
    path = write(tmp_path, MINIMAL + "sink:\n  s3_secret_key: ${S3_SECRET}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert_error(str(caught.value), path, "sink.s3_secret_key", "environment variable S3_SECRET is not set")


def test_unset_variable_inside_a_list_names_the_index(tmp_path):
    message = error_of(tmp_path, MINIMAL + "  - name: ${SCHEMA}.items\n")
    assert_error(message, tmp_path / "pg2iceberg.yaml", "tables[1].name", "SCHEMA is not set")


def test_malformed_reference_is_an_error(tmp_path):
    message = error_of(tmp_path, MINIMAL + "sink: {namespace: '${1bad}'}\n")
    assert_error(message, tmp_path / "pg2iceberg.yaml", "sink.namespace", "malformed reference")


# --- errors: keys, types, values ------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "key", "reason"),
    [
        ("sink:\n  flush_intervall: 5s\n", "sink.flush_intervall", "unknown key; did you mean flush_interval?"),
        ("sinks: {}\n", "sinks", "unknown key; did you mean sink?"),
        ("source:\n  postgres: {url: 'postgresql://h/d', hots: x}\n", "source.postgres.hots", "unknown key"),
        ("stream: {where: x}\n", "stream.where", "unknown key"),
        ("state: {schema: x}\n", "state.schema", "unknown key"),
        ("materializer_worker_id: w1\n", "materializer_worker_id", "unknown key"),
    ],
)
def test_unknown_keys_are_named(tmp_path, extra, key, reason):
    text = "tables: [public.orders]\n" if extra.startswith("source") else MINIMAL
    message = error_of(tmp_path, text + extra)
    assert_error(message, tmp_path / "pg2iceberg.yaml", key, reason)


def test_unknown_key_in_a_table_entry_is_named(tmp_path):
    message = error_of(tmp_path, MINIMAL + "    iceberg: {partitions: [id]}\n")
    assert_error(message, tmp_path / "pg2iceberg.yaml", "tables[0].iceberg.partitions", "did you mean partition?")


@pytest.mark.parametrize(
    ("extra", "key", "reason"),
    [
        ("sink: {flush_rows: many}\n", "sink.flush_rows", "expected a whole number, got 'many'"),
        ("sink: {flush_rows: true}\n", "sink.flush_rows", "expected a whole number"),
        ("sink: {flush_rows: 0}\n", "sink.flush_rows", "must be at least 1"),
        ("sink: {data_file_threshold: 2.5}\n", "sink.data_file_threshold", "expected a whole number"),
        ("sink: {namespace: 123}\n", "sink.namespace", "expected text, got a whole number"),
        ("sink: {namespace: ''}\n", "sink", None),
        ("sink: [a, b]\n", "sink", "expected a mapping"),
        ("sink: {catalog_props: {nested: {a: 1}}}\n", "sink.catalog_props.nested", "expected text"),
        ("sink: {catalog_props: [a]}\n", "sink.catalog_props", "expected a mapping"),
        ("sink: {flush_interval: 10}\n", "sink.flush_interval", "durations need a unit"),
        ("sink: {flush_interval: 10x}\n", "sink.flush_interval", "not a duration"),
        ("sink: {flush_interval: 0s}\n", "sink.flush_interval", "must be longer than 0s"),
        ("sink: {materializer_interval: 0ms}\n", "sink.materializer_interval", "must be longer than 0s"),
        ("sink: {maintenance_grace: [1s]}\n", "sink.maintenance_grace", "durations need a unit"),
        ("sink: {flush_bytes: 64XB}\n", "sink.flush_bytes", "unknown size unit"),
        ("sink: {target_file_size: 0}\n", "sink.target_file_size", "must be at least 1 bytes"),
        ("source: {postgres: {url: 'postgresql://h/d'}, logical: {slot_name: My-Slot}}\n", "source.logical.slot_name", "a-z, 0-9"),
        ("state: {coordinator_schema: " + "x" * 64 + "}\n", "state.coordinator_schema", "longer than 63 bytes"),
    ],
)
def test_wrong_values_name_key_and_reason(tmp_path, extra, key, reason):
    if extra.startswith("source"):
        text = "tables: [public.orders]\n" + extra
    else:
        text = MINIMAL + extra
    if reason is None:  # an empty text falls back to the default
        assert load(tmp_path, text).sink.namespace == "pg2iceberg"
        return
    assert_error(error_of(tmp_path, text), tmp_path / "pg2iceberg.yaml", key, reason)


@pytest.mark.parametrize(
    ("postgres", "key", "reason"),
    [
        ("{}", "source.postgres", "missing; give url, or host and database"),
        ("{host: db}", "source.postgres.database", "missing"),
        ("{database: shop}", "source.postgres.host", "missing"),
        ("{url: 'postgresql://h/d', host: x, password: y}", "source.postgres", "give either url or host, password, not both"),
        ("{host: db, database: shop, port: 70000}", "source.postgres.port", "at most 65535"),
        ("{host: db, database: shop, sslmode: sometimes}", "source.postgres.sslmode", "must be one of disable"),
        ("{url: 'not a dsn'}", "source.postgres.url", "not a valid PostgreSQL URL"),
        ("[x]", "source.postgres", "expected a mapping"),
    ],
)
def test_bad_postgres_settings(tmp_path, postgres, key, reason):
    text = f"source:\n  postgres: {postgres}\ntables: [public.orders]\n"
    assert_error(error_of(tmp_path, text), tmp_path / "pg2iceberg.yaml", key, reason)


def test_missing_source_is_named(tmp_path):
    message = error_of(tmp_path, "tables: [public.orders]\n")
    assert_error(message, tmp_path / "pg2iceberg.yaml", "source.postgres", "missing")


def test_bad_state_url_is_named(tmp_path):
    message = error_of(tmp_path, MINIMAL + "state: {postgres_url: 'nonsense dsn'}\n")
    assert_error(message, tmp_path / "pg2iceberg.yaml", "state.postgres_url", "not a valid PostgreSQL URL")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("postgresql://u:topsecret@h:notaport/db", "the port must be a number, got 'notaport'"),
        ("postgresql://u:topsecret@h/db?topsecret=1", "not a valid PostgreSQL URL"),
        ("host=h password=topsecret junk", "not a valid PostgreSQL URL"),
    ],
)
def test_invalid_url_error_does_not_repeat_the_password(tmp_path, url, reason):
    message = error_of(tmp_path, f"source: {{postgres: {{url: '{url}'}}}}\ntables: [a.b]\n")
    assert_error(message, tmp_path / "pg2iceberg.yaml", "source.postgres.url", reason)
    assert "topsecret" not in message


@pytest.mark.parametrize(
    ("tables", "reason"),
    [
        ("tables: []\n", "no tables"),
        ("", "missing; list at least one"),
        ("tables: {public.orders: {}}\n", "expected a list"),
    ],
)
def test_the_table_list_is_required(tmp_path, tables, reason):
    text = "source: {postgres: {url: 'postgresql://h/d'}}\n" + tables
    assert_error(error_of(tmp_path, text), tmp_path / "pg2iceberg.yaml", "tables", reason)


def test_host_form_builds_a_conninfo(tmp_path):
    config = load(tmp_path, """
source:
  postgres: {host: db.internal, port: "6432", database: shop, user: repl, password: "p w'x", sslmode: require}
tables: [public.orders]
""")
    dsn = config.source.postgres.dsn
    for part in ("host=db.internal", "port=6432", "dbname=shop", "user=repl", "sslmode=require"):
        assert part in dsn
    assert "p w\\'x" in dsn


# --- YAML-level errors ------------------------------------------------------------------------


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    path = write(tmp_path, "source:\n  postgres: [unclosed\n")
    with pytest.raises(ConfigError, match=rf"^{path}: line \d+, column \d+: "):
        load_config(path, env={})


def test_duplicate_keys_are_refused(tmp_path):
    path = write(tmp_path, MINIMAL + "sink: {}\nsink: {}\n")
    with pytest.raises(ConfigError, match="duplicate key 'sink'"):
        load_config(path, env={})


def test_top_level_must_be_a_mapping(tmp_path):
    path = write(tmp_path, "- a\n- b\n")
    with pytest.raises(ConfigError, match=rf"^{path}: <top level>: expected sections"):
        load_config(path, env={})


def test_missing_file_is_a_config_error(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=rf"^{path}: cannot read the config file"):
        load_config(path, env={})


# --- environment and overrides ------------------------------------------------------------------


def test_environment_overrides_the_file(tmp_path):
    env = {
        "POSTGRES_URL": "postgresql://env@envhost/envdb",
        "SLOT_NAME": "env_slot",
        "PUBLICATION_NAME": "env_pub",
        "WAREHOUSE": "s3://env-bucket/wh",
        "NAMESPACE": "env_ns",
        "S3_ENDPOINT": "http://minio:9000",
        "S3_ACCESS_KEY": "envkey",
        "S3_SECRET_KEY": "envsecret",
        "S3_REGION": "us-east-1",
        "STATE_POSTGRES_URL": "postgresql://state@statehost/coord",
        "MATERIALIZER_WORKER_ID": "worker-7",
        "UNRELATED": "x",
    }
    config = load(tmp_path, """
source:
  postgres: {host: filehost, database: filedb}
  logical: {slot_name: file_slot, publication_name: file_pub}
sink: {warehouse: filewh, namespace: file_ns}
tables: [public.orders]
""", env=env)
    assert config.source.postgres.dsn == "postgresql://env@envhost/envdb"
    assert (config.source.slot_name, config.source.publication_name) == ("env_slot", "env_pub")
    assert (config.sink.warehouse, config.sink.namespace) == ("s3://env-bucket/wh", "env_ns")
    assert config.stream.location == "s3://env-bucket/wh/_stream"
    sink = config.sink
    assert (sink.s3_endpoint, sink.s3_access_key, sink.s3_secret_key, sink.s3_region) == (
        "http://minio:9000", "envkey", "envsecret", "us-east-1")
    assert config.state.postgres.dsn == "postgresql://state@statehost/coord"
    assert config.materializer_worker_id == "worker-7"


def test_empty_environment_variables_do_not_override(tmp_path):
    config = load(tmp_path, MINIMAL, env={"SLOT_NAME": "", "TABLES": "", "POSTGRES_URL": ""})
    assert config.source.slot_name == "pg2iceberg_slot"
    assert config.source.postgres.dsn == "postgresql://repl:pw@db:5432/shop"
    assert [t.name for t in config.tables] == ["public.orders"]


def test_precedence_is_file_then_environment_then_overrides(tmp_path):
    text = MINIMAL.replace("tables:", "  logical: {slot_name: file_slot}\ntables:")
    assert load(tmp_path, text).source.slot_name == "file_slot"
    assert load(tmp_path, text, env={"SLOT_NAME": "env_slot"}).source.slot_name == "env_slot"
    config = load(tmp_path, text, env={"SLOT_NAME": "env_slot", "MATERIALIZER_WORKER_ID": "env-w"},
                  overrides={"source.logical.slot_name": "flag_slot", "sink.flush_rows": 5,
                             "materializer_worker_id": "flag-w", "sink.namespace": None})
    assert config.source.slot_name == "flag_slot"
    assert config.sink.flush_rows == 5
    assert config.materializer_worker_id == "flag-w"
    assert config.sink.namespace == "pg2iceberg"


def test_tables_from_the_environment_replace_the_list_keeping_file_settings(tmp_path):
    config = load(tmp_path, """
source: {postgres: {url: 'postgresql://h/d'}}
tables:
  - name: public.orders
    iceberg: {name: orders_v2, partition: ["day(created_at)"]}
  - name: public.customers
""", env={"TABLES": "sales.items, PUBLIC.Orders"})
    assert [t.name for t in config.tables] == ["sales.items", "public.orders"]
    items, orders = config.tables
    assert (items.iceberg_name, items.partition, items.primary_key) == ("items", (), None)
    assert (orders.iceberg_name, orders.partition) == ("orders_v2", ("day(created_at)",))


def test_tables_override_from_the_command_line(tmp_path):
    config = load(tmp_path, MINIMAL, env={"TABLES": "a.b"}, overrides={"tables": ["public.orders", "x.y"]})
    assert [t.name for t in config.tables] == ["public.orders", "x.y"]


def test_bad_environment_value_names_the_environment_and_variable(tmp_path):
    message = error_of(tmp_path, MINIMAL, env={"TABLES": "public.orders,orphan"})
    assert_error(message, "<environment>", "tables[1]", "needs a schema")
    assert "(set by TABLES)" in message
    message = error_of(tmp_path, MINIMAL, env={"SLOT_NAME": "Bad-Slot"})
    assert_error(message, "<environment>", "source.logical.slot_name", "a-z, 0-9")
    assert "SLOT_NAME" in message
    message = error_of(tmp_path, MINIMAL, env={"TABLES": "a.b,A.B"})
    assert_error(message, "<environment>", "tables[1]", "named twice")


def test_bad_override_names_the_command_line(tmp_path):
    message = error_of(tmp_path, MINIMAL, overrides={"sink.flush_interval": "soon"})
    assert_error(message, "<command line>", "sink.flush_interval", "not a duration")
    message = error_of(tmp_path, MINIMAL, overrides={"sink.flush_intervall": "5s"})
    assert_error(message, "<command line>", "sink.flush_intervall", "unknown key")
    message = error_of(tmp_path, MINIMAL, overrides={"materializer_worker_id": "  "})
    assert_error(message, "<command line>", "materializer_worker_id", "must not be empty")


def test_postgres_url_override_replaces_host_fields(tmp_path):
    text = "source:\n  postgres: {host: h, database: d, password: filepw}\ntables: [a.b]\n"
    config = load(tmp_path, text, overrides={"source.postgres.url": "postgresql://flag@x/y"})
    assert config.source.postgres.dsn == "postgresql://flag@x/y"


# --- aliases ---------------------------------------------------------------------------------------


def test_go_era_threshold_names_are_aliases(tmp_path):
    config = load(tmp_path, MINIMAL + "sink: {compaction_data_files: 7, compaction_delete_files: 3}\n")
    assert (config.sink.data_file_threshold, config.sink.delete_file_threshold) == (7, 3)


def test_alias_and_canonical_name_together_is_an_error(tmp_path):
    message = error_of(tmp_path, MINIMAL + "sink: {compaction_data_files: 7, data_file_threshold: 8}\n")
    assert_error(message, tmp_path / "pg2iceberg.yaml", "sink.compaction_data_files", "another name for sink.data_file_threshold")


def test_alias_values_are_validated_under_their_own_name(tmp_path):
    message = error_of(tmp_path, MINIMAL + "sink: {compaction_delete_files: lots}\n")
    assert_error(message, tmp_path / "pg2iceberg.yaml", "sink.compaction_delete_files", "expected a whole number")


def test_override_of_a_threshold_beats_the_file_alias(tmp_path):
    text = MINIMAL + "sink: {compaction_data_files: 7}\n"
    assert load(tmp_path, text, overrides={"sink.data_file_threshold": 9}).sink.data_file_threshold == 9
    assert load(tmp_path, text, overrides={"sink.compaction_data_files": 4}).sink.data_file_threshold == 4


# --- identifiers and tables ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "schema", "table", "display"),
    [
        ("public.orders", "public", "orders", "public.orders"),
        ("Public.Orders", "public", "orders", "public.orders"),
        ('"Public"."Orders"', "Public", "Orders", '"Public"."Orders"'),
        ('"My Schema"."Odd.Name"', "My Schema", "Odd.Name", '"My Schema"."Odd.Name"'),
        ('sales."say ""hi"""', "sales", 'say "hi"', 'sales."say ""hi"""'),
        (" sales . items ", "sales", "items", "sales.items"),
        ("Straße.Ärger", "straße", "Ärger", "straße.Ärger"),
        ('"日本"."表"', "日本", "表", "日本.表"),
        ("s.t$1", "s", "t$1", "s.t$1"),
        ('s."1st"', "s", "1st", 's."1st"'),
    ],
)
def test_qualified_names_follow_postgresql_rules(text, schema, table, display):
    assert parse_qualified_name(text) == (schema, table)
    assert display_qualified(schema, table) == display
    assert parse_qualified_name(display) == (schema, table)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("orders", "needs a schema"),
        ("db.public.orders", "3 parts"),
        ('"unterminated.x', "unterminated"),
        ('"".x', "cannot be empty"),
        ("public.", "expected an identifier"),
        ("public.1orders", "expected an identifier"),
        ("public.my-table", "unexpected '-'"),
        ("", "cannot be empty"),
        ("s." + "x" * 64, "longer than 63 bytes"),
    ],
)
def test_bad_qualified_names(text, reason):
    with pytest.raises(ValueError, match=reason):
        parse_qualified_name(text)


def test_quote_ident_always_quotes_and_escapes():
    assert quote_ident("orders") == '"orders"'
    assert quote_ident('Odd"Name') == '"Odd""Name"'
    assert parse_ident(quote_ident('a"."b')) == 'a"."b'


def test_table_entries_parse_names_keys_and_iceberg_settings(tmp_path):
    config = load(tmp_path, """
source: {postgres: {url: 'postgresql://h/d'}}
tables:
  - name: '"My Schema"."Odd.Name"'
    primary_key: [Id, '"Tenant"']
    iceberg: {name: odd_name}
  - Sales.Items
  - name: '"Sales"."Items"'
    iceberg: {name: items_quoted}
  - s."MixedCase"
""")
    odd, items, upper_items, mixed = config.tables
    assert (odd.schema, odd.table, odd.name) == ("My Schema", "Odd.Name", '"My Schema"."Odd.Name"')
    assert odd.primary_key == ("id", "Tenant")
    assert odd.iceberg_name == "odd_name"
    assert odd.qualified_sql == '"My Schema"."Odd.Name"'
    assert (items.schema, items.table, items.iceberg_name) == ("sales", "items", "items")
    assert upper_items.name == '"Sales"."Items"'
    assert upper_items.iceberg_name == "items_quoted"
    assert (mixed.name, mixed.iceberg_name) == ('s."MixedCase"', "MixedCase")
    assert config.table('"Sales"."Items"') is upper_items
    assert config.table("SALES.items") is items


def test_table_lookup_errors():
    config = load_config(None, env={"POSTGRES_URL": "postgresql://h/d", "TABLES": "public.a"})
    with pytest.raises(ConfigError, match="not a configured table"):
        config.table("public.b")
    with pytest.raises(ConfigError, match="needs a schema"):
        config.table("a")


@pytest.mark.parametrize(
    ("entry", "key", "reason"),
    [
        ("- name: orders\n", "tables[1].name", "needs a schema"),
        ("- {primary_key: [id]}\n", "tables[1].name", "missing"),
        ("- name: public.ORDERS\n", "tables[1]", "public.orders is configured twice (also at tables[0])"),
        ("- name: sales.orders\n", "tables[1].iceberg.name", "public.orders and sales.orders both map to Iceberg table pg2iceberg.orders; give one of them another iceberg.name"),
        ("- {name: sales.x, iceberg: {name: Orders}}\n", "tables[1].iceberg.name", "both map to Iceberg table"),
        ("- {name: s.x, primary_key: []}\n", "tables[1].primary_key", "must not be empty"),
        ("- {name: s.x, primary_key: id}\n", "tables[1].primary_key", "expected a list"),
        ("- {name: s.x, primary_key: [id, ID]}\n", "tables[1].primary_key", "names a column twice"),
        ("- {name: s.x, primary_key: ['bad col']}\n", "tables[1].primary_key[0]", "unexpected"),
        ("- {name: s.x, iceberg: {partition: id}}\n", "tables[1].iceberg.partition", "expected a list"),
        ("- {name: s.x, iceberg: []}\n", "tables[1].iceberg", "expected a mapping"),
        ("- 42\n", "tables[1]", "expected a mapping"),
    ],
)
def test_bad_table_entries(tmp_path, entry, key, reason):
    message = error_of(tmp_path, MINIMAL + "  " + entry)
    assert_error(message, tmp_path / "pg2iceberg.yaml", key, reason)


# --- partitions --------------------------------------------------------------------------------------------


def test_partition_fields_are_validated_and_normalised(tmp_path):
    config = load(tmp_path, """
source: {postgres: {url: 'postgresql://h/d'}}
tables:
  - name: public.events
    iceberg:
      partition: [tenant, "DAY(Created_At)", "bucket[16](id)", " truncate [ 4 ] ( code ) ", "hour(\\"Event Time\\")", year(d), month(d), '"day(x)"']
""")
    (table,) = config.tables
    assert table.partition == (
        "tenant", "day(created_at)", "bucket[16](id)", "truncate[4](code)", 'hour("Event Time")',
        "year(d)", "month(d)", '"day(x)"',
    )
    fields = table.partition_fields
    assert (fields[2].transform, fields[2].column, fields[2].width) == ("bucket", "id", 16)
    assert (fields[4].transform, fields[4].column) == ("hour", "Event Time")
    assert (fields[7].transform, fields[7].column) == ("identity", "day(x)")


@pytest.mark.parametrize(
    ("field", "reason"),
    [
        ("week(ts)", "unknown transform 'week'"),
        ("bucket(id)", "bucket needs a positive whole number"),
        ("bucket[0](id)", "bucket needs a positive whole number"),
        ("truncate[-1](code)", "truncate needs a positive whole number"),
        ("truncate[x](code)", "truncate needs a positive whole number"),
        ("day[3](ts)", "day takes no [...] argument"),
        ("day()", "cannot be empty"),
        ("day(a, b)", "unexpected ','"),
        ("", "cannot be empty"),
        ("two words", "unexpected 'w'"),
        ("id", "id is given twice"),
    ],
)
def test_bad_partition_fields_name_their_index(tmp_path, field, reason):
    text = MINIMAL + f"    iceberg: {{partition: [id, '{field}']}}\n"
    message = error_of(tmp_path, text)
    assert_error(message, tmp_path / "pg2iceberg.yaml", "tables[0].iceberg.partition[1]", reason)


def test_partition_field_must_be_text(tmp_path):
    message = error_of(tmp_path, MINIMAL + "    iceberg: {partition: [id, 7]}\n")
    assert_error(message, tmp_path / "pg2iceberg.yaml", "tables[0].iceberg.partition[1]", "expected text")


def test_parse_partition_field_round_trips():
    for text in ("id", "bucket[8](id)", 'truncate[2]("Odd Col")', "hour(ts)"):
        assert str(parse_partition_field(text)) == text


# --- redaction ------------------------------------------------------------------------------------------------


def test_no_secret_appears_in_repr_or_str(tmp_path):
    config = load(tmp_path, """
source:
  postgres: {host: db, database: shop, user: repl, password: "pg-pass-1"}
sink:
  catalog_type: sql
  catalog_uri: postgresql+psycopg://cat:cat-pass-2@catdb/catalog
  catalog_props: {s3.secret-access-key: prop-secret-3, token: tok-4, client.credential: cred-5, header.X-Api-Key: key-6, uri: visible}
  s3_access_key: access-7
  s3_secret_key: secret-8
state:
  postgres_url: postgresql://coord:state-pass-9@statedb/coord?sslmode=require&password=query-pass-10
tables: [public.orders]
""")
    secrets = ["pg-pass-1", "cat-pass-2", "prop-secret-3", "tok-4", "cred-5", "key-6", "access-7", "secret-8", "state-pass-9", "query-pass-10"]
    for text in (repr(config), str(config), repr(config.sink), str(config.source), repr(config.state)):
        for secret in secrets:
            assert secret not in text
    assert "visible" in repr(config)
    assert "postgresql://coord:***@statedb/coord?sslmode=require&password=***" == config.state.postgres.redacted
    assert "password=***" in str(config.source.postgres)
    assert "user=repl" in str(config.source.postgres)
    assert "pg-pass-1" in config.source.postgres.dsn


@pytest.mark.parametrize(
    ("dsn", "redacted"),
    [
        ("postgresql://u:p@h/db", "postgresql://u:***@h/db"),
        ("postgres://u@h/db", "postgres://u@h/db"),
        ("postgresql://u:p@h1:5432,h2:5433/db", "postgresql://u:***@h1:5432,h2:5433/db"),
        ("postgresql://u:p%40ss@h?password=x&sslmode=require", "postgresql://u:***@h?password=***&sslmode=require"),
        ("host=h password='it\\'s secret' user=u", "host=h password=*** user=u"),
        ("host=h password = plain user=u", "host=h password = *** user=u"),
        ("host=h sslpassword=x", "host=h sslpassword=***"),
    ],
)
def test_postgres_redaction(dsn, redacted):
    assert PostgresConfig(dsn).redacted == redacted
    assert repr(PostgresConfig(dsn)) == f"PostgresConfig({redacted!r})"


# --- diff ---------------------------------------------------------------------------------------------------------


def test_diff_splits_hot_and_restart_changes(tmp_path):
    old = load(tmp_path, MINIMAL)
    hot = dataclasses.replace(
        old.sink, flush_interval_s=1.0, flush_rows=1, flush_bytes=1, materializer_interval_s=1.0,
        target_file_size_bytes=1, data_file_threshold=1, delete_file_threshold=1,
        maintenance_interval_s=1.0, maintenance_retention_s=1.0, maintenance_grace_s=1.0,
    )
    diff = diff_config(old, dataclasses.replace(old, sink=hot))
    assert diff.hot == (
        "sink.flush_interval", "sink.flush_rows", "sink.flush_bytes", "sink.materializer_interval",
        "sink.target_file_size", "sink.data_file_threshold", "sink.delete_file_threshold",
        "sink.maintenance_interval", "sink.maintenance_retention", "sink.maintenance_grace",
    )
    assert diff.restart == ()
    assert diff_config(old, old).empty


def test_diff_reports_restart_only_changes(tmp_path):
    old = load(tmp_path, MINIMAL)
    new = load(tmp_path, """
source:
  postgres: {url: 'postgresql://repl:other@db:5432/shop'}
  logical: {slot_name: s2, publication_name: p2}
sink: {catalog_type: rest, catalog_uri: 'http://c', warehouse: s3://b/w, namespace: n2, s3_region: r, flush_rows: 5}
state: {coordinator_schema: other}
tables:
  - name: public.orders
    iceberg: {partition: [id]}
  - name: public.more
""")
    diff = diff_config(old, new)
    assert diff.hot == ("sink.flush_rows",)
    assert set(diff.restart) == {
        "source.postgres", "source.logical.publication_name", "source.logical.slot_name",
        "sink.catalog_type", "sink.catalog_uri", "sink.warehouse", "sink.namespace", "sink.s3_region",
        "stream.location", "state.postgres_url", "state.coordinator_schema", "tables",
        "tables[public.orders].iceberg.partition",
    }
    assert "other" not in repr(diff)


# --- the example ------------------------------------------------------------------------------------------------------


def test_example_config_loads_with_defaults(monkeypatch):
    example = REPO / "config.example.yaml"
    config = load_config(example, env={"PGPASSWORD": "example-pw"})
    assert config.source.postgres.dsn == "postgresql://postgres:example-pw@localhost:5432/postgres"
    assert "example-pw" not in repr(config)
    assert config.stream.location == f"file://{REPO}/warehouse/_stream"
    assert config.sink.catalog_uri == f"sqlite:///{REPO}/catalog.db"
    with monkeypatch.context() as patch:
        patch.chdir(REPO)
        defaults = load_config(None, env={"POSTGRES_URL": "postgresql://h/d", "TABLES": "public.orders"})
    assert config.sink == defaults.sink
    assert config.tables == defaults.tables
    assert config.state.coordinator_schema == defaults.state.coordinator_schema
    assert (config.source.slot_name, config.source.publication_name) == (defaults.source.slot_name, defaults.source.publication_name)


def test_example_config_needs_pgpassword():
    with pytest.raises(ConfigError, match="source.postgres.url: environment variable PGPASSWORD is not set"):
        load_config(REPO / "config.example.yaml", env={})


def test_config_is_immutable(tmp_path):
    config = load(tmp_path, MINIMAL + "sink: {catalog_props: {a: b}}\n")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.sink.flush_rows = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.sink.catalog_props["a"] = "c"  # type: ignore[index]
    assert isinstance(config.tables, tuple)


def test_yaml_anchors_and_merge_keys_are_allowed(tmp_path):
    config = load(tmp_path, MINIMAL + """
  - &shared {name: sales.a, primary_key: [id]}
  - {<<: *shared, name: sales.b}
""")
    assert [t.primary_key for t in config.tables] == [None, ("id",), ("id",)]
