"""The table split every worker computes, and the config fingerprint workers must match."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from pg2iceberg.config import load_config
from pg2iceberg.errors import ConfigError
from pg2iceberg.materializer.assignment import assign
from pg2iceberg.runtime import fingerprint

TABLES = [f"public.t{i}" for i in range(11)]


def test_every_order_gives_the_same_even_split() -> None:
    first = assign(TABLES, ["w1", "w2", "w3"])
    for tables, workers in zip(itertools.permutations(TABLES[:4]), itertools.permutations(["w3", "w1", "w2"])):
        assert assign(list(tables) + TABLES[4:], list(workers)) == first
    assert sorted(t for ts in first.values() for t in ts) == sorted(TABLES)
    assert sorted(len(ts) for ts in first.values()) == [3, 4, 4]


def test_a_dead_worker_hands_over_and_gets_its_tables_back() -> None:
    both = assign(TABLES, ["w1", "w2"])
    assert assign(TABLES, ["w2"]) == {"w2": tuple(sorted(TABLES))}
    assert assign(TABLES, ["w2", "w1"]) == both
    assert assign(TABLES, []) == {}
    assert assign([], ["w1"]) == {"w1": ()}


def _config(tmp_path: Path, name: str, tables: str, catalog: str = "sqlite:///catalog.db") -> Path:
    path = tmp_path / name
    path.write_text(f"source:\n  postgres:\n    url: postgresql://u:pw@h/db\n"
                    f"sink:\n  catalog_uri: {catalog}\ntables:\n{tables}")
    return path


def test_fingerprint_names_what_differs_without_secrets(tmp_path: Path) -> None:
    writer = load_config(_config(tmp_path, "w.yaml", "  - name: public.a\n  - name: public.b\n",
                                 "postgresql://cat:hunter2@h/c"))
    same = load_config(_config(tmp_path, "s.yaml", "  - name: public.b\n  - name: public.a\n",
                               "postgresql://cat:hunter2@h/c"))
    fingerprint.check(same, fingerprint.fingerprint(writer))
    other = load_config(_config(tmp_path, "o.yaml", "  - name: public.a\n", "postgresql://cat:other@h/c2"))
    assert "hunter2" not in fingerprint.fingerprint(writer)
    with pytest.raises(ConfigError) as refused:
        fingerprint.check(other, fingerprint.fingerprint(writer))
    message = str(refused.value)
    assert "o.yaml" in message and "tables:" in message and "sink.catalog_uri:" in message
    assert "sink.warehouse" not in message and "hunter2" not in message and "other@" not in message
