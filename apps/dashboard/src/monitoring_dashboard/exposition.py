"""The runtime's /metrics text read back into the few figures the Functions page shows (pure).

Only the runtime's own families (`serverless_runtime_*`) are read, so a few dozen lines of the
text format suffice: no Prometheus client in the dashboard.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

PREFIX = "serverless_runtime_"
# `name{label="value"} 1.0` or `name 1.0`, an optional timestamp after the value.
_SAMPLE = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)(?:\{([^}]*)\})?\s+(\S+)(?:\s+\S+)?")
_LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class Scrape:
    """One replica's figures at one scrape: counters since its start, gauges now."""

    outcomes: dict[str, float] = field(default_factory=dict)
    # (upper bound, cumulative count), ascending, the last bound math.inf.
    buckets: list[tuple[float, float]] = field(default_factory=list)
    reloads: dict[str, float] = field(default_factory=dict)
    input_age: float | None = None
    leader: bool | None = None
    loaded: bool | None = None

    @property
    def calls(self) -> float:
        """Invocations of every outcome since the replica started."""
        return sum(self.outcomes.values())


def parse(text: str) -> Scrape:
    """The runtime's figures in a /metrics body; families it does not know are ignored."""
    outcomes: dict[str, float] = {}
    reloads: dict[str, float] = {}
    buckets: list[tuple[float, float]] = []
    gauges: dict[str, float] = {}
    for line in text.splitlines():
        if not line.startswith(PREFIX):
            continue
        match = _SAMPLE.fullmatch(line.strip())
        if match is None:
            continue
        name, raw_labels, raw_value = match.groups()
        try:
            value = float(raw_value)
        except ValueError:
            continue
        labels = dict(_LABEL.findall(raw_labels or ""))
        short = name[len(PREFIX) :]
        if short == "invocations_total" and "outcome" in labels:
            outcomes[labels["outcome"]] = value
        elif short == "reloads_total" and "result" in labels:
            reloads[labels["result"]] = value
        elif short == "invocation_duration_seconds_bucket" and "le" in labels:
            bound = _bound(labels["le"])
            if bound is not None:
                buckets.append((bound, value))
        elif raw_labels is None:
            gauges[short] = value
    return Scrape(
        outcomes=outcomes,
        buckets=sorted(buckets),
        reloads=reloads,
        input_age=gauges.get("input_age_seconds"),
        leader=_flag(gauges.get("leader")),
        loaded=_flag(gauges.get("function_loaded")),
    )


def _bound(text: str) -> float | None:
    try:
        bound = float(text)
    except ValueError:
        return None
    return None if math.isnan(bound) else bound


def _flag(value: float | None) -> bool | None:
    return None if value is None else value >= 1
