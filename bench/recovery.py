"""8. Recovery: a fresh runtime loads the snapshot and replays a journal of N entries.

The resource-monitor at 64 CPUs x 60 samples. One runtime in this process fills the window and
saves a snapshot, then commits N more inputs with snapshots held off (so that the journal keeps
all N; in steady state the byte rule writes one every ~20 commits at this size). A fresh Runner,
with its own connection, then makes its first step: it loads the function, reads snapshot and
journal in one transaction, replays the journal through the handler (outputs discarded), and
finds the input already processed. That step is timed, again and again for each N.
"""

from __future__ import annotations

import json
import time
from datetime import datetime

from serverless_runtime.state import SNAPSHOT_EVERY

from bench import stats
from bench.env import FUNCTION_FILE, Bench
from bench.inprocess import HandlerClock, Runtime
from bench.inputs import series
from bench.report import Row, seconds

CPUS, WINDOW = 64, 60
WINDOW_SECONDS = 60.0
# The most the runtime ever leaves unsnapshotted is SNAPSHOT_EVERY - 1 commits.
JOURNALS = (0, 100, SNAPSHOT_EVERY - 1)
NEVER = 1 << 62  # a snapshot size no journal reaches: holds the byte rule off


def run(bench: Bench) -> list[Row]:
    """One row per journal length, then the cost per replayed entry vs a call."""
    function = bench.function_copy(FUNCTION_FILE)
    repeats = bench.size(7, 1)
    journals = JOURNALS if not bench.quick else (0, 10, 30)
    warmup = 2 * WINDOW + 10
    inputs = [
        json.dumps(value).encode()
        for value in series(
            datetime(2026, 11, 27, 23, 0),
            WINDOW_SECONDS / WINDOW,
            warmup + sum(journals),
            CPUS,
            bench.rng,
        )
    ]
    env = {
        "REDIS_URL": bench.valkey.url,
        "REDIS_INPUT_KEY": "recovery:in",
        "REDIS_OUTPUT_KEY": "recovery:out",
        "LEASE_KEY": "",  # one writer at a time here; the fresh runners only read
        "FUNCTION_PATH": str(function),
        "TRIGGER": "poll",
        "HTTP_PORT": "0",
        "LOG_LEVEL": "WARNING",
    }
    clock = HandlerClock()
    writer = Runtime(env, clock)
    client = writer.client
    times: dict[int, list[float]] = {}
    try:
        feed = iter(inputs)
        writer.step()
        for _ in range(warmup):
            client.set(env["REDIS_INPUT_KEY"], next(feed))
            writer.step()
        clock.total, clock.calls = 0.0, 0
        for journal in journals:
            writer.runner.state.save()  # snapshot at the head; journal trimmed to nothing
            writer.runner.state.snapshot_bytes = NEVER
            for _ in range(journal):
                client.set(env["REDIS_INPUT_KEY"], next(feed))
                writer.step()
            times[journal] = [_recover(env, journal) for _ in range(repeats)]
    finally:
        writer.close()
    handler = clock.total / max(clock.calls, 1)
    base = stats.median(times[journals[0]])
    rows = []
    for journal in journals:
        figure = stats.median(times[journal])
        rows.append(
            Row(
                f"recovery, {CPUS} CPUs x {WINDOW}, snapshot + {journal} entries",
                f"{repeats} each",
                seconds(figure),
                f"{seconds(base)} snapshot only" if journal else "—",
                figure / base if journal else None,
                "—",
                None,
            )
        )
    longest = journals[-1]
    per_entry = (stats.median(times[longest]) - base) / longest
    rows.append(
        Row(
            f"replay per journal entry, {CPUS} CPUs x {WINDOW}",
            f"{longest} entries",
            seconds(per_entry),
            f"{seconds(handler)} handler call",
            per_entry / handler,
            "—",
            None,
        )
    )
    return rows


def _recover(env: dict[str, str], journal: int) -> float:
    """Seconds for a fresh runtime's first step; checks that it replayed `journal` entries."""
    started = time.perf_counter()
    fresh = Runtime(env)
    try:
        fresh.step()
        took = time.perf_counter() - started
        state = fresh.runner.state
        replayed = state.seq - _snapshot_seq(fresh)
        if replayed != journal or fresh.telemetry.outcomes:
            raise RuntimeError(f"replayed {replayed} of {journal} entries: {fresh.telemetry}")
        return took
    finally:
        fresh.close()


def _snapshot_seq(runtime: Runtime) -> int:
    raw = runtime.client.get(runtime.store.state_key or "")
    return int(json.loads(raw or b"{}").get("seq", 0))
