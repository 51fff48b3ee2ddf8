"""8. Recovery: a fresh runtime loads the snapshot and replays a journal of N entries.

The resource-monitor at 64 CPUs x 60 samples. One runtime in this process fills the window and
saves a snapshot, then commits N more inputs with snapshots held off (so that the journal keeps
all N; in steady state the byte rule writes one every ~20 commits at this size). A fresh Runner,
with its own connection, then makes its first step: it loads the function, reads snapshot and
journal in one transaction, replays the journal through the handler (outputs discarded), and
finds the input already processed. That step is timed, again and again for each N.

Then the bound: a function costing 1, 10 and 50 ms a call, with a state far larger than its
inputs (the byte rule alone would journal every input), commits inputs under the runtime's own
snapshot policy with MAX_REPLAY_SECONDS; a fresh runtime's first step (the rebuild after a node
loss) is timed against that bound, next to what replaying every input would have cost.
"""

from __future__ import annotations

import json
import time
from datetime import datetime

from serverless_runtime.state.durable import SNAPSHOT_EVERY

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
    rows.extend(_bounded(bench, repeats))
    return rows


# A handler of a given cost whose state (20 kB) outweighs its inputs many times.
_COSTLY = """
import time

def handler(input, context):
    time.sleep({cost})
    context.env.setdefault("pad", "x" * 20000)
    context.env["n"] = context.env.get("n", 0) + 1
    return {{"n": context.env["n"]}}
"""
BOUND = 0.5  # MAX_REPLAY_SECONDS here, small to keep the bench short
COSTS = (0.001, 0.01, 0.05)


def _bounded(bench: Bench, repeats: int) -> list[Row]:
    """Rows: rebuild time with the replay-cost policy, by handler cost, against the bound."""
    commits = bench.size(60, 25)
    rows = []
    for cost in COSTS:
        folder = bench.workdir / "functions" / f"costly-{int(cost * 1000)}ms"
        folder.mkdir(parents=True, exist_ok=True)
        function = folder / "usermodule.py"
        function.write_text(_COSTLY.format(cost=cost))
        key = f"bounded:{int(cost * 1000)}"
        env = {
            "REDIS_URL": bench.valkey.url,
            "REDIS_INPUT_KEY": f"{key}:in",
            "REDIS_OUTPUT_KEY": f"{key}:out",
            "LEASE_KEY": "",
            "FUNCTION_PATH": str(function),
            "TRIGGER": "poll",
            "HTTP_PORT": "0",
            "LOG_LEVEL": "WARNING",
            "MAX_REPLAY_SECONDS": str(BOUND),
        }
        writer = Runtime(env)
        try:
            for n in range(commits):
                writer.client.set(env["REDIS_INPUT_KEY"], json.dumps({"n": n}))
                writer.step()
            journal = writer.client.xlen(f"{key}:out:state:journal")
        finally:
            writer.close()  # no last snapshot: a node loss
        times = [_rebuild(env) for _ in range(repeats)]
        figure = stats.median(times)
        rows.append(
            Row(
                f"recovery after a node loss, handler {cost * 1000:g} ms, {commits} commits",
                f"{repeats} each, journal {journal}",
                seconds(figure),
                f"{seconds(commits * cost)} replaying every input",
                figure / BOUND,
                f"≤ 1x MAX_REPLAY_SECONDS={BOUND:g}",
                figure <= BOUND,
            )
        )
    return rows


def _rebuild(env: dict[str, str]) -> float:
    """Seconds for a fresh runtime's first step (load, rebuild, nothing new to call)."""
    started = time.perf_counter()
    fresh = Runtime(env)
    try:
        fresh.step()
        return time.perf_counter() - started
    finally:
        fresh.close()


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
