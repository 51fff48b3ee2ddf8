"""One function's operations figures from scrapes of its runtime's /metrics, as PromQL's `rate`
and `histogram_quantile` compute them (pure; only `serverless_runtime_*` is read: no client)."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from serverless_runtime.registry import FunctionRecord

from monitoring_dashboard.display import duration_text, iso_ms, number_text, rate_text
from monitoring_dashboard.freshness import format_age

if TYPE_CHECKING:
    from monitoring_dashboard.scraper import Scraped

PREFIX = "serverless_runtime_"
# `name{label="value"} 1.0` or `name 1.0`, an optional timestamp after the value.
_SAMPLE = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)(?:\{([^}]*)\})?\s+(\S+)(?:\s+\S+)?")
_LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class Scrape:
    """One replica's figures at one scrape: counters since its start, gauges now."""

    outcomes: dict[str, float] = field(default_factory=dict)
    # (upper bound, cumulative count), ascending, the last bound math.inf.
    buckets: list[tuple[float, float]] = field(default_factory=list)
    reloads: dict[str, float] = field(default_factory=dict)
    input_age: float | None = None
    leader: bool | None = None
    loaded: bool | None = None

    @property
    def calls(self) -> float:
        return sum(self.outcomes.values())


def parse(text: str) -> Scrape:
    """The runtime's figures in a /metrics body; families it does not know are ignored."""
    outcomes: dict[str, float] = {}
    reloads: dict[str, float] = {}
    buckets: list[tuple[float, float]] = []
    gauges: dict[str, float] = {}
    for line in text.splitlines():
        if not line.startswith(PREFIX):
            continue
        match = _SAMPLE.fullmatch(line.strip())
        if match is None:
            continue
        name, raw_labels, raw_value = match.groups()
        labels = dict(_LABEL.findall(raw_labels or ""))
        try:
            value, bound = float(raw_value), float(labels.get("le", "nan"))
        except ValueError:
            continue
        short = name[len(PREFIX) :]
        if short == "invocations_total" and "outcome" in labels:
            outcomes[labels["outcome"]] = value
        elif short == "reloads_total" and "result" in labels:
            reloads[labels["result"]] = value
        elif short == "invocation_duration_seconds_bucket" and not math.isnan(bound):
            buckets.append((bound, value))
        elif raw_labels is None:
            gauges[short] = value
    return Scrape(
        outcomes=outcomes,
        buckets=sorted(buckets),
        reloads=reloads,
        input_age=gauges.get("input_age_seconds"),
        leader=_flag(gauges.get("leader")),
        loaded=_flag(gauges.get("function_loaded")),
    )


def _flag(value: float | None) -> bool | None:
    return None if value is None else value >= 1


@dataclass(frozen=True)
class Sample:
    """A scrape and when it was taken (seconds since the epoch)."""

    at: float
    scrape: Scrape


@dataclass(frozen=True)
class Ops:
    """What the page shows; `span` is the time the rate and quantiles cover, in seconds."""

    span: float
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
    rate = errors = p50 = p95 = None
    if baseline is not None and span > 0:
        before = baseline.scrape
        calls = max(0.0, now.calls - before.calls)
        rate = calls / span
        failed = calls - max(
            0.0, now.outcomes.get("success", 0.0) - before.outcomes.get("success", 0.0)
        )
        errors = failed / calls if calls else None
        earlier = dict(before.buckets)
        counts = [(bound, max(0.0, n - earlier.get(bound, 0.0))) for bound, n in now.buckets]
        p50, p95 = quantile(0.5, counts), quantile(0.95, counts)
    return Ops(
        span=span,
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


NONE = "—"


@dataclass(frozen=True)
class OpsText:
    """Every figure as text; `note` says what they cover or why there are none."""

    rate: str = NONE
    errors: str = NONE
    p50: str = NONE
    p95: str = NONE
    reloads: str = NONE
    leader: str = NONE
    input_age: str = NONE
    note: str = ""
    problem: bool = False


def ops_text(record: FunctionRecord, scraped: Scraped | None, window: float) -> OpsText:
    """The figures of the replica the record names, over the last `window` seconds."""
    if not record.metrics:
        return OpsText(
            note="no metrics: the runtime's HTTP server is off (HTTP_PORT=0) or it registered "
            "before runtimes named their /metrics"
        )
    if not scrapable(record.metrics):
        return OpsText(note="not read: the record's metrics URL is not an http(s) …/metrics URL")
    if scraped is None or (not scraped.samples and scraped.error is None):
        return OpsText(note="reading /metrics…")
    started_ms = iso_ms(record.registered_at)
    ops = compute(scraped.samples, window, None if started_ms is None else started_ms / 1000)
    problem = f"/metrics unreachable ({scraped.error})" if scraped.error else ""
    if ops is None:
        return OpsText(note=problem, problem=True)
    if ops.rate is None:
        note = "one scrape so far: rates follow at the next"
    elif ops.span < window - 1:
        note = f"over the last {format_age(ops.span)} (since this replica or this page started)"
    else:
        note = f"over the last {format_age(window)}"
    if ops.leader is False:
        # The record names the replica that registered last; a standby invokes nothing.
        note += "; this replica is a standby: the leader's calls are in its own /metrics"
    if problem:
        note = f"{problem}; last known figures {note}"
    role = "leader" if ops.leader else "standby"
    if ops.loaded is False:
        role += ", no function loaded"
    return OpsText(
        rate=NONE if ops.rate is None else rate_text(ops.rate),
        errors=NONE if ops.error_ratio is None else f"{number_text(ops.error_ratio * 100)} %",
        p50=NONE if ops.p50 is None else duration_text(ops.p50),
        p95=NONE if ops.p95 is None else duration_text(ops.p95),
        reloads=number_text(ops.reloads)
        + (f" ({number_text(ops.failed_reloads)} failed)" if ops.failed_reloads else ""),
        leader=NONE if ops.leader is None else role,
        input_age=NONE if ops.input_age is None else duration_text(max(0.0, ops.input_age)),
        note=note,
        problem=bool(problem),
    )


def scrapable(url: str) -> bool:
    """Only an http(s) URL of a /metrics path is ever fetched (the registry names it)."""
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname) and parts.path == "/metrics"
