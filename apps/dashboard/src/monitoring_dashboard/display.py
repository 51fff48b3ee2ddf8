"""Numbers and times as the page shows them: rounded, and every time in UTC, labelled (pure)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

UTC_FORMAT = "%Y-%m-%d %H:%M:%S UTC"


def number_text(value: float) -> str:
    """`89.33999999999999` → `89.34`, `0.000123456` → `0.000123`; integers keep every digit."""
    if isinstance(value, int) or not math.isfinite(value):
        return str(value)
    size = abs(value)
    if size == 0:
        return "0"
    if size >= 1e15 or size < 1e-9:
        return f"{value:.3e}"
    if value.is_integer():
        return str(int(value))
    decimals = 2 if size >= 1 else 2 - math.floor(math.log10(size))
    text = f"{value:.{decimals}f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def rounded(value: float) -> float:
    """A float with six significant digits: what a chart's hover shows without float noise."""
    return value if value == 0 or not math.isfinite(value) else float(f"{value:.6g}")


def utc_text(ms: int | float) -> str:
    """Milliseconds since the epoch as `2026-12-06 01:23:45 UTC`."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime(UTC_FORMAT)


def iso_utc_text(text: str) -> str:
    """An ISO-8601 time with an offset shown in UTC; anything else unchanged."""
    ms = iso_ms(text)
    return text if ms is None else utc_text(ms)


def duration_text(seconds: float) -> str:
    """A call's duration: `850 µs`, `3.2 ms`, `1.25 s`."""
    if seconds < 0.001:
        return f"{number_text(seconds * 1e6)} µs"
    if seconds < 1:
        return f"{number_text(seconds * 1000)} ms"
    return f"{number_text(seconds)} s"


def rate_text(per_second: float) -> str:
    """A rate per second; a slow one per minute, so that it does not read as zero."""
    if per_second == 0:
        return "0/s"
    if per_second < 0.1:
        return f"{number_text(per_second * 60)}/min"
    return f"{number_text(per_second)}/s"


def iso_ms(text: str) -> int | None:
    """Milliseconds since the epoch of an ISO-8601 time with an offset; None otherwise."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return None if moment.tzinfo is None else int(moment.timestamp() * 1000)
