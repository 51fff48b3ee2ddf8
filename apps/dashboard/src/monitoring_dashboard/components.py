"""Small Dash components for the Live page; every string is passed as text, never as HTML."""

from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
from dash import html

from monitoring_dashboard.freshness import Freshness
from monitoring_dashboard.view import Kpis, Notice


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


def cpu_text(kpis: Kpis) -> str:
    """CPU count and the mean of their moving averages."""
    if kpis.cpu_count == 0:
        return "—"
    return f"{kpis.cpu_count} · mean {percent_text(kpis.cpu_mean)}"
