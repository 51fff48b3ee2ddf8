"""Functions page: every function found in the registry, and a generic view of the selected one."""

from __future__ import annotations

from typing import Any

import dash
from dash import dcc, html
from flask import current_app

from monitoring_dashboard import ids
from monitoring_dashboard.components import range_choice
from monitoring_dashboard.layout import TITLE
from monitoring_dashboard.pages.functions.view import PATH
from monitoring_dashboard.settings import SETTINGS_CONFIG_KEY, Settings

dash.register_page(  # type: ignore[no-untyped-call]
    __name__, path=PATH, name="Functions", title=f"Functions · {TITLE}", order=1
)


def layout(output: Any = None, **_kwargs: Any) -> html.Div:
    """The page for `?output=<key>` (none: the list only); a callback fills it on every refresh."""
    settings: Settings = current_app.config[SETTINGS_CONFIG_KEY]
    selected = output if isinstance(output, str) and output else None
    return html.Div(
        [
            dcc.Interval(id=ids.FUNCTIONS_REFRESH, interval=settings.refresh_ms),
            dcc.Store(id=ids.FUNCTIONS_SELECTED, data=selected, storage_type="memory"),
            dcc.Store(id=ids.FUNCTIONS_VERSION, storage_type="memory"),
            # The page and the filter are kept while the tab is open: selecting a function keeps
            # the list as it was.
            dcc.Store(id=ids.FUNCTIONS_PAGE, data=1, storage_type="session"),
            html.Div(
                [
                    html.H1("Functions", className="h3 mb-0 me-3"),
                    range_choice(ids.TIME_RANGE, settings.history_minutes),
                ],
                className="d-flex flex-wrap align-items-center gap-2 mb-3",
            ),
            html.Div(id=ids.FUNCTIONS_NOTICES, role="status"),
            list_filter(),
            html.Div("Loading…", id=ids.FUNCTIONS_LIST, className="mb-4"),
            html.Div(id=ids.FUNCTION_HEAD, role="status"),
            html.Div(
                "Select a function above to see its latest output and its numbers over time."
                if selected is None
                else "Loading…",
                id=ids.FUNCTION_BODY,
            ),
        ]
    )


def list_filter() -> html.Div:
    """The list's filter: functions whose output key contains the text (any case)."""
    return html.Div(
        [
            html.Label(
                "Filter the functions by output key",
                htmlFor=ids.FUNCTIONS_FILTER,
                className="visually-hidden",
            ),
            dcc.Input(
                id=ids.FUNCTIONS_FILTER,
                type="search",
                placeholder="Filter by output key",
                debounce=0.3,
                maxLength=200,
                persistence=True,
                persistence_type="session",
                className="form-control form-control-sm",
            ),
        ],
        className="mb-2",
        style={"maxWidth": "22rem"},
    )
