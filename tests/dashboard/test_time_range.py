"""The time-range choice: 15 min, 1 h, 6 h, never more than HISTORY_MINUTES keeps."""

from __future__ import annotations

from monitoring_dashboard.time_range import chosen_minutes, default, options


def labels(history_minutes: float) -> list[str]:
    return [option["label"] for option in options(history_minutes)]


def test_time_range_offers_what_the_kept_history_holds() -> None:
    assert labels(60) == ["15 min", "1 h"]
    assert labels(360) == ["15 min", "1 h", "6 h"]
    assert labels(10080) == ["15 min", "1 h", "6 h"]
    assert labels(120) == ["15 min", "1 h", "2 h (all)"]
    assert labels(5) == ["5 min (all)"]
    assert (default(60), default(360), default(5)) == (60, 60, 5)


def test_time_range_trusts_the_browser_only_within_the_history() -> None:
    assert chosen_minutes(15, 60) == 15
    assert chosen_minutes(360, 60) == 60
    for odd in (None, "15", True, -5, 0, float("nan")):
        assert chosen_minutes(odd, 60) == 60
