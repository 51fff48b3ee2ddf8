"""History kept in the browser's memory for runtimes that write no `:history` stream."""

from __future__ import annotations

from typing import Any

from monitoring_dashboard.snapshots import Point

# A bound independent of the window, so a tiny refresh period cannot grow the page without end.
MAX_POINTS = 3600


def append(stored: Any, point: Point, window_ms: int) -> dict[str, Any]:
    """Add a point and drop those older than the window (store data in, store data out)."""
    rows = [row for row in _rows(stored) if row[0] > point.at_ms - window_ms]
    rows.append([point.at_ms, dict(point.values)])
    return {"points": rows[-MAX_POINTS:]}


def points(stored: Any) -> list[Point]:
    return [Point(int(at_ms), values) for at_ms, values in _rows(stored)]


def _rows(stored: Any) -> list[list[Any]]:
    # The store comes back from the browser, so accept only the shape this module writes.
    if not isinstance(stored, dict) or not isinstance(stored.get("points"), list):
        return []
    return [
        row
        for row in stored["points"]
        if isinstance(row, list)
        and len(row) == 2
        and isinstance(row[0], int)
        and isinstance(row[1], dict)
    ]
