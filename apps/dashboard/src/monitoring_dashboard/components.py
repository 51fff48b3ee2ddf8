"""Dash components both pages use; every string is passed as text, never as HTML."""

from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
from dash import Dash, Input, Output, State, dcc, html

from monitoring_dashboard import ids, time_range
from monitoring_dashboard.notices import Notice

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


def refresh_on_range_change(app: Dash, interval_id: str) -> None:
    """A new time-range choice counts as a tick of the page's interval: it refreshes at once."""
    app.clientside_callback(  # type: ignore[no-untyped-call]
        "function(_value, ticks) { return (ticks || 0) + 1; }",
        Output(interval_id, "n_intervals"),
        Input(ids.TIME_RANGE, "value"),
        State(interval_id, "n_intervals"),
        prevent_initial_call=True,
    )


def failure_alert() -> dbc.Alert:
    """What a page shows when a refresh failed unexpectedly (the log has the traceback)."""
    return dbc.Alert(
        "The dashboard could not render the latest data; details are in its log. "
        "It keeps trying on every refresh.",
        color="danger",
        fade=False,
    )


def graph_card(
    title: Any, figure: dict[str, Any], note: str = "times in UTC", **graph: Any
) -> dbc.Card:
    """A graph under a header: its title, then a note (by default, that times are in UTC)."""
    header = [title, html.Span(note, className="text-body-secondary small ms-2")]
    return dbc.Card(
        [
            dbc.CardHeader(header),
            dbc.CardBody(dcc.Graph(figure=figure, config=GRAPH_CONFIG, **graph), className="p-1"),
        ],
        className="h-100 shadow-sm",
    )
