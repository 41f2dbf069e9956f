"""Unit tests of parse_array on the text PostgreSQL's array_out writes."""

from __future__ import annotations

import pytest

from pg2iceberg.iceberg.pgarray import parse_array


@pytest.mark.parametrize(("text", "expected"), [
    ("{}", []),
    ("{1}", ["1"]),
    ("{1,2,-3}", ["1", "2", "-3"]),
    ("{NULL}", [None]),
    ("{NULL,NULL}", [None, None]),
    ('{"NULL"}', ["NULL"]),  # the string, not SQL NULL
    ('{"null",NULL,"Null"}', ["null", None, "Null"]),
    ("{null}", [None]),  # array_in reads an unquoted NULL in any case
    ('{""}', [""]),
    ('{"",""}', ["", ""]),
    ('{a,""}', ["a", ""]),
    ('{"",a}', ["", "a"]),
    ('{"a b"," lead","trail "}', ["a b", " lead", "trail "]),
    ('{"a,b","c"}', ["a,b", "c"]),
    ('{"{","}","{x}"}', ["{", "}", "{x}"]),
    ('{"say \\"hi\\""}', ['say "hi"']),
    ('{"back\\\\slash","\\\\"}', ["back\\slash", "\\"]),
    ('{"\\\\\\""}', ['\\"']),  # an escaped backslash, then an escaped quote
    ('{"\\\\x00ff",NULL}', ["\\x00ff", None]),  # bytea[] elements
    ('{t,f,NULL}', ["t", "f", None]),
    ('{"2021-03-28 01:00:00+00",NULL}', ["2021-03-28 01:00:00+00", None]),
    ('{é,🎉,"שלום עולם"}', ["é", "🎉", "שלום עולם"]),
    ('{"tab\tnew\nline"}', ["tab\tnew\nline"]),
    ("{NaN,Infinity,-Infinity}", ["NaN", "Infinity", "-Infinity"]),
    ("{NULLx,xNULL}", ["NULLx", "xNULL"]),
])
def test_one_dimensional(text: str, expected: list[str | None]) -> None:
    assert parse_array(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("[0:1]={7,8}", ["7", "8"]),
    ("[-2:-2]={x}", ["x"]),
    ('[5:6]={"=","[0:1]"}', ["=", "[0:1]"]),
])
def test_dimension_decoration_is_skipped(text: str, expected: list[str]) -> None:
    assert parse_array(text) == expected


def test_other_delimiter() -> None:
    assert parse_array("{(1,1),(0,0);(2,2),(1,1)}", delimiter=";") == ["(1,1),(0,0)", "(2,2),(1,1)"]


@pytest.mark.parametrize("text", [
    "{{1,2},{3,4}}",
    "{{}}",
    '{{"a"}}',
    "[1:2][1:2]={{1,2},{3,4}}",
    "[0:0][0:0]={{1}}",
])
def test_multi_dimensional_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="multi-dimensional"):
        parse_array(text)


@pytest.mark.parametrize("text", [
    "", "1,2", "{", "}", "{1,2", "1,2}", '{"a}', '{"a\\"}', '{"a"b}', "{a,}", "{,a}",
    "{a,,b}", "[0:1]{1,2}", "[0:1]=1", '{"a"",b}',
])
def test_malformed_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_array(text)
