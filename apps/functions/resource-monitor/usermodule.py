"""Resource monitor: network egress share, memory cache share and 60 s CPU moving averages.

``handler(input, context)`` reads one snapshot of the metrics collector and returns:

- ``percent-network-egress``: bytes_sent / (bytes_sent + bytes_recv) * 100 of ``eth0``, or of
  every interface but ``lo`` summed when the input has no ``eth0`` keys;
- ``percent-memory-caching``: (cached + buffers) / total * 100;
- ``avg-util-cpu{N}-60sec``: the mean of CPU N's samples whose input timestamps lie in the window
  ``(t - 60 s, t]``, t being the newest input timestamp;
- ``timestamp``: the input's ``timestamp`` string, unchanged.

A zero denominator gives 0.0; a missing or unusable field leaves out the keys that need it.

The window lives in ``context.env`` as plain JSON (the runtime persists it): ``{"version": 3,
"rows": [[microseconds, {cpu: sample}], ...]}``, oldest first. Each call appends its row, keeps
the rows still in the window and averages them again: cheap at 12 to 600 samples a minute.
"""

from __future__ import annotations

import math
import sys
from datetime import datetime, timedelta
from typing import Any

STATE_KEY = "cpu-window"
STATE_VERSION = 3  # 2 held running sums beside the same rows
WINDOW = 60_000_000  # microseconds
CPU_PREFIX = "cpu_percent-"
NET_PREFIX = "net_io_counters_"
EPOCH = datetime(1970, 1, 1)


def handler(input: Any, context: Any) -> dict[str, Any]:
    """The resource-monitor output for one metrics snapshot."""
    if not isinstance(input, dict):
        return {}
    if not isinstance(getattr(context, "env", None), dict):
        context.env = {}  # the course runtime always gives one; a bare context object may not
    ratios = {
        "percent-network-egress": network_egress(input),
        "percent-memory-caching": memory_caching(input),
    }
    output: dict[str, Any] = {key: value for key, value in ratios.items() if value is not None}
    at = parse_timestamp(input.get("timestamp"))
    if at is not None:  # a snapshot that cannot be placed in time leaves the window alone
        output.update(cpu_averages(context.env, at, cpu_samples(input)))
    if isinstance(input.get("timestamp"), str):
        output["timestamp"] = input["timestamp"]
    return output


def number(value: Any, most: float = sys.float_info.max) -> float | None:
    """The value as a float if it is a JSON number from 0 to `most`, else None."""
    # type(): True is no number; NaN fails every comparison; infinity is above `most`.
    return float(value) if type(value) in (int, float) and 0 <= value <= most else None


def percent(part: float, whole: float) -> float | None:
    """part / whole * 100; 0.0 when whole is 0, None when the result is too large for a float."""
    if whole == 0:
        return 0.0
    result = part / whole * 100
    return result if math.isfinite(result) else None


def network_egress(data: dict[Any, Any]) -> float | None:
    """Share of the bytes sent, on eth0 or, without eth0 keys, on every interface but lo."""
    # Keys are net_io_counters_<interface>-<counter>; names like br-1a2b3c hold a "-" too.
    interfaces = {
        key[len(NET_PREFIX) :].rpartition("-")[0]
        for key in data
        if isinstance(key, str) and key.startswith(NET_PREFIX)
    }
    interfaces = {"eth0"} if "eth0" in interfaces else interfaces - {"lo", ""}
    sent = received = 0.0
    counted = False
    for name in interfaces:
        interface_sent = number(data.get(f"{NET_PREFIX}{name}-bytes_sent"))
        interface_received = number(data.get(f"{NET_PREFIX}{name}-bytes_recv"))
        if interface_sent is not None and interface_received is not None:
            sent += interface_sent
            received += interface_received
            counted = True
    return percent(sent, sent + received) if counted else None


def memory_caching(data: dict[Any, Any]) -> float | None:
    """Share of memory holding the page cache and buffers."""
    cached = number(data.get("virtual_memory-cached"))
    buffers = number(data.get("virtual_memory-buffers"))
    total = number(data.get("virtual_memory-total"))
    if cached is None or buffers is None or total is None:
        return None
    return percent(cached + buffers, total)


def parse_timestamp(value: Any) -> int | None:
    """Microseconds since 1970 on the collector's clock (UTC if the text has an offset), or None."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
        offset = moment.utcoffset()
        if offset is not None:
            moment = moment.replace(tzinfo=None) - offset
        # Whole microseconds keep the window's edges exact where float seconds would round.
        return (moment - EPOCH) // timedelta(microseconds=1)
    except (ValueError, OverflowError):
        return None


def cpu_samples(data: dict[Any, Any]) -> dict[str, float]:
    """The input's valid CPU utilisations (numbers from 0 to 100), by CPU number."""
    samples = {}
    for key, value in data.items():
        if isinstance(key, str) and key.startswith(CPU_PREFIX):
            cpu = key[len(CPU_PREFIX) :]
            sample = number(value, 100)
            if sample is not None and cpu.isdigit() and cpu.isascii():
                samples[cpu] = sample
    return samples


def cpu_averages(env: dict[str, Any], at: int, samples: dict[str, float]) -> dict[str, float]:
    """Add the samples taken at `at` to the window; the mean of every CPU they cover."""
    try:
        rows = update_window(env, at, samples)
        values = {cpu: [row[cpu] for _, row in rows if cpu in row] for cpu in samples}
        # fsum: exactly rounded. No values: a repeated snapshot brings a CPU its first one lacked.
        return {f"avg-util-cpu{cpu}-60sec": math.fsum(v) / len(v) for cpu, v in values.items() if v}
    except (TypeError, ValueError, KeyError, IndexError, AttributeError):
        env[STATE_KEY] = None  # a state this version did not write (edited by hand?): start afresh
        return cpu_averages(env, at, samples)  # a fresh window cannot fail


def update_window(env: dict[str, Any], at: int, samples: dict[str, float]) -> list[Any]:
    """The window's rows once the samples taken at `at` are in; raises on a damaged state."""
    window = env.get(STATE_KEY)
    if isinstance(window, dict) and window.get("version") == 2:  # same rows, plus sums: kept
        window = env[STATE_KEY] = {"version": STATE_VERSION, "rows": window.get("rows")}
    is_ours = isinstance(window, dict) and window.get("version") == STATE_VERSION
    if not is_ours or (window["rows"] and at < window["rows"][-1][0]):
        # The first call, another version's state, or time went backwards: a fresh window.
        window = env[STATE_KEY] = {"version": STATE_VERSION, "rows": []}
    rows = window["rows"]
    if not rows or at > rows[-1][0]:  # a repeated snapshot (same timestamp) is not counted again
        rows.append([at, samples])
        window["rows"] = rows = [row for row in rows if row[0] > at - WINDOW]
    return rows
