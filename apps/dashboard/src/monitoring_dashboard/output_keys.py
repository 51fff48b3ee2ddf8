"""The resource-monitor output's metric names and how to pick values out of an output."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from monitoring_dashboard.flatten import number

EGRESS = "percent-network-egress"
CACHING = "percent-memory-caching"

_CPU_KEY = re.compile(r"avg-util-cpu(\d{1,6})-60sec")


def cpu_index(name: str) -> int | None:
    """Return N for a key `avg-util-cpu{N}-60sec`, else None."""
    match = _CPU_KEY.fullmatch(name)
    return int(match.group(1)) if match else None


def numeric_values(output: Mapping[str, Any]) -> dict[str, float]:
    """The finite numbers of an output (not booleans, strings or integers beyond a float)."""
    values: dict[str, float] = {}
    for name, value in output.items():
        parsed = number(value)
        if parsed is not None:
            # An hour of history repeats the same names thousands of times: share them.
            values[sys.intern(name)] = parsed
    return values


def cpu_names(names: Iterable[str]) -> list[str]:
    """The per-CPU keys among names, ordered by CPU number."""
    indexed = [(index, name) for name in names if (index := cpu_index(name)) is not None]
    return [name for _, name in sorted(indexed)]


def display_order(names: Iterable[str]) -> list[str]:
    """Egress, caching, CPUs by number, then any other metric by name."""
    names = list(names)
    cpus = cpu_names(names)
    known = {EGRESS, CACHING, *cpus}
    head = [name for name in (EGRESS, CACHING) if name in names]
    return head + cpus + sorted(name for name in names if name not in known)


def cpu_label(name: str) -> str:
    index = cpu_index(name)
    return f"CPU {index}" if index is not None else name
