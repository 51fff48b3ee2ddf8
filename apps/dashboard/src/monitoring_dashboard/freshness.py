"""How old the shown data is, and when it counts as stale."""

from __future__ import annotations

from dataclasses import dataclass

# The rule: warn once three refresh periods have passed without a new output.
STALE_AFTER_PERIODS = 3
# How far ahead of Redis's clock an error record's time is still believed (clocks disagree).
CLOCK_SKEW_MS = 60_000


@dataclass(frozen=True)
class Freshness:
    age_seconds: float
    stale: bool
    seen_by_page: bool

    @property
    def text(self) -> str:
        return f"updated {format_age(self.age_seconds)} ago"


def assess(
    last_write_ms: int, now_ms: int, refresh_seconds: float, *, seen_by_page: bool = False
) -> Freshness:
    # Clocks of the runtime and Redis may disagree slightly; a negative age means "just now".
    age = max(0.0, (now_ms - last_write_ms) / 1000)
    return Freshness(age, age > STALE_AFTER_PERIODS * refresh_seconds, seen_by_page)


def format_age(seconds: float) -> str:
    """Render an age coarsely enough to read at a glance: `45 s`, `12 min`, `3 h`, `2 d`."""
    if seconds < 90:
        return f"{int(seconds)} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    if seconds < 48 * 3600:
        return f"{round(seconds / 3600)} h"
    return f"{round(seconds / 86400)} d"


def error_is_current(error_ms: int | None, last_write_ms: int | None, now_ms: int) -> bool:
    """An error is shown while newer than the last output (one dated too far ahead: never)."""
    if last_write_ms is None:
        return True
    if error_ms is None or error_ms > now_ms + CLOCK_SKEW_MS:
        return False
    return error_ms > last_write_ms
