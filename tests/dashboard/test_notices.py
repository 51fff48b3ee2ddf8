"""The messages both pages put at their top: a failure with its input and traceback, Redis down."""

from __future__ import annotations

from monitoring_dashboard.notices import error_notice, problem_notices, unreachable_notice
from monitoring_dashboard.snapshots import FunctionError, ReadError


def failure(**fields) -> FunctionError:
    values = {
        "at": "2026-12-06T01:02:03+01:00",
        "at_ms": None,
        "kind": "handler-error",
        "message": "division by zero",
        "traceback": "Traceback (most recent call last): ...",
        "input_timestamp": "2026-12-06 01:02:00",
    }
    return FunctionError(**(values | fields))


def test_error_notice_names_the_kind_the_time_in_utc_and_the_input():
    notice = error_notice(failure())
    assert (notice.level, notice.title) == (
        "danger",
        "The function's last call failed (handler-error)",
    )
    assert notice.body == "division by zero — at 2026-12-06 00:02:03 UTC, input 2026-12-06 01:02:00"
    assert notice.details == "Traceback (most recent call last): ..."


def test_error_notice_without_input_or_traceback_and_a_huge_message():
    notice = error_notice(failure(input_timestamp=None, traceback="", message="x" * 5000))
    assert "input" not in notice.body and len(notice.body) == 600
    assert notice.details is None


def test_unreachable_and_problem_notices():
    down = unreachable_notice("redis:6379", ReadError("ConnectionError: refused"), " Retrying.")
    assert down.body == "Cannot read redis:6379 (ConnectionError: refused). Retrying."
    assert [n.body for n in problem_notices(["a", "b"])] == ["a", "b"]
