"""The Functions page's refresh callback; strings from Redis reach the page as text, never HTML."""

from __future__ import annotations

import logging
from typing import Any

import dash_bootstrap_components as dbc
from dash import ALL, Dash, Input, Output, State, dcc, html, no_update

from monitoring_dashboard import ids
from monitoring_dashboard.components import (
    failure_alert,
    graph_card,
    notice_alert,
    refresh_on_range_change,
)
from monitoring_dashboard.ops import OpsText
from monitoring_dashboard.pages.functions.view import (
    FunctionView,
    ListView,
    build_function_view,
    build_list,
)
from monitoring_dashboard.scraper import MetricsScraper
from monitoring_dashboard.settings import Settings
from monitoring_dashboard.snapshots import FunctionList, Reader, Snapshot, attempt
from monitoring_dashboard.time_range import chosen_minutes

log = logging.getLogger(__name__)

# (label, OpsText field) of the operations columns and figures.
OPS_FIELDS = (
    ("calls/s", "rate"),
    ("errors", "errors"),
    ("p50", "p50"),
    ("p95", "p95"),
    ("reloads", "reloads"),
    ("role", "leader"),
    ("input age", "input_age"),
)
OUTPUTS = [
    *(
        Output(i, "children")
        for i in (ids.FUNCTIONS_NOTICES, ids.FUNCTIONS_LIST, ids.FUNCTION_HEAD, ids.FUNCTION_BODY)
    ),
    Output(ids.FUNCTIONS_VERSION, "data"),
]


def register(
    app: Dash, settings: Settings, reader: Reader, scraper: MetricsScraper | None = None
) -> None:
    """Attach the Functions page's refresh callback to app (scraper: the runtimes' /metrics)."""

    @app.callback(
        *OUTPUTS,
        Input(ids.FUNCTIONS_REFRESH, "n_intervals"),
        State(ids.FUNCTIONS_SELECTED, "data"),
        State(ids.FUNCTIONS_VERSION, "data"),
        State(ids.TIME_RANGE, "value"),
        State(ids.FUNCTIONS_FILTER, "value"),
        State(ids.FUNCTIONS_PAGE, "data"),
    )
    def refresh(
        _ticks: Any, selected: Any, rendered_version: Any, range_choice: Any, query: Any, page: Any
    ) -> tuple[Any, ...]:
        """Read Redis and update the Functions page; never lets an exception reach the page."""
        chosen = selected if isinstance(selected, str) and selected else None
        minutes = chosen_minutes(range_choice, settings.history_minutes)
        # The filter text and page number the browser sent, as the reader takes them.
        text = query.strip() if isinstance(query, str) else ""
        number = page if isinstance(page, int) and not isinstance(page, bool) else 1
        try:
            found = attempt(lambda: reader.list_functions(text, number))
            snap = None if chosen is None else attempt(lambda: reader.read_function(chosen))
            metrics = snap.record.metrics if isinstance(snap, Snapshot) else ""
            listed = found.functions if isinstance(found, FunctionList) else []
            urls = [url for url in (*(item.record.metrics for item in listed), metrics) if url]
            scrapes = scraper.scrape(urls) if scraper is not None and urls else {}
            listing = build_list(found, chosen, settings.redis_location, scrapes, minutes * 60)
            view = None
            if chosen is not None:
                view = build_function_view(
                    snap,
                    chosen,
                    location=settings.redis_location,
                    rendered_version=rendered_version,
                    scraped=scrapes.get(metrics),
                    range_minutes=minutes,
                )
        except Exception:
            # The one boundary: odd data must cost a message, not the page.
            log.exception("cannot render the functions page")
            return failure_alert(), no_update, no_update, no_update, no_update
        return render(listing, view)

    refresh_on_range_change(app, ids.FUNCTIONS_REFRESH)
    turn_pages(app)


def turn_pages(app: Dash) -> None:
    """A new filter shows its first page, a click on the pager that page: either is stored for
    the refresh callback and counts as a tick of the page's interval (a refresh at once)."""
    app.clientside_callback(  # type: ignore[no-untyped-call]
        """function(_query, active, page, ticks) {
            const noUpdate = window.dash_clientside.no_update;
            const fired = window.dash_clientside.callback_context.triggered.map((t) => t.prop_id);
            let wanted = 1;
            if (!fired.includes("functions-filter.value")) {
                wanted = (active || []).find((value) => value) || page || 1;
                if (wanted === page) { return [noUpdate, noUpdate]; }
            }
            return [wanted, (ticks || 0) + 1];
        }""",
        Output(ids.FUNCTIONS_PAGE, "data"),
        Output(ids.FUNCTIONS_REFRESH, "n_intervals", allow_duplicate=True),
        Input(ids.FUNCTIONS_FILTER, "value"),
        Input({"type": ids.FUNCTIONS_PAGER, "index": ALL}, "active_page"),
        State(ids.FUNCTIONS_PAGE, "data"),
        State(ids.FUNCTIONS_REFRESH, "n_intervals"),
        prevent_initial_call=True,
    )


def render(listing: ListView, view: FunctionView | None) -> tuple[Any, ...]:
    notices = [notice_alert(notice) for notice in listing.notices]
    if view is None:
        return notices, list_part(listing), None, no_update, None
    body = no_update if view.version is None else function_body(view)
    version = no_update if view.version is None else view.version
    return notices, list_part(listing), function_head(view), body, version


def list_part(listing: ListView) -> Any:
    """The table, under which registered functions it shows and over a pager when it is paged."""
    # Only a paged or filtered list has a count (count_text), and only a counted one a pager.
    if listing.count is None:
        return list_table(listing)
    count = html.P(listing.count, className="small text-body-secondary mb-1", id="functions-count")
    parts: list[Any] = [count, list_table(listing)]
    if listing.pages > 1:
        parts.append(
            dbc.Pagination(
                id={"type": ids.FUNCTIONS_PAGER, "index": 0},
                active_page=listing.page,
                max_value=listing.pages,
                fully_expanded=False,
                previous_next=True,
                size="sm",
                class_name="mt-2 mb-0",
            )
        )
    return html.Div(parts)


def list_table(listing: ListView) -> Any:
    """The functions as a table; each output key links to its generic view."""
    if not listing.rows:
        return html.P(listing.placeholder or "", className="text-body-secondary")
    names = ("output key", "input", "trigger", "last output")
    ops = [html.Th(label, className="text-end") for label, _ in OPS_FIELDS]
    header = [*(html.Th(name) for name in names), *ops, html.Th("last error")]
    rows = []
    for row in listing.rows:
        link = dcc.Link(row.output, href=row.href, className="fw-semibold text-break")
        badges = (
            [] if row.registered else [dbc.Badge("configured", color="secondary", className="ms-2")]
        )
        status: Any = ""
        if row.load_failure:
            status = html.Span(row.load_failure, className="text-warning-emphasis small")
        elif row.error:
            status = html.Span(row.error, className="text-danger small text-break")
        elif row.last_error:
            status = html.Span(row.last_error, className="text-body-secondary small")
        rows.append(
            html.Tr(
                [
                    html.Td([link, *badges]),
                    html.Td(html.Code(row.input), className="text-break"),
                    html.Td(row.trigger),
                    html.Td(row.last_output),
                    *_ops_cells(row.ops),
                    html.Td(status),
                ],
                className="table-active" if row.selected else None,
            )
        )
    return _table(header, rows, class_name="bg-white mb-0", id="functions-table")


def _table(header: list[Any], rows: list[Any], **options: Any) -> dbc.Table:
    return dbc.Table(
        [html.Thead(html.Tr(header)), html.Tbody(rows)],
        hover=True,
        responsive=True,
        size="sm",
        **options,
    )


def _ops_cells(ops: OpsText) -> list[Any]:
    # The note (the window covered, or why there are no figures) is each cell's tooltip.
    warn = " text-warning-emphasis" if ops.problem else ""
    return [
        html.Td(
            getattr(ops, name), className=f"text-end text-nowrap ops-{name}{warn}", title=ops.note
        )
        for _, name in OPS_FIELDS
    ]


def ops_panel(ops: OpsText) -> Any:
    """The selected function's operations figures, each labelled, and what they cover."""
    figures = [
        html.Div(
            [
                html.Div(label, className="text-body-secondary small text-uppercase"),
                html.Div(getattr(ops, name), className=f"fs-5 fw-semibold ops-{name}"),
            ],
            className="me-4 mb-2",
        )
        for label, name in OPS_FIELDS
    ]
    note = "text-warning-emphasis" if ops.problem else "text-body-secondary"
    return html.Div(
        [
            html.Div(figures, className="d-flex flex-wrap"),
            html.Div(ops.note, className=f"small {note}"),
        ],
        className="border rounded bg-white px-3 pt-2 pb-2 mb-3",
        id="function-ops",
    )


def function_head(view: FunctionView) -> Any:
    """The selected function's name, facts and notices (refreshed every time)."""
    facts = [
        html.Div(
            [html.Span(name, className="text-body-secondary me-1"), html.Span(value)],
            className="me-4 small",
        )
        for name, value in view.facts
    ]
    return html.Div(
        [
            html.H2(view.title, className="h4 text-break", id="function-title"),
            html.Div(facts, className="d-flex flex-wrap mb-2"),
            *(notice_alert(notice) for notice in view.notices),
            *([] if view.ops is None else [ops_panel(view.ops)]),
        ]
    )


def function_body(view: FunctionView) -> Any:
    """The latest output as a table of key paths, then one chart per numeric key."""
    parts: list[Any] = [html.H3("Latest output", className="h5")]
    if view.table_placeholder is not None:
        parts.append(html.P(view.table_placeholder, className="text-body-secondary"))
    else:
        table_rows = [
            html.Tr(
                [
                    html.Td(html.Code(row.path), className="text-break"),
                    html.Td(
                        row.text, className="text-break" + (" text-end" if row.numeric else "")
                    ),
                ]
            )
            for row in view.rows
        ]
        header = [html.Th("key"), html.Th("value")]
        parts.append(_table(header, table_rows, class_name="bg-white", id="function-output-table"))
        if view.truncated:
            parts.append(html.P("More values are not shown.", className="text-body-secondary"))
    parts.append(html.H3("Numbers over time", className="h5 mt-3"))
    if view.chart_placeholder is not None:
        parts.append(html.P(view.chart_placeholder, className="text-body-secondary"))
    cards = [
        dbc.Col(graph_card(html.Code(chart.path, className="fw-semibold"), chart.figure), lg=6)
        for chart in view.charts
    ]
    if cards:
        parts.append(dbc.Row(cards, className="g-3", id="function-charts"))
    if view.omitted_charts:
        more = f"{view.omitted_charts} more numeric keys are not charted (their latest values "
        parts.append(html.P(f"{more}are in the table).", className="text-body-secondary mt-2"))
    return html.Div(parts)
