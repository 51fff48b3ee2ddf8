"""Resampling history onto evenly spaced columns for the per-CPU graphs."""

from __future__ import annotations

from monitoring_dashboard.resample import CPU_COLUMNS, columns, grid
from monitoring_dashboard.snapshots import Point

CPU0 = "avg-util-cpu0-60sec"
CPU1 = "avg-util-cpu1-60sec"


def resample(points, names):
    """The CPU graphs' grid: columns picked over points, names read from them (one decimal)."""
    return grid(columns(points, CPU_COLUMNS), names, decimals=1)


def points_every(period_ms: int, count: int, start: int = 1_000_000) -> list[Point]:
    return [Point(start + i * period_ms, {CPU0: float(i), CPU1: 100.0 - i}) for i in range(count)]


def test_resample_nothing_gives_none():
    assert resample([], [CPU0]) is None


def test_resample_regular_points_keep_one_column_each():
    points = points_every(5000, 10)
    grid = resample(points, [CPU0, CPU1])
    assert grid is not None
    assert (grid.x0_ms, grid.dx_ms, len(grid.rows[0])) == (1_000_000, 5000, 10)
    assert grid.rows[0] == [float(i) for i in range(10)]
    assert grid.rows[1] == [100.0 - i for i in range(10)]


def test_resample_jitter_does_not_open_gaps():
    points = [Point(1_000_000 + i * 5000 + (37 if i % 2 else -41), {CPU0: 1.0}) for i in range(50)]
    grid = resample(points, [CPU0])
    assert grid is not None
    assert None not in grid.rows[0]
    assert grid.x0_ms + (len(grid.rows[0]) - 1) * grid.dx_ms == points[-1].at_ms


def test_resample_an_outage_shows_as_a_gap():
    points = points_every(5000, 5) + points_every(5000, 5, start=1_000_000 + 60_000)
    grid = resample(points, [CPU0])
    assert grid is not None
    assert grid.rows[0].count(None) == 7
    assert grid.rows[0][-1] == 4.0


def test_resample_an_hour_at_one_second_fits_the_column_limit_ending_at_the_newest():
    points = points_every(1000, 3600)
    grid = resample(points, [CPU0])
    assert grid is not None
    assert len(grid.rows[0]) == CPU_COLUMNS
    assert grid.x0_ms + (len(grid.rows[0]) - 1) * grid.dx_ms == points[-1].at_ms
    assert grid.rows[0][-1] == 3599.0


def test_resample_missing_metric_is_none_and_values_are_rounded():
    points = [Point(0, {CPU0: 12.3456}), Point(5000, {CPU1: 7.0})]
    grid = resample(points, [CPU0, CPU1])
    assert grid is not None
    assert grid.rows == [[12.3, None], [None, 7.0]]


def test_columns_names_come_from_the_picked_points():
    points = [Point(0, {CPU0: 1.0}), Point(5000, {CPU1: 2.0})]
    picked = columns(points, 10)
    assert picked is not None
    assert picked.names() == {CPU0, CPU1}
