"""The Live page's refresh callback: fetch, decide, render."""

from __future__ import annotations

import logging
import time
from typing import Any

import dash_bootstrap_components as dbc
from dash import Dash, Input, Output, State, html, no_update

from monitoring_dashboard import ids
from monitoring_dashboard.components import failure_alert, notice_alert, refresh_on_range_change
from monitoring_dashboard.freshness import Freshness
from monitoring_dashboard.pages.live.view import Kpis, LiveView, build_view
from monitoring_dashboard.settings import Settings
from monitoring_dashboard.snapshots import Reader, attempt
from monitoring_dashboard.time_range import chosen_minutes

log = logging.getLogger(__name__)

GRAPHS = {
    "egress": ids.GRAPH_EGRESS,
    "caching": ids.GRAPH_CACHING,
    "cpu_lines": ids.GRAPH_CPU_LINES,
    "cpu_heatmap": ids.GRAPH_CPU_HEATMAP,
    "latest": ids.GRAPH_LATEST,
}


OUTPUTS = [
    *(Output(i, "children") for i in (ids.NOTICES, ids.FRESHNESS, *ids.KPIS)),
    *(Output(graph_id, "figure") for graph_id in GRAPHS.values()),
    *(Output(i, "data") for i in (ids.STATUS_STORE, ids.HISTORY_STORE, ids.LIVE_VERSION)),
]


def register(app: Dash, settings: Settings, reader: Reader) -> None:

    @app.callback(
        *OUTPUTS,
        Input(ids.REFRESH, "n_intervals"),
        State(ids.STATUS_STORE, "data"),
        State(ids.HISTORY_STORE, "data"),
        State(ids.LIVE_VERSION, "data"),
        State(ids.TIME_RANGE, "value"),
    )
    def refresh(
        _ticks: Any, status: Any, stored_history: Any, rendered_version: Any, range_choice: Any
    ) -> tuple[Any, ...]:
        """Read Redis and update the Live page; never lets an exception reach the page."""
        try:
            view = build_view(
                attempt(reader.read),
                settings=settings,
                status=status,
                stored_history=stored_history,
                rendered_version=rendered_version,
                local_now_ms=int(time.time() * 1000),
                range_minutes=chosen_minutes(range_choice, settings.history_minutes),
            )
        except Exception:
            # The one boundary: odd data must cost a message, not the page.
            log.exception("cannot render the live page")
            return (failure_alert(), *(no_update for _ in range(len(OUTPUTS) - 1)))
        return render(view)

    refresh_on_range_change(app, ids.REFRESH)


def render(view: LiveView) -> tuple[Any, ...]:
    """Map a LiveView onto the callback's outputs (no_update where the view keeps things)."""
    kpis, figures = view.kpis, view.figures
    return (
        [notice_alert(notice) for notice in view.notices],
        freshness_badge(view.freshness),
        no_update if kpis is None else percent_text(kpis.egress),
        no_update if kpis is None else percent_text(kpis.caching),
        no_update if kpis is None else cpu_text(kpis),
        no_update if kpis is None else latest_output_text(kpis),
        *(no_update if figures is None else figures[name] for name in GRAPHS),
        no_update if view.status is None else view.status,
        no_update if view.browser_history is None else view.browser_history,
        no_update if view.version is None else view.version,
    )


def freshness_badge(freshness: Freshness | None) -> dbc.Badge:
    """`updated 12 s ago`, green while fresh, amber once stale."""
    if freshness is None:
        return dbc.Badge("no data yet", color="secondary", className="fs-6")
    label = f"stale: {freshness.text}" if freshness.stale else freshness.text
    title = (
        "Time this page first saw the current output (the runtime writes no history)"
        if freshness.seen_by_page
        else "Time the runtime wrote the newest history entry"
    )
    color = "warning" if freshness.stale else "success"
    return dbc.Badge(label, color=color, className="fs-6", title=title)


def percent_text(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f} %"


def latest_output_text(kpis: Kpis) -> list[Any]:
    """When the newest output was written (UTC), and the input's own stamp beneath it."""
    stamp = kpis.input_timestamp
    return [
        html.Div(kpis.written_at or "—", id="kpi-written"),
        html.Div(
            f"input stamped {stamp} (the collector's clock)" if stamp else "",
            className="fw-normal text-body-secondary",
            style={"fontSize": "0.8rem"},
            id="kpi-input-stamp",
        ),
    ]


def cpu_text(kpis: Kpis) -> str:
    if kpis.cpu_count == 0:
        return "—"
    return f"{kpis.cpu_count} · mean {percent_text(kpis.cpu_mean)}"
