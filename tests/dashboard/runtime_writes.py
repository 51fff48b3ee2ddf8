"""Writes the runtime's keys exactly as its contract says, so dashboard tests need no runtime."""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime
from typing import Any

import redis


def resource_output(
    cpus: list[float], egress: float = 3.25, caching: float = 41.5, timestamp: str | None = None
) -> dict[str, Any]:
    """A resource-monitor output with the contract's key names."""
    output: dict[str, Any] = {"percent-network-egress": egress, "percent-memory-caching": caching}
    for index, value in enumerate(cpus):
        output[f"avg-util-cpu{index}-60sec"] = value
    # Naive local time, as the collector writes it (str(datetime.now())).
    output["timestamp"] = timestamp or str(datetime.now())
    return output


def write_output(
    client: redis.Redis, key: str, output: dict[str, Any], *, at_ms: int | None = None
) -> str:
    """SET the output and XADD it to `<key>:history` (ID = write time in ms), as one transaction."""
    text = json.dumps(output)
    pipe = client.pipeline(transaction=True)
    pipe.set(key, text)
    pipe.xadd(f"{key}:history", {"output": text}, id="*" if at_ms is None else f"{at_ms}-*")
    _, entry_id = pipe.execute()
    return str(entry_id)


def write_history(client: redis.Redis, key: str, history: list[tuple[int, dict[str, Any]]]) -> None:
    """Backfill `<key>:history` with (ms, output) pairs in one round trip; SET the newest."""
    pipe = client.pipeline(transaction=False)
    for at_ms, output in history:
        pipe.xadd(f"{key}:history", {"output": json.dumps(output)}, id=f"{at_ms}-*")
    pipe.set(key, json.dumps(history[-1][1]))
    pipe.execute()


def write_error(
    client: redis.Redis,
    key: str,
    *,
    message: str,
    kind: str = "handler",
    at: datetime | None = None,
    traceback: str = "Traceback (most recent call last):\n  ...\nValueError: boom",
    input_timestamp: str | None = "2026-11-27 23:22:01.123456",
) -> None:
    """SET `<key>:error` as the runtime records a failure."""
    moment = at or datetime.now(UTC)
    record = {
        "at": moment.isoformat(),
        "kind": kind,
        "message": message,
        "traceback": traceback,
        "input_timestamp": input_timestamp,
    }
    client.set(f"{key}:error", json.dumps(record))


def realistic_history(
    end_ms: int, *, cpus: int = 64, minutes: int = 60, period_s: int = 5, seed: int = 7
) -> list[tuple[int, dict[str, Any]]]:
    """An hour of plausible outputs: busy and idle CPU groups, a batch job, slow counters.

    Raw per-second samples go through the same 60 s moving average the function computes.
    """
    rng = random.Random(seed)
    steps = minutes * 60 // period_s
    start_ms = end_ms - (steps - 1) * period_s * 1000
    base = [8 + 20 * rng.random() + (25 if index % 16 < 4 else 0) for index in range(cpus)]
    windows: list[list[float]] = [[] for _ in range(cpus)]
    samples_per_window = 60 // period_s
    sent, received = 2.1e9, 61.0e9
    history: list[tuple[int, dict[str, Any]]] = []
    for step in range(steps):
        at_ms = start_ms + step * period_s * 1000
        minute = step * period_s / 60
        # A batch job keeps CPUs 16-47 busy from minute 22 to minute 38.
        job = 55.0 if 22 <= minute < 38 else 0.0
        averages = []
        for index in range(cpus):
            wave = 10 * math.sin(minute / 6 + index / 9)
            load = base[index] + wave + (job if 16 <= index < 48 else 0) + rng.gauss(0, 9)
            window = windows[index]
            window.append(min(100.0, max(0.0, load)))
            del window[:-samples_per_window]
            averages.append(sum(window) / len(window))
        sent += rng.uniform(1.5e6, 4e6) * (3 if job else 1)
        received += rng.uniform(20e6, 40e6)
        caching = 38 + 6 * math.sin(minute / 20) + rng.gauss(0, 0.05)
        output = resource_output(
            averages,
            egress=sent / (sent + received) * 100,
            caching=caching,
            timestamp=str(datetime.fromtimestamp(at_ms / 1000)),
        )
        history.append((at_ms, output))
    return history
