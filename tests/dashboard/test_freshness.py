"""Freshness: the age shown as "updated N s ago" and the stale rule (3 refresh periods)."""

from __future__ import annotations

import pytest
from monitoring_dashboard.freshness import assess, format_age


def test_assess_is_fresh_up_to_three_periods_and_stale_after():
    assert not assess(10_000, 25_000, 5).stale
    assert assess(10_000, 25_001, 5).stale


def test_assess_treats_a_write_from_the_future_as_just_now():
    fresh = assess(20_000, 19_500, 5)
    assert fresh.age_seconds == 0
    assert fresh.text == "updated 0 s ago"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.4, "0 s"), (12.9, "12 s"), (89, "89 s"), (90, "2 min"), (3600, "60 min"), (7200, "2 h")],
)
def test_format_age_is_coarse_enough_to_read(seconds, text):
    assert format_age(seconds) == text


def test_format_age_switches_to_days():
    assert format_age(3 * 86400) == "3 d"
