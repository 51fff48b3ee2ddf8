"""What the Live page should show for one refresh, decided without Dash (pure, unit-tested)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from monitoring_dashboard import browser_history
from monitoring_dashboard.display import utc_text
from monitoring_dashboard.freshness import STALE_AFTER_PERIODS, Freshness, assess, format_age
from monitoring_dashboard.notices import Notice, function_notices, unreachable_notice
from monitoring_dashboard.output_keys import CACHING, EGRESS, cpu_names, numeric_values
from monitoring_dashboard.pages.live import figures
from monitoring_dashboard.plotting import Figure
from monitoring_dashboard.resample import CPU_COLUMNS, columns, grid
from monitoring_dashboard.settings import Settings
from monitoring_dashboard.snapshots import Point, ReadError, Snapshot


@dataclass(frozen=True)
class Kpis:
    egress: float | None
    caching: float | None
    cpu_count: int
    cpu_mean: float | None
    input_timestamp: str | None
    # When the newest output was written, in UTC (the input's own timestamp has no zone).
    written_at: str | None = None


@dataclass(frozen=True)
class LiveView:
    """One refresh's worth of page content; None means "keep what the page shows"."""

    notices: list[Notice] = field(default_factory=list)
    freshness: Freshness | None = None
    kpis: Kpis | None = None
    figures: dict[str, Figure] | None = None
    status: dict[str, Any] | None = None
    browser_history: dict[str, Any] | None = None
    version: str | None = None


def build_view(
    result: Snapshot | ReadError,
    *,
    settings: Settings,
    status: Any,
    stored_history: Any,
    rendered_version: Any,
    local_now_ms: int,
    range_minutes: float,
) -> LiveView:
    """The page for a snapshot (or a failed read); the graphs show the last `range_minutes`."""
    status = status if isinstance(status, dict) else {}
    if isinstance(result, ReadError):
        return _unreachable(result, settings, status, local_now_ms)
    snap = result
    raw = snap.output_raw
    digest = None if raw is None else hashlib.blake2b(raw.encode(), digest_size=8).hexdigest()
    stored: dict[str, Any] | None = None
    if snap.has_history:
        points = snap.history
        last_write = snap.last_write_ms
        # Once the runtime writes history, the browser's own copy is no longer needed.
        stored = {} if browser_history.points(stored_history) else None
    else:
        last_write = status.get("last_write_ms") if status.get("seen_by_page") else None
        if snap.output is not None and (digest != status.get("digest") or last_write is None):
            last_write = snap.now_ms
            point = Point(snap.now_ms, numeric_values(snap.output))
            stored = browser_history.append(stored_history, point, settings.history_ms)
        points = browser_history.points(stored if stored is not None else stored_history)
    seen, period = not snap.has_history, settings.refresh_seconds
    fresh = (
        None if last_write is None else assess(last_write, snap.now_ms, period, seen_by_page=seen)
    )
    # A load failure is shown although the previous version's outputs keep the page fresh.
    stale = [_stale_notice(fresh, settings)] if fresh is not None and fresh.stale else []
    notices = function_notices(
        snap.problems, snap.record.load_failure, snap.error, (last_write, snap.now_ms), *stale
    )
    new_status = {
        "last_write_ms": last_write,
        "seen_by_page": seen,
        "digest": digest,
        "offset_ms": snap.now_ms - local_now_ms,
    }
    if snap.output is None:
        if not snap.problems:
            missing = (
                f"Key {settings.output_key} (REDIS_OUTPUT_KEY) does not exist in Redis at "
                f"{settings.redis_location}. Is the function running? "
                "This page updates by itself when the key appears."
            )
            notices.insert(0, Notice("warning", "No output yet", missing))
        return LiveView(notices, fresh, status=new_status, browser_history=stored)
    latest = numeric_values(snap.output)
    if range_minutes < settings.history_minutes:
        since = snap.now_ms - int(range_minutes * 60_000)
        points = [point for point in points if point.at_ms >= since]
    version = f"{range_minutes:g}:{len(points)}:{points[-1].at_ms if points else 0}:{digest}"
    built = None if version == rendered_version else build_figures(points, latest, range_minutes)
    kpis = _kpis(snap, latest, last_write)
    return LiveView(notices, fresh, kpis, built, new_status, stored, version)


def build_figures(
    points: list[Point], latest: dict[str, float], range_minutes: float
) -> dict[str, Figure]:
    """Every graph of the Live page from the history window and the latest values."""
    picked = columns(points, CPU_COLUMNS)
    # Names from the picked columns only: CPUs may come and go, and this is ~30x cheaper.
    cpus = grid(picked, cpu_names(picked.names()) if picked else [], decimals=1)
    egress, caching = figures.series_figures(
        points, [(EGRESS, figures.EGRESS_COLOR), (CACHING, figures.CACHING_COLOR)]
    )
    built = {
        "egress": egress,
        "caching": caching,
        "cpu_lines": figures.cpu_lines_figure(cpus),
        "cpu_heatmap": figures.cpu_heatmap_figure(cpus),
        "latest": figures.latest_bar_figure(latest),
    }
    # A new range starts from its own axes; within one, the user's zoom is kept.
    for figure in built.values():
        if figure["layout"].get("uirevision") == "live":
            figure["layout"]["uirevision"] = f"live-{range_minutes:g}"
    return built


def _unreachable(
    error: ReadError, settings: Settings, status: dict[str, Any], local_now_ms: int
) -> LiveView:
    more = (
        f" Retrying every {settings.refresh_seconds:g} s; the page keeps the last data it received."
    )
    notice = unreachable_notice(settings.redis_location, error, more)
    fresh = None
    last_write = status.get("last_write_ms")
    if isinstance(last_write, int):
        # Estimate Redis's clock from ours and the offset seen at the last successful read.
        now_ms = local_now_ms + int(status.get("offset_ms") or 0)
        seen = bool(status.get("seen_by_page"))
        fresh = assess(last_write, now_ms, settings.refresh_seconds, seen_by_page=seen)
    return LiveView([notice], fresh)


def _stale_notice(fresh: Freshness, settings: Settings) -> Notice:
    period = settings.refresh_seconds
    origin = " (first seen by this page)" if fresh.seen_by_page else ""
    return Notice(
        "warning",
        "Data is stale",
        f"No new output for {format_age(fresh.age_seconds)}{origin}, more than "
        f"{STALE_AFTER_PERIODS} refresh periods of {period:g} s. "
        "Check that the collector and the runtime are running.",
    )


def _kpis(snap: Snapshot, latest: dict[str, float], last_write_ms: int | None) -> Kpis:
    cpus = [latest[name] for name in cpu_names(latest)]
    timestamp = snap.output.get("timestamp") if snap.output is not None else None
    return Kpis(
        egress=latest.get(EGRESS),
        caching=latest.get(CACHING),
        cpu_count=len(cpus),
        cpu_mean=sum(cpus) / len(cpus) if cpus else None,
        input_timestamp=None if timestamp is None else str(timestamp),
        written_at=None if last_write_ms is None else utc_text(last_write_ms),
    )
