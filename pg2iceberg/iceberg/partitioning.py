"""Partition specs from the config's ``tables[].iceberg.partition`` expressions."""

from __future__ import annotations

import re

from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.transforms import (
    BucketTransform, DayTransform, HourTransform, IdentityTransform, MonthTransform, Transform,
    TruncateTransform, YearTransform,
)

from pg2iceberg.errors import ConfigError

_EXPR = re.compile(r"^\s*(?:(\w+)(?:\[(\d+)\])?\((.+)\)|(.+?))\s*$")
_SIMPLE = {"year": YearTransform, "month": MonthTransform, "day": DayTransform, "hour": HourTransform}


def parse_transform(expr: str) -> tuple[Transform, str]:
    """``'bucket[16](id)'`` → (BucketTransform(16), 'id'); ``'region'`` → identity."""
    match = _EXPR.match(expr)
    if not match:
        raise ConfigError(f"partition expression {expr!r} is not understood")
    name, arg, column, bare = match.groups()
    if bare is not None:
        return IdentityTransform(), bare.strip().strip('"')
    column = column.strip().strip('"')
    if name in _SIMPLE and arg is None:
        return _SIMPLE[name](), column
    if name == "identity" and arg is None:
        return IdentityTransform(), column
    if name == "bucket" and arg:
        return BucketTransform(int(arg)), column
    if name == "truncate" and arg:
        return TruncateTransform(int(arg)), column
    raise ConfigError(f"partition expression {expr!r}: unknown transform {name!r}")


def build_partition_spec(schema: Schema, exprs: tuple[str, ...]) -> PartitionSpec:
    """Build a spec whose fields get ids from 1000 up, named ``<column>_<transform>``."""
    fields = []
    for offset, expr in enumerate(exprs):
        transform, column = parse_transform(expr)
        try:
            source = schema.find_field(column)
        except ValueError as exc:
            raise ConfigError(f"partition expression {expr!r}: no column {column!r}") from exc
        if not transform.can_transform(source.field_type):
            raise ConfigError(
                f"partition expression {expr!r}: {transform} cannot apply to {source.field_type}")
        suffix = str(transform).split("[")[0].lower()
        fields.append(PartitionField(source_id=source.field_id, field_id=1000 + offset,
                                     transform=transform,
                                     name=column if suffix == "identity" else f"{column}_{suffix}"))
    return PartitionSpec(*fields)
