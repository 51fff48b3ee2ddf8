"""Live page: KPIs, history graphs, per-CPU averages and the latest values."""

from __future__ import annotations

from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import dcc, html
from flask import current_app

from monitoring_dashboard import ids
from monitoring_dashboard.components import graph_card, range_choice
from monitoring_dashboard.layout import TITLE
from monitoring_dashboard.plotting import empty_figure
from monitoring_dashboard.settings import SETTINGS_CONFIG_KEY, Settings

dash.register_page(  # type: ignore[no-untyped-call]
    __name__, path="/", name="Live", title=f"Live · {TITLE}", order=0
)

WAITING = "Waiting for data…"


def layout(**_kwargs: Any) -> html.Div:
    settings: Settings = current_app.config[SETTINGS_CONFIG_KEY]
    return html.Div(
        [
            # On the page rather than in the shell: the refresh starts when the page is shown
            # and stops while another page is.
            dcc.Interval(id=ids.REFRESH, interval=settings.refresh_ms),
            # Which data the graphs show, so a refresh without new data leaves them alone.
            dcc.Store(id=ids.LIVE_VERSION, storage_type="memory"),
            html.Div(
                [
                    html.H1("Live", className="h3 mb-0 me-3"),
                    html.Span(settings.output_key, className="text-body-secondary me-3"),
                    range_choice(ids.TIME_RANGE, settings.history_minutes),
                    html.Div(id=ids.FRESHNESS, className="ms-auto", role="status"),
                ],
                className="d-flex flex-wrap align-items-center gap-2 mb-3",
            ),
            html.Div(id=ids.NOTICES, role="status"),
            dbc.Row(
                [
                    _kpi("Network egress", ids.KPI_EGRESS, "bytes sent / (sent + received)"),
                    _kpi("Memory caching", ids.KPI_CACHING, "(cached + buffers) / total"),
                    _kpi("CPUs", ids.KPI_CPU, "count · mean of 60 s averages"),
                    _kpi(
                        "Latest output",
                        ids.KPI_INPUT,
                        "written at, in UTC",
                        "fs-5 fw-semibold text-break",
                    ),
                ],
                className="g-3 mb-3",
            ),
            _graph_row(
                ("Network egress %", ids.GRAPH_EGRESS), ("Memory caching %", ids.GRAPH_CACHING)
            ),
            _graph_row(
                ("CPU utilization, 60 s moving average", ids.GRAPH_CPU_LINES),
                ("CPU utilization per CPU (heatmap)", ids.GRAPH_CPU_HEATMAP),
                width="xl",
            ),
            _graph_card("Latest values", ids.GRAPH_LATEST, "of the newest output"),
        ]
    )


def _kpi(
    title: str, component_id: str, hint: str, value_class: str = "fs-3 fw-semibold"
) -> dbc.Col:
    body = [
        html.Div(title, className="text-body-secondary small text-uppercase"),
        html.Div("—", id=component_id, className=value_class),
        html.Div(hint, className="text-body-secondary small"),
    ]
    return dbc.Col(dbc.Card(dbc.CardBody(body), className="h-100 shadow-sm"), xs=12, sm=6, xl=3)


def _graph_row(*cards: tuple[str, str], width: str = "lg") -> dbc.Row:
    """Graph cards side by side from the `width` breakpoint up."""
    cols = [dbc.Col(_graph_card(title, graph_id), **{width: 6}) for title, graph_id in cards]
    return dbc.Row(cols, className="g-3 mb-3")


def _graph_card(title: str, graph_id: str, note: str = "times in UTC") -> dbc.Card:
    title_span = html.Span(title, className="fw-semibold")
    return graph_card(title_span, empty_figure(WAITING), note, id=graph_id)
