"""Host metrics via psutil, written to one Redis key every period (`serverless-runtime collect`)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime

import psutil
import redis

logger = logging.getLogger(__name__)

# The course collector's fields; cpu_stats and net_io_counters have the same on every platform.
VIRTUAL_MEMORY = ("total", "available", "percent", "used", "free", "active", "inactive", "buffers",
                  "cached", "shared", "slab")  # fmt: skip


def sample(interface: str = "eth0") -> dict[str, object]:
    """One snapshot of this host's metrics, keyed as the course collector keys them."""
    # A metric the platform cannot report is left out rather than faked.
    metrics: dict[str, object] = {"timestamp": str(datetime.now())}
    try:
        frequency = psutil.cpu_freq()  # MHz
    except (NotImplementedError, OSError, AttributeError):
        # Linux without cpufreq files raises NotImplementedError; some platforms lack cpu_freq.
        frequency = None
    if frequency is not None:
        metrics["cpu_freq_current"] = float(frequency.current)
    metrics.update({f"cpu_stats-{k}": v for k, v in psutil.cpu_stats()._asdict().items()})
    memory = psutil.virtual_memory()._asdict()
    metrics.update(
        {f"virtual_memory-{name}": memory[name] for name in VIRTUAL_MEMORY if name in memory}
    )
    metrics["n_pids"] = len(psutil.pids())
    counters = psutil.net_io_counters(pernic=True)
    if interface in counters:
        chosen = {interface: counters[interface]}
    else:
        # Hosts without eth0 (ens3, enp0s1, ...): every interface but lo, under its own name.
        chosen = {name: value for name, value in counters.items() if name != "lo"}
    for name, value in chosen.items():
        metrics.update({f"net_io_counters_{name}-{k}": v for k, v in value._asdict().items()})
    # Non-blocking: the time since the previous call (the very first call reports 0.0).
    for cpu, percent in enumerate(psutil.cpu_percent(percpu=True)):
        metrics[f"cpu_percent-{cpu}"] = percent
    return metrics


def snapshot(interface: str = "eth0", span: float = 0.5) -> dict[str, object]:
    """One sample whose CPU percentages cover SPAN seconds (a lone first sample reports 0.0)."""
    psutil.cpu_percent(percpu=True)
    time.sleep(span)
    return sample(interface)


def run(
    client: redis.Redis,
    key: str,
    period: float,
    interface: str,
    stop: threading.Event,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Write a sample to `key` every `period` seconds until `stop` is set; survive Redis errors."""
    # Prime the CPU counters; the first value is written one period later, so that its CPU
    # percentages span a full period.
    psutil.cpu_percent(percpu=True)
    # Ticks sit on a fixed grid (start + k * period), so slow writes do not make it drift.
    next_tick = clock() + period
    # `stop` ends the wait at once; a write in flight first finishes or fails within the
    # client's timeouts.
    while not stop.wait(max(0.0, next_tick - clock())):
        try:
            client.set(key, json.dumps(sample(interface)))
        except redis.RedisError as exc:
            logger.warning("could not write metrics to %r: %s", key, exc)
        except (OSError, psutil.Error) as exc:
            logger.warning("could not read host metrics: %s", exc)
        next_tick += period
        now = clock()
        if next_tick <= now:
            # A write hung past the next tick: skip the missed ticks rather than burst.
            next_tick += (now - next_tick) // period * period + period
