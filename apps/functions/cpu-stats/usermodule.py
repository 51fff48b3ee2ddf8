"""CPU statistics over a sliding window, computed with numpy: per-CPU mean and 95th percentile.

``handler(input, context)`` reads one snapshot of the metrics collector (the ``metrics`` key, the
same input as resource-monitor) and returns, over the snapshots whose timestamps lie in the window
``(t - 60 s, t]``, t being the newest input timestamp:

- ``mean-util-cpu{N}-60sec``: the mean of CPU N's utilisation samples;
- ``p95-util-cpu{N}-60sec``: their 95th percentile (numpy's default, linear interpolation);
- ``max-util-cpu{N}-60sec``: the largest of them;
- ``samples-60sec``: how many snapshots the window holds;
- ``timestamp``: the input's ``timestamp`` string, unchanged.

A CPU is reported while the current input carries a valid ``cpu_percent-N`` (a number from 0 to
100); its earlier samples count if they are still in the window. A field that is missing or not a
usable number is skipped: no input makes the function raise.

The window lives in ``context.env`` as plain JSON (lists, not numpy arrays), so the runtime's
durable state restores it after a restart: ``{"version": 1, "rows": [[microseconds, {cpu:
sample}], ...]}``, oldest first.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

import numpy as np

STATE_KEY = "cpu-stats-window"
STATE_VERSION = 1
WINDOW = 60_000_000  # microseconds
CPU_PREFIX = "cpu_percent-"
EPOCH = datetime(1970, 1, 1)


def handler(input: Any, context: Any) -> dict[str, Any]:
    """The cpu-stats output for one metrics snapshot."""
    if not isinstance(input, dict):
        return {}
    if not isinstance(getattr(context, "env", None), dict):
        context.env = {}
    output: dict[str, Any] = {}
    at = parse_timestamp(input.get("timestamp"))
    if at is not None:  # a snapshot that cannot be placed in time leaves the window alone
        samples = cpu_samples(input)
        rows = update_window(context.env, at, samples)
        output["samples-60sec"] = len(rows)
        output.update(statistics(rows, sorted(samples, key=int)))
    if isinstance(input.get("timestamp"), str):
        output["timestamp"] = input["timestamp"]
    return output


def parse_timestamp(value: Any) -> int | None:
    """Microseconds since 1970 on the collector's clock (UTC if the text has an offset), or None."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
        offset = moment.utcoffset()
        if offset is not None:
            moment = moment.replace(tzinfo=None) - offset
        return (moment - EPOCH) // timedelta(microseconds=1)
    except (ValueError, OverflowError):
        return None


def cpu_samples(data: dict[Any, Any]) -> dict[str, float]:
    """The input's valid CPU utilisations (JSON numbers from 0 to 100), by CPU number."""
    samples = {}
    for key, value in data.items():
        if isinstance(key, str) and key.startswith(CPU_PREFIX):
            cpu = key[len(CPU_PREFIX) :]
            # type(), not isinstance(): True is not a number; NaN fails both comparisons.
            usable = type(value) in (int, float) and 0 <= value <= 100
            if usable and cpu.isdigit() and cpu.isascii():
                samples[cpu] = float(value)
    return samples


def update_window(env: dict[str, Any], at: int, samples: dict[str, float]) -> list[Any]:
    """Add the samples taken at `at` and drop the rows that left the window; the window's rows."""
    window = env.get(STATE_KEY)
    if not _is_ours(window) or (window["rows"] and at < window["rows"][-1][0]):
        # The first call, a state this version did not write, or time went backwards: afresh.
        window = env[STATE_KEY] = {"version": STATE_VERSION, "rows": []}
    rows: list[Any] = window["rows"]
    if not rows or at > rows[-1][0]:  # a repeated snapshot (same timestamp) is not counted again
        rows.append([at, samples])
        window["rows"] = rows = [row for row in rows if row[0] > at - WINDOW]
    return rows


def _is_ours(window: Any) -> bool:
    if not isinstance(window, dict) or window.get("version") != STATE_VERSION:
        return False
    rows = window.get("rows")
    return isinstance(rows, list) and all(
        isinstance(row, list)
        and len(row) == 2
        and type(row[0]) is int
        and isinstance(row[1], dict)
        and all(type(v) in (int, float) and math.isfinite(v) for v in row[1].values())
        for row in rows
    )


def statistics(rows: list[Any], cpus: list[str]) -> dict[str, float]:
    """Mean, 95th percentile and maximum of every CPU in CPUS over the window's rows."""
    if not cpus:
        return {}
    # One row per snapshot, one column per CPU; NaN where a snapshot lacks that CPU.
    table = np.array(
        [[row[1].get(cpu, math.nan) for cpu in cpus] for row in rows], dtype=np.float64
    )
    means = np.nanmean(table, axis=0)
    p95s = np.nanpercentile(table, 95, axis=0)
    maxima = np.nanmax(table, axis=0)
    output: dict[str, float] = {}
    for column, cpu in enumerate(cpus):
        # float(): numpy's float64 is no JSON type of the runtime's strict encoder's choosing.
        output[f"mean-util-cpu{cpu}-60sec"] = float(means[column])
        output[f"p95-util-cpu{cpu}-60sec"] = float(p95s[column])
        output[f"max-util-cpu{cpu}-60sec"] = float(maxima[column])
    return output
