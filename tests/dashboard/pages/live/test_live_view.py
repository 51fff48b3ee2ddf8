"""What the Live page shows for each state of Redis (pure decisions, no Dash, no Redis)."""

from __future__ import annotations

import json
from dataclasses import replace

from monitoring_dashboard import browser_history
from monitoring_dashboard.pages.live.view import build_view
from monitoring_dashboard.settings import Settings
from monitoring_dashboard.snapshots import FunctionError, Point, ReadError, Snapshot
from serverless_runtime.registry import FunctionRecord, LoadFailure

SETTINGS = Settings(output_key="resource-monitor", refresh_seconds=5)
RECORD = FunctionRecord("resource-monitor", "metrics")
NOW = 1_796_000_000_000
OUTPUT = {
    "percent-network-egress": 3.14159,
    "percent-memory-caching": 41.5,
    "avg-util-cpu0-60sec": 10.0,
    "avg-util-cpu1-60sec": 30.0,
    "timestamp": "2026-11-27 23:22:01.123456",
}


def snapshot(*, history=True, output=OUTPUT, last_write=NOW - 2000, error=None, now=NOW):
    raw = None if output is None else json.dumps(output)
    points = [Point(last_write - 5000, {"percent-network-egress": 3.0}), Point(last_write, {})]
    return Snapshot(
        now_ms=now,
        record=RECORD,
        output=output,
        output_raw=raw,
        history=points if history else [],
        last_write_ms=last_write if history else None,
        has_history=history,
        error=error,
    )


def view_of(result, *, status=None, stored=None, version=None, local_now=NOW):
    return build_view(
        result,
        settings=SETTINGS,
        status=status,
        stored_history=stored,
        rendered_version=version,
        local_now_ms=local_now,
        range_minutes=SETTINGS.history_minutes,
    )


def failure(at_ms):
    return FunctionError(
        at="2026-11-27T23:22:01+00:00",
        at_ms=at_ms,
        kind="timeout",
        message="handler took longer than 2 s",
        traceback="Traceback ...",
        input_timestamp="2026-11-27 23:22:01.123456",
    )


def test_view_fresh_output_fills_kpis_figures_and_freshness():
    view = view_of(snapshot())
    assert view.notices == []
    assert view.kpis is not None
    assert view.kpis.egress == 3.14159
    assert view.kpis.caching == 41.5
    assert (view.kpis.cpu_count, view.kpis.cpu_mean) == (2, 20.0)
    assert view.kpis.input_timestamp == "2026-11-27 23:22:01.123456"
    assert view.figures is not None
    assert set(view.figures) == {"egress", "caching", "cpu_lines", "cpu_heatmap", "latest"}
    assert view.freshness is not None
    assert view.freshness.text == "updated 2 s ago"
    assert not view.freshness.stale


def test_view_same_data_as_rendered_keeps_the_figures():
    first = view_of(snapshot())
    again = view_of(snapshot(), status=first.status, version=first.version)
    assert again.figures is None
    assert again.kpis is not None


def test_view_stale_after_three_refresh_periods():
    view = view_of(snapshot(last_write=NOW - 15_001))
    assert view.freshness is not None and view.freshness.stale
    assert [notice.title for notice in view.notices] == ["Data is stale"]
    assert "15 s" in view.notices[0].body


def test_view_missing_key_says_so_and_keeps_the_graphs():
    view = view_of(snapshot(output=None, history=False))
    assert [notice.title for notice in view.notices] == ["No output yet"]
    assert "resource-monitor" in view.notices[0].body
    assert view.kpis is None
    assert view.figures is None


def test_view_unreachable_redis_keeps_everything_and_counts_age_on():
    first = view_of(snapshot())
    later = NOW + 60_000
    view = view_of(ReadError("ConnectionError: refused"), status=first.status, local_now=later)
    assert [notice.title for notice in view.notices] == ["Redis is unreachable"]
    assert "localhost:6379" in view.notices[0].body
    assert view.kpis is None and view.figures is None
    assert view.status is None and view.browser_history is None and view.version is None
    assert view.freshness is not None
    assert view.freshness.stale
    assert view.freshness.age_seconds == 62


def test_view_unreachable_redis_on_a_fresh_page_has_no_age():
    view = view_of(ReadError("ConnectionError: refused"))
    assert view.freshness is None


def test_view_error_newer_than_the_output_is_shown():
    view = view_of(snapshot(error=failure(NOW - 1000)))
    (notice,) = view.notices
    assert notice.level == "danger"
    assert "timeout" in notice.title
    assert "handler took longer than 2 s" in notice.body
    assert notice.details == "Traceback ..."


def test_view_error_older_than_the_output_is_hidden():
    view = view_of(snapshot(error=failure(NOW - 3000)))
    assert view.notices == []


def test_view_error_dated_in_the_future_is_not_shown_for_ever():
    # A writer's clock a day ahead of Redis's: the record cannot be placed after the outputs.
    view = view_of(snapshot(error=failure(NOW + 86_400_000)))
    assert view.notices == []
    alone = view_of(snapshot(output=None, history=False, error=failure(NOW + 86_400_000)))
    assert any("failed" in notice.title for notice in alone.notices), "the only news is shown"


def test_view_error_a_few_seconds_ahead_is_still_shown():
    view = view_of(snapshot(error=failure(NOW + 5000)))
    assert [notice.level for notice in view.notices] == ["danger"]


def test_view_integer_beyond_float_range_still_renders():
    huge = {**OUTPUT, "avg-util-cpu1-60sec": 10**400, "count": -(10**309)}
    view = view_of(snapshot(output=huge))
    assert view.kpis is not None and view.figures is not None
    assert view.kpis.cpu_count == 1, "the value no chart can take is left out"


def test_view_error_without_any_output_is_shown():
    view = view_of(snapshot(output=None, history=False, error=failure(NOW)))
    titles = [notice.title for notice in view.notices]
    assert titles[0] == "No output yet"
    assert any("failed" in title for title in titles)


def test_view_without_history_accumulates_points_in_the_browser():
    first = view_of(snapshot(history=False))
    assert first.freshness is not None and first.freshness.seen_by_page
    assert first.freshness.age_seconds == 0
    assert len(browser_history.points(first.browser_history)) == 1

    unchanged = view_of(
        snapshot(history=False, now=NOW + 5000),
        status=first.status,
        stored=first.browser_history,
        version=first.version,
    )
    assert unchanged.browser_history is None
    assert unchanged.figures is None
    assert unchanged.freshness is not None and unchanged.freshness.age_seconds == 5

    changed_output = OUTPUT | {"percent-network-egress": 3.5}
    changed = view_of(
        snapshot(history=False, output=changed_output, now=NOW + 10_000),
        status=first.status,
        stored=first.browser_history,
        version=first.version,
    )
    points = browser_history.points(changed.browser_history)
    assert [point.at_ms for point in points] == [NOW, NOW + 10_000]
    assert changed.figures is not None
    assert changed.freshness is not None and changed.freshness.age_seconds == 0


def test_view_switching_to_history_clears_the_browser_copy():
    first = view_of(snapshot(history=False))
    view = view_of(snapshot(), status=first.status, stored=first.browser_history)
    assert view.browser_history == {}
    assert view.freshness is not None and not view.freshness.seen_by_page


def test_view_problems_are_warnings():
    snap = Snapshot(NOW, RECORD, problems=["Key resource-monitor does not hold a JSON object."])
    view = view_of(snap)
    assert [(notice.level, notice.body) for notice in view.notices] == [
        ("warning", "Key resource-monitor does not hold a JSON object.")
    ]


def test_view_time_range_limits_the_graphs_to_its_span():
    hour = [
        Point(NOW - 3_600_000 + step * 60_000, {"percent-network-egress": step})
        for step in range(61)
    ]
    snap = replace(snapshot(last_write=NOW), history=hour)
    whole = view_of(snap)
    quarter = build_view(
        snap,
        settings=SETTINGS,
        status=None,
        stored_history=None,
        rendered_version=whole.version,
        local_now_ms=NOW,
        range_minutes=15,
    )
    assert whole.figures is not None and quarter.figures is not None
    assert len(whole.figures["egress"]["data"][0]["x"]) == 61
    # 15 min: the points of the last quarter of an hour only, drawn again (a new version).
    assert quarter.figures["egress"]["data"][0]["x"][0] == NOW - 15 * 60_000
    assert len(quarter.figures["egress"]["data"][0]["x"]) == 16
    assert quarter.version != whole.version
    assert quarter.figures["egress"]["layout"]["uirevision"] == "live-15"


def test_view_latest_output_time_is_utc_and_error_times_too():
    view = view_of(snapshot(last_write=1_796_000_000_000))
    assert view.kpis is not None
    assert view.kpis.written_at == "2026-11-30 00:53:20 UTC"
    failed = view_of(snapshot(error=failure(NOW - 1000), last_write=NOW - 5000))
    assert "at 2026-11-27 23:22:01 UTC" in failed.notices[0].body


def test_view_says_the_newest_version_failed_to_load_above_everything() -> None:
    failure = LoadFailure(
        mtime="2030-03-17T17:46:40+00:00",
        digest="0f" * 16,
        kind="import-error",
        message="/opt/usermodule.py raised while being imported: NameError: x",
        running=True,
    )
    snap = replace(snapshot(), record=replace(RECORD, load_failure=failure))
    notices = view_of(snap).notices
    assert notices[0].title == "The newest version failed to load"
    assert notices[0].body.startswith("version from 2030-03-17 17:46:40 UTC failed to load: ")
    assert notices[0].body.endswith("; running the previous version")
    assert view_of(snapshot()).notices == []
