"""Messages for the top of a page, shared by both pages (pure values, no Dash)."""

from __future__ import annotations

from dataclasses import dataclass

from serverless_runtime.registry import LoadFailure

from monitoring_dashboard.display import iso_utc_text
from monitoring_dashboard.flatten import safe_text
from monitoring_dashboard.freshness import error_is_current
from monitoring_dashboard.snapshots import FunctionError


@dataclass(frozen=True)
class Notice:
    """A message for the top of the page (level is a Bootstrap color)."""

    level: str
    title: str
    body: str
    details: str | None = None


def load_failure_notice(failure: LoadFailure) -> Notice:
    return Notice(
        "warning", "The newest version failed to load", safe_text(failure.describe(), 1200)
    )


def unreachable_notice(location: str, error: Exception, more: str = "") -> Notice:
    return Notice("danger", "Redis is unreachable", f"Cannot read {location} ({error}).{more}")


def problem_notices(problems: list[str]) -> list[Notice]:
    return [Notice("warning", "Unexpected data in Redis", problem) for problem in problems]


def function_notices(
    problems: list[str],
    load_failure: LoadFailure | None,
    error: FunctionError | None,
    times: tuple[int | None, int],
    *between: Notice,
) -> list[Notice]:
    """A function's load failure, problems, `between`, and its error while current (both pages).

    times: the last output's write time (None: unknown) and Redis's clock, in ms.
    """
    notices = [] if load_failure is None else [load_failure_notice(load_failure)]
    notices += [*problem_notices(problems), *between]
    if error is not None and error_is_current(error.at_ms, *times):
        notices.append(error_notice(error))
    return notices


def error_notice(error: FunctionError) -> Notice:
    """The function's last failure, its traceback one click away."""
    stamp = f", input {error.input_timestamp}" if error.input_timestamp else ""
    return Notice(
        "danger",
        f"The function's last call failed ({safe_text(error.kind, 60)})",
        safe_text(f"{error.message} — at {iso_utc_text(error.at)}{stamp}", 600),
        safe_text(error.traceback, 20_000) or None,
    )
