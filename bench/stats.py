"""Order statistics over repeated measurements."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by the nearest-rank method: always a measured value."""
    if not values:
        raise ValueError("no measurements")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    """The middle measurement (the mean of the two middle ones for an even count)."""
    if not values:
        raise ValueError("no measurements")
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def p99(values: Sequence[float]) -> float:
    """The 99th percentile; with fewer than 100 measurements, the largest."""
    return percentile(values, 99)


def mean(values: Sequence[float]) -> float:
    """The arithmetic mean."""
    if not values:
        raise ValueError("no measurements")
    return math.fsum(values) / len(values)
