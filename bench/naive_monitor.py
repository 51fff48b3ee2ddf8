"""The naive resource-monitor the real one is measured against: filter the whole list each call.

Same outputs as `apps/functions/resource-monitor/usermodule.py` for well-formed input; the
window is a list of every sample, filtered again and averaged again on every call, so a call
costs O(window length x CPUs).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

WINDOW = timedelta(seconds=60)
CPU_PREFIX = "cpu_percent-"


def handler(input: dict[str, Any], context: Any) -> dict[str, Any]:
    """Egress, caching and 60 s CPU averages, recomputed from every kept sample."""
    now = datetime.fromisoformat(input["timestamp"])
    cpus = {key: value for key, value in input.items() if key.startswith(CPU_PREFIX)}
    samples = context.env.setdefault("samples", [])
    samples.append((now, cpus))
    samples[:] = [(at, values) for at, values in samples if now - WINDOW < at <= now]
    sent = input["net_io_counters_eth0-bytes_sent"]
    received = input["net_io_counters_eth0-bytes_recv"]
    cached = input["virtual_memory-cached"] + input["virtual_memory-buffers"]
    total = input["virtual_memory-total"]
    output: dict[str, Any] = {
        "percent-network-egress": sent / (sent + received) * 100 if sent + received else 0.0,
        "percent-memory-caching": cached / total * 100 if total else 0.0,
        "timestamp": input["timestamp"],
    }
    for key in cpus:
        values = [values[key] for _, values in samples if key in values]
        output[f"avg-util-cpu{key.removeprefix(CPU_PREFIX)}-60sec"] = sum(values) / len(values)
    return output
