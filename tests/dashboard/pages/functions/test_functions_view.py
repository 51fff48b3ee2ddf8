"""What the Functions page decides for one refresh, without Dash or Redis."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from monitoring_dashboard.ops import Sample, Scrape
from monitoring_dashboard.pages.functions.view import (
    MAX_CHARTS,
    build_function_view,
    build_list,
    href,
    series,
)
from monitoring_dashboard.redis_reads import parse_error
from monitoring_dashboard.scraper import Scraped
from monitoring_dashboard.snapshots import FunctionList, FunctionSummary, Point, ReadError, Snapshot
from serverless_runtime.registry import FunctionRecord, LoadFailure

NOW = 1_800_000_000_000
RECORD = FunctionRecord(
    output="cpu-stats",
    input="metrics",
    history="cpu-stats:history",
    error="cpu-stats:error",
    state="cpu-stats:state",
    trigger="notify",
    invoke_on="change",
    function="/opt/function/usermodule.py",
    handler=":handler",
    registered_at="2026-12-01T12:00:00+00:00",
)


def error_at(ms: int, message: str = "boom"):
    at = datetime.fromtimestamp(ms / 1000, UTC).isoformat()
    return parse_error({"at": at, "kind": "handler-error", "message": message, "traceback": "tb"})


def snapshot(output, history=None, **extra) -> Snapshot:
    """A snapshot of `output` and its history, given as (write time, values) pairs."""
    history = [(NOW - 5000, {"a": 1.0})] if history is None else history
    return Snapshot(
        NOW,
        extra.pop("record", RECORD),
        extra.pop("registered", True),
        output=output,
        has_output=extra.pop("has_output", True),
        output_raw=extra.pop("output_raw", "raw"),
        history=[Point(at_ms, values) for at_ms, values in history],
        has_history=bool(history),
        last_write_ms=history[-1][0] if history else None,
        last_entry_id=f"{history[-1][0]}-0" if history else None,
        **extra,
    )


def view(result, rendered=None, selected="cpu-stats", scraped=None, range_minutes=60):
    return build_function_view(
        result,
        selected,
        location="redis://127.0.0.1:6379/0",
        rendered_version=rendered,
        scraped=scraped,
        range_minutes=range_minutes,
    )


def test_list_shows_each_function_with_last_output_and_current_error() -> None:
    listing = FunctionList(
        NOW,
        [
            FunctionSummary(
                FunctionRecord("resource-monitor", "metrics"), False, output_exists=True
            ),
            FunctionSummary(RECORD, True, output_exists=True, last_write_ms=NOW - 12_000),
            FunctionSummary(
                FunctionRecord("orders-out", "orders", input_kind="stream", trigger="stream"),
                True,
                error=error_at(NOW - 1000),
            ),
        ],
    )
    result = build_list(listing, "cpu-stats", "here")
    by_key = {row.output: row for row in result.rows}
    assert by_key["cpu-stats"].last_output == "12 s ago" and by_key["cpu-stats"].selected
    assert by_key["cpu-stats"].trigger == "notify · change"
    assert by_key["cpu-stats"].error is None
    assert by_key["resource-monitor"].last_output == "written (time unknown: no history)"
    assert not by_key["resource-monitor"].registered
    assert by_key["orders-out"].input == "stream orders"
    assert by_key["orders-out"].last_output == "never written"
    assert by_key["orders-out"].error == "handler-error: boom"
    assert result.notices == []


def test_list_placeholders_for_no_function_and_unreachable_redis() -> None:
    assert build_list(FunctionList(NOW), None, "here").placeholder == "No function found."
    down = build_list(ReadError("ConnectionError: refused"), None, "redis://h:1/0")
    assert down.rows == [] and down.notices[0].title == "Redis is unreachable"
    assert "redis://h:1/0" in down.notices[0].body
    odd = build_list(FunctionList(NOW, problems=["Key x is not a hash"]), None, "h")
    assert [notice.title for notice in odd.notices] == ["Unexpected data in Redis"]


def test_href_encodes_any_key_name() -> None:
    assert href("cpu-stats") == "/functions?output=cpu-stats"
    assert href("a b&c=d/é") == "/functions?output=a%20b%26c%3Dd%2F%C3%A9"


def test_view_latest_output_as_rows_and_each_number_as_a_chart() -> None:
    history = [
        (NOW - 10_000, {"load.mean": 1.0, "count": 3.0}),
        (NOW - 5000, {"load.mean": 2.0}),
        (NOW, {"load.mean": 3.0, "count": 4.0}),
    ]
    result = view(snapshot({"load": {"mean": 3.0}, "count": 4, "host": "a"}, history))
    assert [(row.path, row.text) for row in result.rows] == [
        ("load.mean", "3"),
        ("count", "4"),
        ("host", "a"),
    ]
    assert [chart.path for chart in result.charts] == ["load.mean", "count"]
    (trace,) = result.charts[1].figure["data"]
    assert trace["x"] == [NOW - 10_000, NOW - 5000, NOW]
    assert trace["y"] == [3.0, None, 4.0]
    assert result.chart_placeholder is None and result.version is not None
    assert ("last output", "0 s ago") in result.facts


def test_view_keeps_the_body_when_nothing_changed() -> None:
    snap = snapshot({"a": 1})
    first = view(snap)
    again = view(snap, rendered=first.version)
    assert again.version is None and again.rows == [] and again.charts == []
    assert again.facts == first.facts
    changed = view(snapshot({"a": 2}, output_raw="other"), rendered=first.version)
    assert changed.version not in (None, first.version)


def test_view_any_shape_gets_a_table_or_a_placeholder() -> None:
    shapes: list[Any] = ["text", 5, [1, 2], None, {}, []]
    for output in shapes:
        result = view(snapshot(output))
        assert result.rows, output
    never = view(snapshot(None, history=[], has_output=False, output_raw=None))
    assert never.rows == []
    assert never.table_placeholder == "Key cpu-stats holds no output yet."
    assert never.chart_placeholder == (
        "No history yet: the charts appear with the function's first output."
    )
    assert ("last output", "never written") in never.facts
    no_history = FunctionRecord("plain", "metrics", history=None)
    plain = view(snapshot({"a": 1}, history=[], record=no_history), selected="plain")
    assert plain.chart_placeholder is not None and "HISTORY_KEY empty" in plain.chart_placeholder
    words = view(snapshot({"a": "x"}, history=[(NOW, {})]))
    assert words.charts == [] and words.chart_placeholder == "The outputs hold no numbers to chart."


def test_view_charts_are_bounded() -> None:
    values = {f"k{index:03}": float(index) for index in range(100)}
    result = view(snapshot(values, history=[(NOW, values)]))
    assert len(result.charts) == MAX_CHARTS
    assert result.omitted_charts == 100 - MAX_CHARTS


def test_view_unknown_function_unreachable_redis_and_errors() -> None:
    unknown = view(None, selected="nope")
    assert unknown.notices[0].title == "Unknown function" and unknown.rows == []
    down = view(ReadError("TimeoutError: slow"))
    assert down.version is None and down.notices[0].title == "Redis is unreachable"
    failing = view(snapshot({"a": 1}, error=error_at(NOW + 1000, "<b>bad</b>")))
    (notice,) = failing.notices
    assert notice.title == "The function's last call failed (handler-error)"
    assert notice.body.startswith("<b>bad</b>") and notice.details == "tb"
    recovered = view(snapshot({"a": 1}, error=error_at(NOW - 60_000)))
    assert recovered.notices == []
    unregistered = view(snapshot({"a": 1}, registered=False))
    assert ("registry", "not registered: the function this dashboard is set up for") in (
        unregistered.facts
    )


def test_error_dated_in_the_future_is_not_shown_for_ever() -> None:
    ahead = error_at(NOW + 86_400_000)
    assert view(snapshot({"a": 1}, error=ahead)).notices == []
    listing = FunctionList(NOW, [FunctionSummary(RECORD, True, True, NOW - 5000, ahead)])
    assert build_list(listing, None, "here").rows[0].error is None


def test_series_orders_latest_paths_first_then_others_as_seen() -> None:
    history = [Point(1, {"z": 1.0}), Point(2, {"a": 2.0, "y": 3.0})]
    assert [path for path, _, _ in series(history, ["a"])] == ["a", "z", "y"]
    assert series([], ["a"]) == [("a", [], [])]


METRICS = "http://10.0.0.7:8080/metrics"


def buckets(fast: float, slow: float) -> list[tuple[float, float]]:
    return [(0.005, fast), (0.05, fast + slow), (float("inf"), fast + slow)]


def scraped(*samples: tuple[float, float, float, float], error: str | None = None) -> Scraped:
    """(at, successes, failures, slow calls) per scrape, oldest first."""
    return Scraped(
        [
            Sample(
                at,
                Scrape(
                    outcomes={"success": ok, "handler-error": failed},
                    buckets=buckets(ok + failed - slow, slow),
                    reloads={"success": 1, "failure": 1},
                    leader=True,
                    loaded=True,
                    input_age=0.0123,
                ),
            )
            for at, ok, failed, slow in samples
        ],
        error,
    )


def test_list_rows_carry_each_functions_operations_over_the_window() -> None:
    record = replace(RECORD, metrics=METRICS)
    plain = replace(RECORD, output="quiet", metrics="")
    listing = FunctionList(
        NOW,
        [
            FunctionSummary(
                record, True, True, last_write_ms=NOW - 1000, error=error_at(NOW - 600_000)
            ),
            FunctionSummary(plain, True),
        ],
    )
    now_s = NOW / 1000
    scrapes = {METRICS: scraped((now_s - 900, 100, 0, 0), (now_s, 190, 10, 100))}
    rows = build_list(listing, None, "here", scrapes, window=900).rows
    ops = rows[0].ops
    assert (ops.rate, ops.errors, ops.reloads, ops.leader, ops.input_age) == (
        "0.111/s",
        "10 %",
        "1 (1 failed)",
        "leader",
        "12.3 ms",
    )
    # 100 calls in the window: none slower than 50 ms, none faster than 5 ms.
    assert (ops.p50, ops.p95) == ("27.5 ms", "47.75 ms")
    assert ops.note == "over the last 15 min" and not ops.problem
    # An old error is not current, but its kind and age are listed.
    assert rows[0].error is None and rows[0].last_error == "handler-error, 10 min ago"
    assert rows[1].ops.rate == "—" and "HTTP_PORT=0" in rows[1].ops.note


def test_list_rows_say_when_metrics_do_not_answer() -> None:
    record = replace(RECORD, metrics=METRICS)
    listing = FunctionList(NOW, [FunctionSummary(record, True)])
    refused = {METRICS: Scraped([], "URLError: refused")}
    ops = build_list(listing, None, "here", refused).rows[0].ops
    assert ops.problem and "/metrics unreachable (URLError: refused)" in ops.note
    # Earlier figures stay, marked as the last known ones.
    now_s = NOW / 1000
    stale = {METRICS: scraped((now_s - 60, 6, 0, 0), (now_s, 12, 0, 0), error="TimeoutError")}
    ops = build_list(listing, None, "here", stale, window=3600).rows[0].ops
    assert ops.rate == "0.1/s" and ops.problem and "last known figures" in ops.note
    standby = {METRICS: Scraped([Sample(now_s, Scrape({"success": 0}, leader=False))], None)}
    ops = build_list(listing, None, "here", standby).rows[0].ops
    assert ops.leader == "standby" and "this replica is a standby" in ops.note


def test_view_of_one_function_has_its_operations_and_the_chosen_range() -> None:
    record = replace(RECORD, metrics=METRICS)
    history = [(NOW - minutes * 60_000, {"a": float(minutes)}) for minutes in (50, 20, 10, 0)]
    now_s = NOW / 1000
    result = view(
        snapshot({"a": 0}, history, record=record),
        scraped=scraped((now_s - 30, 1, 0, 0), (now_s, 4, 0, 0)),
        range_minutes=15,
    )
    assert result.ops is not None and result.ops.rate == "0.1/s"
    (trace,) = result.charts[0].figure["data"]
    assert trace["x"] == [NOW - 600_000, NOW]
    assert ("metrics", METRICS) in result.facts
    wider = view(snapshot({"a": 0}, history, record=record), range_minutes=60)
    assert len(wider.charts[0].figure["data"][0]["x"]) == 4
    assert wider.version != result.version


FAILURE = LoadFailure(
    mtime="2030-03-17T17:46:40+00:00",
    digest="0f" * 16,
    kind="syntax-error",
    message="syntax error in /opt/function/usermodule.py at line 3: invalid syntax",
    running=True,
)
BANNER = (
    "version from 2030-03-17 17:46:40 UTC failed to load: syntax error in "
    "/opt/function/usermodule.py at line 3: invalid syntax; running the previous version"
)


def test_view_and_list_say_the_newest_version_failed_to_load_while_outputs_stay_fresh() -> None:
    broken = replace(RECORD, load_failure=FAILURE)
    # A fresh output (the previous version runs): the failure is said all the same.
    shown = view(snapshot({"a": 1}, record=broken))
    banner = next(n for n in shown.notices if n.title == "The newest version failed to load")
    assert (banner.level, banner.body) == ("warning", BANNER)
    listing = build_list(
        FunctionList(NOW, [FunctionSummary(broken, True, last_write_ms=NOW - 1000)]), None, "here"
    )
    assert listing.rows[0].load_failure == BANNER
    # Once a version loads, the record has no failure and nothing is said.
    assert not any("failed to load" in n.title for n in view(snapshot({"a": 1})).notices)
    listing = build_list(FunctionList(NOW, [FunctionSummary(RECORD, True)]), None, "here")
    assert listing.rows[0].load_failure is None
