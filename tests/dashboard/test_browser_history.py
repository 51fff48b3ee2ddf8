"""History kept in the browser when the runtime writes no `:history` stream."""

from __future__ import annotations

from monitoring_dashboard import browser_history
from monitoring_dashboard.snapshots import Point


def test_append_keeps_points_inside_the_window_oldest_first():
    stored = None
    for at_ms in (0, 30_000, 60_000, 90_000):
        stored = browser_history.append(stored, Point(at_ms, {"m": at_ms / 1000}), 60_000)
    assert [point.at_ms for point in browser_history.points(stored)] == [60_000, 90_000]
    assert browser_history.points(stored)[-1].values == {"m": 90.0}


def test_append_is_bounded_even_with_a_huge_window():
    stored = None
    for at_ms in range(browser_history.MAX_POINTS + 10):
        stored = browser_history.append(stored, Point(at_ms, {}), 10**12)
    assert len(browser_history.points(stored)) == browser_history.MAX_POINTS


def test_points_ignore_whatever_else_the_browser_sends_back():
    assert browser_history.points(None) == []
    assert browser_history.points({"points": "nope"}) == []
    assert browser_history.points({"points": [[1, {"m": 1.0}], ["x", {}], [2], 5]}) == [
        Point(1, {"m": 1.0})
    ]
