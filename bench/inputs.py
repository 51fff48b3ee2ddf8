"""Collector snapshots for the benchmarks, shaped like the recorded ones."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from bench.env import REPO_ROOT

RECORDING = REPO_ROOT / "tests" / "fixtures" / "metrics-5s.jsonl"
CPU_PREFIX = "cpu_percent-"


@cache
def recorded() -> tuple[dict[str, Any], ...]:
    """The real collector recording, one snapshot per line."""
    lines = RECORDING.read_text().splitlines()
    return tuple(json.loads(line) for line in lines if line.strip())


def snapshot(at: datetime, cpus: int, rng: random.Random, base: int = 0) -> dict[str, Any]:
    """A recorded snapshot re-stamped at `at`, with `cpus` random CPU utilisations."""
    template = recorded()[base % len(recorded())]
    value = {key: item for key, item in template.items() if not key.startswith(CPU_PREFIX)}
    value["timestamp"] = str(at)
    for cpu in range(cpus):
        value[f"{CPU_PREFIX}{cpu}"] = round(rng.uniform(0, 100), 1)
    return value


def series(
    start: datetime, cadence: float, count: int, cpus: int, rng: random.Random
) -> list[dict[str, Any]]:
    """`count` snapshots `cadence` seconds apart."""
    step = timedelta(seconds=cadence)
    return [snapshot(start + index * step, cpus, rng, index) for index in range(count)]


def now_snapshot(rng: random.Random, cpus: int = 2) -> dict[str, Any]:
    """A snapshot stamped now, as the collector writes it (naive local time)."""
    return snapshot(datetime.now(), cpus, rng)
