"""The console's formatting helpers, without an app."""

from __future__ import annotations

import pytest

from tui import format as f


@pytest.mark.parametrize(("lsn", "text"), [(None, "–"), (0, "0/0"), (0x16B3748, "0/16B3748"),
                                           (0x16_B374D848, "16/B374D848")])
def test_lsn_prints_like_postgresql(lsn: int | None, text: str) -> None:
    assert f.lsn(lsn) == text


@pytest.mark.parametrize(("n", "text"), [(None, "–"), (0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"),
                                         (1536, "1.5 KiB"), (12 * 2**20, "12.0 MiB"),
                                         (3 * 2**30 + 2**29, "3.5 GiB"), (2**50 * 3, "3.0 PiB"),
                                         (2**60, "1024.0 PiB")])
def test_size_uses_binary_units(n: int | None, text: str) -> None:
    assert f.size(n) == text


@pytest.mark.parametrize(("s", "text"), [(None, "–"), (-3.0, "0.0s"), (0.44, "0.4s"), (9.96, "10.0s"),
                                         (10.0, "10s"), (59.9, "59s"), (60, "1m00s"), (185, "3m05s"),
                                         (3600, "1h00m"), (7380, "2h03m"), (86_400 * 3 + 3600 * 4, "3d04h")])
def test_duration_shows_two_units_at_most(s: float | None, text: str) -> None:
    assert f.duration(s) == text


def test_ago_counts_back_from_now_and_clamps_the_future() -> None:
    assert f.ago(100.0, now=112.0) == "12s ago"
    assert f.ago(200.0, now=100.0) == "0.0s ago"
    assert f.ago(None, now=100.0) == "–"


@pytest.mark.parametrize(("r", "text"), [(None, "–"), (0.0, "0/s"), (0.25, "0.2/s"), (3.5, "3.5/s"),
                                         (850.4, "850/s"), (1234.0, "1.2k/s"), (3_400_000, "3.4M/s"),
                                         (2.5e9, "2.5G/s")])
def test_rate_has_a_metric_suffix(r: float | None, text: str) -> None:
    assert f.rate(r) == text


def test_sparkline_scales_to_the_maximum_of_the_last_values() -> None:
    assert f.sparkline([0, 1, 2, 3, 4, 5, 6, 7], 8) == "▁▂▃▄▅▆▇█"
    assert f.sparkline([100.0, 0, 50, 100], 3) == "▁▅█"  # only the last three count
    assert f.sparkline([0, 0, 0], 5) == "▁▁▁"
    assert f.sparkline([-5, 10], 2) == "▁█"
    assert f.sparkline([], 10) == ""
    assert f.sparkline([1, 2], 0) == ""


def test_progress_bar_fills_in_eighths_and_keeps_its_width() -> None:
    assert f.progress_bar(0.0, 10) == "░" * 10
    assert f.progress_bar(1.0, 10) == "█" * 10
    assert f.progress_bar(0.5, 4) == "██░░"
    assert f.progress_bar(0.625, 10) == "██████▎░░░"
    assert f.progress_bar(1.7, 3) == "███"
    assert f.progress_bar(-1, 3) == "░░░"
    assert all(len(f.progress_bar(x / 97, 12)) == 12 for x in range(98))


def test_fraction_and_eta_of_a_copy() -> None:
    assert f.fraction_done(250, 1000) == 0.25
    assert f.fraction_done(1200, 1000) == 1.0  # the estimate undershot
    assert f.fraction_done(5, 0) is None
    assert f.eta(250, 1000, 50.0) == "15s"
    assert f.eta(250, 1000, 0.0) == "–"
    assert f.eta(250, 0, 50.0) == "–"
    assert f.eta(1200, 1000, 50.0) == "0.0s"


def test_clock_time_is_local_hh_mm_ss() -> None:
    assert f.clock_time(1_767_225_600.0 + 3723.9) == "01:02:03"  # TZ is UTC in these tests


def test_or_dash() -> None:
    assert [f.or_dash(v) for v in (None, "", 0, "x")] == ["–", "–", "0", "x"]
