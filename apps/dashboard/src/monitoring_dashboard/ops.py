"""One function's operations figures over a time window, from scrapes of its /metrics (pure).

Counters only grow while a replica runs, so the difference between two scrapes is what happened
between them: the rate, the error ratio and the duration quantiles (as PromQL's `rate` and
`histogram_quantile` compute them). Before a second scrape, a replica's start (counters at zero,
the registry's `registered_at`) is the baseline.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from monitoring_dashboard.exposition import Scrape


@dataclass(frozen=True)
class Sample:
    """A scrape and when it was taken (seconds since the epoch)."""

    at: float
    scrape: Scrape


@dataclass(frozen=True)
class Ops:
    """What the page shows; `span` is the time the rate and quantiles cover, in seconds."""

    span: float
    calls: float
    rate: float | None
    error_ratio: float | None
    p50: float | None
    p95: float | None
    reloads: float
    failed_reloads: float
    leader: bool | None
    loaded: bool | None
    input_age: float | None


def compute(samples: Sequence[Sample], window: float, started_at: float | None) -> Ops | None:
    """The figures over the last `window` seconds of samples (oldest first); None without any."""
    if not samples:
        return None
    newest = samples[-1]
    baseline: Sample | None = next(
        (sample for sample in samples[:-1] if sample.at >= newest.at - window), None
    )
    if baseline is None and started_at is not None and started_at < newest.at:
        # No earlier scrape in the window: the replica's start, every counter at zero.
        baseline = Sample(started_at, Scrape())
    now = newest.scrape
    span = newest.at - baseline.at if baseline is not None else 0.0
    calls = rate = errors = p50 = p95 = None
    if baseline is not None and span > 0:
        before = baseline.scrape
        calls = max(0.0, now.calls - before.calls)
        rate = calls / span
        failed = calls - max(
            0.0, now.outcomes.get("success", 0.0) - before.outcomes.get("success", 0.0)
        )
        errors = failed / calls if calls else None
        counts = _bucket_deltas(now.buckets, before.buckets)
        p50, p95 = quantile(0.5, counts), quantile(0.95, counts)
    return Ops(
        span=span,
        calls=calls or 0.0,
        rate=rate,
        error_ratio=errors,
        p50=p50,
        p95=p95,
        reloads=now.reloads.get("success", 0.0),
        failed_reloads=now.reloads.get("failure", 0.0),
        leader=now.leader,
        loaded=now.loaded,
        input_age=now.input_age,
    )


def quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """The q-quantile of cumulative (upper bound, count) buckets, as `histogram_quantile`."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                # Beyond the largest finite bound: that bound is all that can be said.
                return lower
            if count == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return lower


def _bucket_deltas(
    now: Sequence[tuple[float, float]], before: Sequence[tuple[float, float]]
) -> list[tuple[float, float]]:
    earlier = dict(before)
    return [(bound, max(0.0, count - earlier.get(bound, 0.0))) for bound, count in now]
