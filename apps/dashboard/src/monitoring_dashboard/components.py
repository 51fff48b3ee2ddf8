"""Small Dash components for the Live page; every string is passed as text, never as HTML."""

from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
from dash import dcc, html

from monitoring_dashboard import time_range
from monitoring_dashboard.freshness import Freshness
from monitoring_dashboard.view import Kpis, Notice

# The mode bar (zoom, pan, download) appears while the pointer is over a graph: shown all the
# time, it covers the newest points in the top right corner.
GRAPH_CONFIG = dcc.Graph.Config(displaylogo=False, displayModeBar="hover")


def range_choice(component_id: str, history_minutes: float) -> dbc.RadioItems:
    """15 min / 1 h / 6 h as a button group, within the kept history; kept while the tab lives."""
    return dbc.RadioItems(
        id=component_id,
        options=time_range.options(history_minutes),
        value=time_range.default(history_minutes),
        inline=True,
        class_name="btn-group btn-group-sm",
        input_class_name="btn-check",
        label_class_name="btn btn-outline-secondary",
        label_checked_class_name="active",
        persistence=True,
        persistence_type="session",
    )


def notice_alert(notice: Notice) -> dbc.Alert:
    """A Bootstrap alert for a notice; a traceback goes into a collapsed details block."""
    children: list[Any] = [html.Strong(notice.title), html.Div(notice.body)]
    if notice.details:
        children.append(
            html.Details(
                [html.Summary("Traceback"), html.Pre(notice.details, className="small mb-0")],
                className="mt-2",
            )
        )
    return dbc.Alert(children, color=notice.level, className="mb-2", fade=False)


def freshness_badge(freshness: Freshness | None) -> dbc.Badge:
    """`updated 12 s ago`, green while fresh, amber once stale."""
    if freshness is None:
        return dbc.Badge("no data yet", color="secondary", className="fs-6")
    label = freshness.text
    if freshness.stale:
        label = f"stale: {label}"
    title = (
        "Time this page first saw the current output (the runtime writes no history)"
        if freshness.seen_by_page
        else "Time the runtime wrote the newest history entry"
    )
    color = "warning" if freshness.stale else "success"
    return dbc.Badge(label, color=color, className="fs-6", title=title)


def percent_text(value: float | None) -> str:
    """A KPI value as shown: two decimals and a percent sign."""
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
    """CPU count and the mean of their moving averages."""
    if kpis.cpu_count == 0:
        return "—"
    return f"{kpis.cpu_count} · mean {percent_text(kpis.cpu_mean)}"
