"""One function's operations figures as the Functions page writes them (pure, text only)."""

from __future__ import annotations

from dataclasses import dataclass

from serverless_runtime.registry import FunctionRecord

from monitoring_dashboard.display import duration_text, number_text, rate_text
from monitoring_dashboard.freshness import format_age
from monitoring_dashboard.ops import compute
from monitoring_dashboard.redis_reads import iso_ms
from monitoring_dashboard.scraper import Scraped, scrapable

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
    return OpsText(
        rate=NONE if ops.rate is None else rate_text(ops.rate),
        errors=NONE if ops.error_ratio is None else f"{number_text(ops.error_ratio * 100)} %",
        p50=NONE if ops.p50 is None else duration_text(ops.p50),
        p95=NONE if ops.p95 is None else duration_text(ops.p95),
        reloads=number_text(ops.reloads)
        + (f" ({number_text(ops.failed_reloads)} failed)" if ops.failed_reloads else ""),
        leader=_leader(ops.leader, ops.loaded),
        input_age=NONE if ops.input_age is None else duration_text(max(0.0, ops.input_age)),
        note=note,
        problem=bool(problem),
    )


def _leader(leader: bool | None, loaded: bool | None) -> str:
    if leader is None:
        return NONE
    role = "leader" if leader else "standby"
    return role if loaded is not False else f"{role}, no function loaded"
