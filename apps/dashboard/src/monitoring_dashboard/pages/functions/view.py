"""What the Functions page shows, the list and the generic view of one, decided without Dash."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from urllib.parse import quote

from monitoring_dashboard import plotting
from monitoring_dashboard.display import iso_utc_text, rounded
from monitoring_dashboard.flatten import Row, flatten, numbers, safe_text
from monitoring_dashboard.freshness import error_is_current, format_age
from monitoring_dashboard.notices import (
    Notice,
    function_notices,
    load_failure_notice,
    problem_notices,
    unreachable_notice,
)
from monitoring_dashboard.ops import OpsText, ops_text
from monitoring_dashboard.plotting import Figure
from monitoring_dashboard.scraper import Scraped
from monitoring_dashboard.snapshots import (
    PAGE_SIZE,
    FunctionList,
    FunctionSummary,
    Point,
    ReadError,
    Snapshot,
)

PATH = "/functions"
# Charts per function; the rest are counted, and the table still shows every value.
MAX_CHARTS = 24


@dataclass(frozen=True)
class ListRow:
    """One function in the list, every field plain text."""

    output: str
    href: str
    input: str
    trigger: str
    last_output: str
    error: str | None
    registered: bool
    selected: bool
    ops: OpsText = field(default_factory=OpsText)
    # The newest error record, however old: its kind and age.
    last_error: str | None = None
    # The newest version failed to load (the previous one, if any, runs): the banner's text.
    load_failure: str | None = None


@dataclass(frozen=True)
class ListView:
    """The list part of the page; `placeholder` when there is no row to show."""

    notices: list[Notice] = field(default_factory=list)
    rows: list[ListRow] = field(default_factory=list)
    placeholder: str | None = None
    # "Functions 26-50 of 500" above the rows (None: one unfiltered page), and the pager's state.
    count: str | None = None
    page: int = 1
    pages: int = 1


@dataclass(frozen=True)
class Chart:
    path: str
    figure: Figure


@dataclass(frozen=True)
class FunctionView:
    """The generic view of one function; `version` None means "keep the body as shown"."""

    title: str
    notices: list[Notice] = field(default_factory=list)
    facts: list[tuple[str, str]] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    table_placeholder: str | None = None
    truncated: bool = False
    charts: list[Chart] = field(default_factory=list)
    chart_placeholder: str | None = None
    omitted_charts: int = 0
    version: str | None = None
    ops: OpsText | None = None


def href(output_key: str) -> str:
    """The page address that selects a function (any key name, percent-encoded)."""
    return f"{PATH}?output={quote(output_key, safe='')}"


def build_list(
    result: FunctionList | ReadError,
    selected: str | None,
    location: str,
    scrapes: Mapping[str, Scraped] | None = None,
    window: float = 3600.0,
) -> ListView:
    """The list of functions for one refresh, with each one's operations over `window` seconds."""
    if isinstance(result, ReadError):
        return ListView(
            [unreachable_notice(location, result)],
            placeholder="The list appears once Redis answers.",
        )
    notices = problem_notices(result.problems)
    placeholder = f"No function's output key contains “{safe_text(result.query, 80)}”."
    if not result.query:
        placeholder = "No function found."
    scrapes = scrapes or {}
    rows = [
        _list_row(summary, result.now_ms, selected, scrapes.get(summary.record.metrics), window)
        for summary in result.functions
    ]
    return ListView(
        notices,
        rows,
        None if rows else placeholder,
        count=count_text(result),
        page=result.page,
        pages=result.pages,
    )


def count_text(result: FunctionList) -> str | None:
    """Which registered functions the list shows, when not all of them: "Functions 1-25 of 500"."""
    if result.total == 0 or (result.pages == 1 and not result.query):
        return None
    first = min((result.page - 1) * PAGE_SIZE + 1, result.matched)
    last = min(result.page * PAGE_SIZE, result.matched)
    if not result.query:
        return f"Functions {first}-{last} of {result.total}"
    return (
        f"Functions {first}-{last} of {result.matched} whose output key contains "
        f"“{safe_text(result.query, 80)}” ({result.total} registered)"
    )


def _list_row(
    summary: FunctionSummary,
    now_ms: int,
    selected: str | None,
    scraped: Scraped | None = None,
    window: float = 3600.0,
) -> ListRow:
    record = summary.record
    trigger = " · ".join(part for part in (record.trigger, record.invoke_on) if part) or "—"
    error = last_error = None
    if (failure := summary.error) is not None:
        when = "" if failure.at_ms is None else f", {_ago(failure.at_ms, now_ms)}"
        last_error = safe_text(failure.kind, 60) + when
        if error_is_current(failure.at_ms, summary.last_write_ms, now_ms):
            error = safe_text(f"{failure.kind}: {failure.message}")
    return ListRow(
        output=safe_text(record.output),
        href=href(record.output),
        input=_input_text(record.input, record.input_kind),
        trigger=trigger,
        last_output=_last_output(summary.last_write_ms, now_ms, summary.output_exists),
        error=error,
        registered=summary.registered,
        selected=record.output == selected,
        ops=ops_text(record, scraped, window),
        last_error=last_error,
        load_failure=None
        if record.load_failure is None
        else load_failure_notice(record.load_failure).body,
    )


def build_function_view(
    result: Snapshot | ReadError | None,
    selected: str,
    *,
    location: str,
    rendered_version: object,
    scraped: Scraped | None,
    range_minutes: float,
) -> FunctionView:
    """The selected function's view; charts and figures cover the last `range_minutes`."""
    title = safe_text(selected)
    if isinstance(result, ReadError):
        return FunctionView(title, [unreachable_notice(location, result)])
    if result is None:
        body = "No listed function has this output key. Pick one from the list above."
        return FunctionView(title, [Notice("warning", "Unknown function", body)], version="unknown")
    since = result.now_ms - int(range_minutes * 60_000)
    snap = replace(result, history=[point for point in result.history if point.at_ms >= since])
    record = snap.record
    times = (snap.last_write_ms, snap.now_ms)
    notices = function_notices(snap.problems, record.load_failure, snap.error, times)
    version = f"{range_minutes}:{_version(snap)}"
    ops = ops_text(record, scraped, range_minutes * 60)
    view = FunctionView(title, notices, _facts(snap), ops=ops)
    if version == rendered_version:
        return view
    latest = list(numbers(snap.output)) if snap.has_output else []
    charts, omitted, placeholder = _charts(snap, latest)
    view = replace(view, charts=charts, chart_placeholder=placeholder, omitted_charts=omitted)
    if not snap.has_output:
        empty = f"Key {safe_text(record.output)} holds no output yet."
        return replace(view, table_placeholder=empty, version=version)
    flat = flatten(snap.output)
    return replace(view, rows=flat.rows, truncated=flat.truncated, version=version)


def series(
    history: Sequence[Point], first: list[str] | None = None
) -> list[tuple[str, list[int], list[float | None]]]:
    """Each numeric path over the history (a gap where an output lacks it), `first` paths first."""
    order = dict.fromkeys([*(first or []), *(path for point in history for path in point.values)])
    times = [point.at_ms for point in history]
    return [(path, times, [point.values.get(path) for point in history]) for path in order]


def _charts(snap: Snapshot, latest_paths: list[str]) -> tuple[list[Chart], int, str | None]:
    if snap.record.history is None:
        return [], 0, "This function writes no history (HISTORY_KEY empty): nothing to chart."
    if not snap.has_history:
        return [], 0, "No history yet: the charts appear with the function's first output."
    found = [
        item for item in series(snap.history, latest_paths) if any(v is not None for v in item[2])
    ]
    if not found:
        return [], 0, "The outputs hold no numbers to chart."
    charts = [
        Chart(safe_text(path), number_series_figure(safe_text(path), times, values))
        for path, times, values in found[:MAX_CHARTS]
    ]
    return charts, max(0, len(found) - MAX_CHARTS), None


def _facts(snap: Snapshot) -> list[tuple[str, str]]:
    record = snap.record
    facts = [
        ("input", _input_text(record.input, record.input_kind)),
        ("last output", _last_output(snap.last_write_ms, snap.now_ms, snap.has_output)),
        ("history", safe_text(record.history or "none (HISTORY_KEY empty)")),
    ]
    if record.trigger:
        facts.append(("trigger", f"{record.trigger} · invoke on {record.invoke_on}"))
    if record.function:
        facts.append(("function", safe_text(f"{record.function} {record.handler}".strip())))
    if record.registered_at:
        facts.append(("registered", safe_text(iso_utc_text(record.registered_at))))
    if record.metrics:
        facts.append(("metrics", safe_text(record.metrics)))
    if not snap.registered:
        facts.append(("registry", "not registered: the function this dashboard is set up for"))
    return facts


def _ago(at_ms: int, now_ms: int) -> str:
    return f"{format_age(max(0.0, (now_ms - at_ms) / 1000))} ago"


def _last_output(last_write_ms: int | None, now_ms: int, exists: bool) -> str:
    if last_write_ms is not None:
        return _ago(last_write_ms, now_ms)
    return "written (time unknown: no history)" if exists else "never written"


def _input_text(input_key: str, kind: str) -> str:
    if not input_key:
        return "—"
    return safe_text(f"stream {input_key}" if kind == "stream" else input_key)


def _version(snap: Snapshot) -> str:
    """What the body shows: changes when an output, a history entry or the record changes."""
    shown = f"{snap.has_output}:{snap.record.to_json()}:{snap.output_raw or ''}"
    digest = hashlib.blake2b(shown.encode(), digest_size=8).hexdigest()
    return f"{snap.last_entry_id}:{len(snap.history)}:{digest}"


def number_series_figure(
    name: str, times_ms: Sequence[int], values: Sequence[float | None]
) -> Figure:
    """Any numeric key of a function's output over time, as a plain line."""
    trace = {
        "type": "scatter",
        "mode": "lines+markers" if len(values) < 30 else "lines",
        "x": list(times_ms),
        "y": [None if value is None else rounded(value) for value in values],
        "name": plotting.escape(name),
        "connectgaps": False,
        "line": {"color": plotting.BLUE, "width": 2},
        "hovertemplate": "%{y}<extra></extra>",
    }
    return plotting.time_figure([trace], 220, {"gridcolor": plotting.GRID_COLOR}, showlegend=False)
