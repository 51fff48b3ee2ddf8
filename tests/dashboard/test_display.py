"""Numbers rounded for reading and times in UTC, as every page shows them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from monitoring_dashboard.display import (
    duration_text,
    iso_ms,
    iso_utc_text,
    number_text,
    rate_text,
    rounded,
    utc_text,
)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (89.33999999999999, "89.34"),
        (41.5, "41.5"),
        (92.0, "92"),
        (12, "12"),
        (10**30, str(10**30)),
        (0.0, "0"),
        (-3.14159, "-3.14"),
        (0.000123456, "0.000123"),
        (0.5, "0.5"),
        (-0.0000000001, "-1.000e-10"),
        (2.5e18, "2.500e+18"),
        (1234567.891, "1234567.89"),
    ],
)
def test_display_number_text_rounds_float_noise(value, text) -> None:
    assert number_text(value) == text


def test_display_rounded_keeps_six_significant_digits() -> None:
    assert rounded(89.33999999999999) == 89.34
    assert rounded(1234567.891) == 1234570.0
    assert rounded(0.0) == 0.0


def test_display_times_are_utc_and_say_so() -> None:
    moment = datetime(2026, 12, 6, 1, 23, 45, tzinfo=UTC)
    assert utc_text(moment.timestamp() * 1000) == "2026-12-06 01:23:45 UTC"
    assert iso_utc_text("2026-12-06T02:23:45+01:00") == "2026-12-06 01:23:45 UTC"
    # No offset: its zone is unknown, so it is shown as written.
    assert iso_utc_text("2026-12-06 02:23:45") == "2026-12-06 02:23:45"
    assert iso_utc_text("soon") == "soon"


def test_display_durations_and_rates() -> None:
    assert duration_text(0.00085) == "850 µs"
    assert duration_text(0.0032) == "3.2 ms"
    assert duration_text(1.25) == "1.25 s"
    assert rate_text(0.2) == "0.2/s"
    assert rate_text(12.3456) == "12.35/s"
    assert rate_text(0.01) == "0.6/min"
    assert rate_text(0) == "0/s"


def test_iso_ms_needs_an_offset():
    moment = datetime(2026, 11, 27, 23, 22, 1, tzinfo=UTC) + timedelta(milliseconds=5)
    assert iso_ms(moment.isoformat()) == int(moment.timestamp() * 1000)
    assert iso_ms("2026-11-27T23:22:01+01:00") == int(moment.timestamp() * 1000) - 3_600_005
    assert iso_ms("2026-11-27 23:22:01") is None
    assert iso_ms("yesterday") is None
