"""Evenly spaced columns of history, so a figure sends one `x0`/`dx` instead of x per trace."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise

from monitoring_dashboard.snapshots import Point

# The CPU values are 60 s moving averages, so columns 30 s apart (an hour in 120) lose nothing
# a reader could see, and every extra number costs JSON encoding time on each refresh.
CPU_COLUMNS = 120
# The headline series are drawn alone in a half-width graph: one column per few pixels.
SERIES_COLUMNS = 360


@dataclass(frozen=True)
class Columns:
    """Points picked for evenly spaced times x0_ms + i * dx_ms (None: nothing was written)."""

    x0_ms: int
    dx_ms: int
    points: list[Point | None]

    def names(self) -> set[str]:
        return set().union(*(point.values for point in self.points if point is not None))


@dataclass(frozen=True)
class Grid:
    """Values of some metrics on evenly spaced columns; None where nothing was written."""

    x0_ms: int
    dx_ms: int
    names: list[str]
    rows: list[list[float | None]]


def columns(points: Sequence[Point], max_columns: int) -> Columns | None:
    """Put points on a regular grid ending at the newest point; the newest point per column wins."""
    if not points:
        return None
    first, last = points[0].at_ms, points[-1].at_ms
    gaps = [b.at_ms - a.at_ms for a, b in pairwise(points) if b.at_ms > a.at_ms]
    typical = int(statistics.median(gaps)) if gaps else 1000
    span = last - first
    dx = max(typical, -(-span // (max_columns - 1)) if max_columns > 1 else span, 1)
    count = min(round(span / dx) + 1, max_columns)
    chosen: list[Point | None] = [None] * count
    half = dx // 2
    for point in points:
        # Rounding (not flooring) keeps a point with a little jitter in its own column;
        # integer arithmetic because this runs for every point of the window.
        column = count - 1 - (last - point.at_ms + half) // dx
        if column >= 0:
            chosen[column] = point
    return Columns(x0_ms=last - (count - 1) * dx, dx_ms=dx, points=chosen)


def grid(picked: Columns | None, names: Iterable[str], decimals: int) -> Grid | None:
    """The values of names in the picked columns, rounded to keep the JSON short."""
    if picked is None:
        return None
    names = list(names)
    # Inline rather than a helper per value: at 64 CPUs this runs ~8000 times per refresh.
    rows = [
        [
            None if (value := point.values.get(name) if point else None) is None
            else round(value, decimals)
            for point in picked.points
        ]
        for name in names
    ]  # fmt: skip
    return Grid(x0_ms=picked.x0_ms, dx_ms=picked.dx_ms, names=names, rows=rows)
