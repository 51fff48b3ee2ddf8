"""The one independent resource-monitor: every call filters and averages the whole window again.

Written from DESIGN §5 apart from the function (its own parsing, datetimes, its own window), so
that the tests (and the benchmark, through `bench/naive_monitor.py`) compare the function with
an independent computation.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

WINDOW = timedelta(seconds=60)


def number(value: Any) -> float | None:
    """A finite JSON number (not bool) as float, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        result = float(value)
    except OverflowError:
        return None
    return result if math.isfinite(result) else None


def parse_time(value: Any) -> datetime | None:
    """The timestamp as a naive datetime (aware ones converted to UTC), else None."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def cpu_samples(data: dict[str, Any]) -> dict[str, float]:
    """Valid utilisation samples (0..100) of the input, by CPU number."""
    samples = {}
    for key, value in data.items():
        if not (isinstance(key, str) and key.startswith("cpu_percent-")):
            continue
        cpu = key.removeprefix("cpu_percent-")
        sample = number(value)
        if cpu.isascii() and cpu.isdigit() and sample is not None and 0 <= sample <= 100:
            samples[cpu] = sample
    return samples


def size(value: Any) -> float | None:
    """A byte count or memory size: a number that is not negative, else None."""
    result = number(value)
    return None if result is None or result < 0 else result


def ratio(part: float, whole: float) -> float | None:
    """part / whole in percent; 0.0 for a zero whole, None when it overflows a float."""
    if whole == 0:
        return 0.0
    result = part / whole * 100
    return result if math.isfinite(result) else None


def egress(data: dict[str, Any]) -> float | None:
    """Egress share of eth0, or of all interfaces but lo when eth0 is absent."""
    prefix = "net_io_counters_"
    keys = [key for key in data if isinstance(key, str)]
    if any(key.startswith(prefix + "eth0-") for key in keys):
        interfaces = ["eth0"]
    else:
        interfaces = sorted(
            {
                key.removeprefix(prefix).rsplit("-", 1)[0]
                for key in keys
                if key.startswith(prefix) and "-" in key.removeprefix(prefix)
            }
            - {"lo", ""}
        )
    pairs = [
        (
            size(data.get(f"{prefix}{name}-bytes_sent")),
            size(data.get(f"{prefix}{name}-bytes_recv")),
        )
        for name in interfaces
    ]
    valid = [(s, r) for s, r in pairs if s is not None and r is not None]
    if not valid or (interfaces == ["eth0"] and len(valid) != 1):
        return None
    sent = sum(s for s, _ in valid)
    recv = sum(r for _, r in valid)
    return ratio(sent, sent + recv)


def caching(data: dict[str, Any]) -> float | None:
    """(cached + buffers) / total in percent."""
    cached, buffers, total = (
        size(data.get(f"virtual_memory-{name}")) for name in ("cached", "buffers", "total")
    )
    if cached is None or buffers is None or total is None:
        return None
    return ratio(cached + buffers, total)


class Reference:
    """Keeps every accepted sample of the window and recomputes each average from scratch."""

    def __init__(self) -> None:
        self.samples: list[tuple[datetime, dict[str, float]]] = []

    def cpu_averages(self, data: dict[str, Any]) -> dict[str, float]:
        """The expected avg-util-cpu* keys for the next input."""
        now = parse_time(data.get("timestamp"))
        if now is None:
            return {}
        current = cpu_samples(data)
        if self.samples and now < self.samples[-1][0]:
            self.samples = []
        if not self.samples or now > self.samples[-1][0]:
            self.samples.append((now, current))
        # Time only moves on (or the list starts over), so a sample that left stays out.
        self.samples = [(at, values) for at, values in self.samples if now - WINDOW < at <= now]
        averages = {}
        for cpu in current:
            values = [sample[cpu] for _, sample in self.samples if cpu in sample]
            if values:
                averages[f"avg-util-cpu{cpu}-60sec"] = math.fsum(values) / len(values)
        return averages

    def output(self, data: dict[str, Any]) -> dict[str, Any]:
        """The whole expected output for the next input."""
        expected: dict[str, Any] = {}
        share = egress(data)
        if share is not None:
            expected["percent-network-egress"] = share
        cache = caching(data)
        if cache is not None:
            expected["percent-memory-caching"] = cache
        expected.update(self.cpu_averages(data))
        if isinstance(data.get("timestamp"), str):
            expected["timestamp"] = data["timestamp"]
        return expected


def assert_same_output(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    """Same keys; numbers within 1e-9, strings equal."""
    assert sorted(actual) == sorted(expected)
    for key, value in expected.items():
        if isinstance(value, str):
            assert actual[key] == value, key
        else:
            assert math.isclose(actual[key], value, rel_tol=1e-9, abs_tol=1e-9), (
                key,
                actual[key],
                value,
            )
