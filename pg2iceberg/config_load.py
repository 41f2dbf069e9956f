"""The raw config tree: YAML, ``${VAR}`` interpolation, layered overrides and typed getters.

Nothing here knows the config model; :mod:`pg2iceberg.config` builds the model from a
:class:`Node`. Every error names where the value came from (the file, ``<environment>`` or
``<command line>``), its key path and the reason.
"""

import difflib
import os
import re
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import yaml

from pg2iceberg.errors import ConfigError
from pg2iceberg.units import parse_duration, parse_size

ENVIRONMENT = "<environment>"
COMMAND_LINE = "<command line>"

_MISSING: Any = object()
_REFERENCE = re.compile(
    r"\$\$\{|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<has_default>:-(?P<default>[^}]*))?\}|\$\{"
)
_URI_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_INTEGER = re.compile(r"\s*[+-]?\d+\s*")


class _UniqueKeyLoader(yaml.SafeLoader):
    """Safe YAML loader that refuses a key given twice in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
        return super().construct_mapping(node, deep)


def read_yaml(path: Path, label: str) -> dict[str, Any]:
    """Read the config file into a mapping (an empty file is an empty mapping)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(f"{label}: cannot read the config file: {reason}") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "YAML"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{label}: {where}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        got = kind(data)
        raise ConfigError(
            f"{label}: <top level>: expected sections (source:, sink:, ...), got {got}"
        )
    return data


def interpolate(value: Any, env: Mapping[str, str], label: str, path: str = "") -> Any:
    """Replace ``${VAR}`` and ``${VAR:-default}`` in every string of a tree.

    ``${VAR:-default}`` uses the default when VAR is unset or empty; ``$${`` is a literal ``${``.
    """
    if isinstance(value, dict):
        return {k: interpolate(v, env, label, join(path, str(k))) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env, label, f"{path}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        name = match.group("name")
        if name is None:
            raise ConfigError(
                f"{label}: {path}: malformed reference; write ${{NAME}} or ${{NAME:-default}}"
            )
        found = env.get(name)
        if match.group("has_default"):
            return found if found else match.group("default")
        if found is None:
            raise ConfigError(
                f"{label}: {path}: environment variable {name} is not set"
                f" (write ${{{name}:-default}} to give a default)"
            )
        return found

    return _REFERENCE.sub(replace, value)


def join(path: str, key: str) -> str:
    """Extend a dotted key path."""
    return f"{path}.{key}" if path else key


class Origins:
    """Where each part of the merged tree came from: the file unless overridden."""

    def __init__(self, file_label: str) -> None:
        self.file_label = file_label
        self._marks: dict[str, tuple[str, str | None]] = {}

    def mark(self, path: str, label: str, via: str | None = None) -> None:
        """Record that ``path`` and everything below it came from ``label`` (``via`` a variable)."""
        self._marks[path] = (label, via)

    def error(self, path: str, reason: str) -> ConfigError:
        """Build the error for a value at ``path``, naming its origin."""
        label, via = self.file_label, None
        for i in range(len(path), 0, -1):
            if i == len(path) or path[i] in ".[":
                if path[:i] in self._marks:
                    label, via = self._marks[path[:i]]
                    break
        suffix = f" (set by {via})" if via else ""
        return ConfigError(f"{label}: {path or '<top level>'}: {reason}{suffix}")


def set_path(tree: dict[str, Any], path: str, value: Any, replaces: Collection[str] = ()) -> None:
    """Set a dotted key in the tree, creating sections; drop sibling keys in ``replaces``."""
    *parents, last = path.split(".")
    node = tree
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    for sibling in replaces:
        node.pop(sibling, None)
    node[last] = value


def kind(value: Any) -> str:
    """Name a YAML value's type for an error message."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true/false"
    names = {
        str: "text", int: "a whole number", float: "a number", list: "a list", dict: "a mapping"
    }
    return names.get(type(value), type(value).__name__)


class Node:
    """One value of the merged tree with its key path; its getters raise :class:`ConfigError`."""

    __slots__ = ("value", "path", "_origins")

    def __init__(self, value: Any, path: str, origins: Origins) -> None:
        self.value = _MISSING if value is None else value
        self.path = path
        self._origins = origins

    @property
    def present(self) -> bool:
        """Whether a value was given (null and absent are the same)."""
        return self.value is not _MISSING

    def error(self, reason: str) -> ConfigError:
        """An error about this value."""
        return self._origins.error(self.path, reason)

    def child(self, key: str) -> "Node":
        """The value under ``key`` of this mapping (absent if this is no mapping)."""
        value = self.value.get(key) if isinstance(self.value, dict) else None
        return Node(value, join(self.path, key), self._origins)

    def mapping(self, known: Collection[str] | None = None) -> dict[str, Any]:
        """Check that this is a mapping (absent counts as empty) whose keys are all ``known``."""
        if not self.present:
            return {}
        if not isinstance(self.value, dict):
            raise self.error(f"expected a mapping (key: value lines), got {kind(self.value)}")
        for key in self.value:
            if not isinstance(key, str):
                raise self.error(f"keys must be text, got {key!r}")
            if known is not None and key not in known:
                close = difflib.get_close_matches(key, list(known), n=1)
                hint = (
                    f"; did you mean {close[0]}?"
                    if close
                    else f"; known keys: {', '.join(sorted(known))}"
                )
                raise self.child(key).error("unknown key" + hint)
        return self.value

    def items(self) -> list["Node"]:
        """The entries of this list (absent counts as empty)."""
        if not self.present:
            return []
        if not isinstance(self.value, list):
            raise self.error(f"expected a list, got {kind(self.value)}")
        return [Node(v, f"{self.path}[{i}]", self._origins) for i, v in enumerate(self.value)]

    def text(self, default: str | None = _MISSING) -> str:
        """A required string (or ``default``); empty text counts as absent."""
        if self.present and not isinstance(self.value, str):
            raise self.error(f"expected text, got {kind(self.value)} (quote it)")
        if self.present and self.value != "":
            return str(self.value)
        if default is _MISSING:
            problem = "must not be empty" if self.present else "missing; a value is required"
            raise self.error(problem)
        return default  # type: ignore[return-value]

    def optional_text(self) -> str | None:
        """A string, or None when absent or empty."""
        return self.text(default=None)  # type: ignore[arg-type]

    def integer(self, default: int, minimum: int | None = None, maximum: int | None = None) -> int:
        """A whole number (text of digits is accepted, as interpolation yields text)."""
        if not self.present:
            return default
        value = self.value
        if isinstance(value, str) and _INTEGER.fullmatch(value):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            shown = repr(value) if isinstance(value, str) else kind(value)
            raise self.error(f"expected a whole number, got {shown}")
        if minimum is not None and value < minimum:
            raise self.error(f"must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise self.error(f"must be at most {maximum}, got {value}")
        return value

    def duration(self, default: float, allow_zero: bool = True) -> float:
        """A duration with a unit (``10s``, ``1h30m``) as float seconds."""
        if not self.present:
            return default
        try:
            seconds = parse_duration(self.value)
        except ValueError as exc:
            raise self.error(str(exc)) from None
        if seconds == 0 and not allow_zero:
            raise self.error("must be longer than 0s")
        return seconds

    def size(self, default: int, minimum: int = 1) -> int:
        """A size (``64MiB``, ``1GiB``, or a byte count) as int bytes."""
        if not self.present:
            return default
        value = self.value
        if isinstance(value, str) and _INTEGER.fullmatch(value):
            value = int(value)
        try:
            size = parse_size(value)
        except ValueError as exc:
            raise self.error(str(exc)) from None
        if size < minimum:
            raise self.error(f"must be at least {minimum} bytes, got {size}")
        return size


def resolve_location(text: str, base: Path) -> str:
    """A warehouse or stream location as a URI: paths become ``file:///abs/path``."""
    if _URI_SCHEME.match(text):
        stripped = text.rstrip("/")
        return stripped if "://" in stripped else text
    path = Path(text).expanduser()
    if not path.is_absolute():
        path = base / path
    return "file://" + os.path.normpath(path).replace(os.sep, "/")


def resolve_sqlite_uri(uri: str, base: Path) -> str:
    """Make the file of a ``sqlite:///relative.db`` URI relative to ``base``; others unchanged."""
    prefix = "sqlite:///"
    if not uri.startswith(prefix) or uri.startswith(prefix + "/"):
        return uri
    rest = uri[len(prefix) :]
    file, sep, query = rest.partition("?")
    if file in ("", ":memory:"):
        return uri
    path = Path(file).expanduser()
    if not path.is_absolute():
        path = base / path
    return prefix + os.path.normpath(path) + sep + query
