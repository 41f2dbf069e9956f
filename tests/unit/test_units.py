"""Durations and sizes: parsing what operators write, formatting what they read."""

import pytest

from pg2iceberg.units import format_bytes, format_duration, parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("10s", 10.0),
        ("5m", 300.0),
        ("168h", 604800.0),
        ("7d", 604800.0),
        ("1h30m", 5400.0),
        ("1h 30m 15s", 5415.0),
        ("0s", 0.0),
        ("1.5s", 1.5),
        (" 2m ", 120.0),
    ],
)
def test_parse_duration_reads_units_and_combinations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["10", "0", "1.5", " 7 "])
def test_parse_duration_refuses_a_bare_number(text):
    with pytest.raises(ValueError, match="durations need a unit"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["", "10x", "s", "-5s", "10s garbage", "1h30", "10 S", "ten seconds"])
def test_parse_duration_refuses_what_is_not_a_duration(text):
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_parse_duration_refuses_a_non_string_number():
    with pytest.raises(ValueError, match="durations need a unit"):
        parse_duration(10)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("64MiB", 64 * 1024**2),
        ("1GiB", 1024**3),
        ("1KiB", 1024),
        ("2TiB", 2 * 1024**4),
        ("500KB", 500_000),
        ("3MB", 3_000_000),
        ("1GB", 1_000_000_000),
        ("1TB", 10**12),
        ("100B", 100),
        ("4096", 4096),
        (4096, 4096),
        ("64 mib", 64 * 1024**2),
        ("1.5KiB", 1536),
        (0, 0),
    ],
)
def test_parse_size_reads_units(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("64XB", "unknown size unit"),
        ("64M", "unknown size unit"),
        ("lots", "not a size"),
        ("", "not a size"),
        ("-1KiB", "not a size"),
        (-5, "negative"),
        (True, "not a size"),
        ("1.5B", "whole number"),
    ],
)
def test_parse_size_refuses_bad_sizes(text, reason):
    with pytest.raises(ValueError, match=reason):
        parse_size(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (0.5, "500ms"), (10, "10s"), (5400, "1h30m"), (604800, "7d"), (90061.5, "1d1h1m1s500ms"), (-10, "-10s")],
)
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


@pytest.mark.parametrize("seconds", [0.0, 0.25, 1.0, 59.0, 61.0, 3600.0, 5400.0, 604800.0, 1234567.891])
def test_format_duration_reads_back(seconds):
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0 B"),
        (512, "512 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (int(12.3 * 1024**2), "12.3 MiB"),
        (64 * 1024**2, "64.0 MiB"),
        (1024**3, "1.0 GiB"),
        (1024**4 * 3, "3.0 TiB"),
        (1024**2 - 1, "1.0 MiB"),
        (-2048, "-2.0 KiB"),
    ],
)
def test_format_bytes(n, text):
    assert format_bytes(n) == text
