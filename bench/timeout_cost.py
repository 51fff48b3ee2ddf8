"""Per-call cost of HANDLER_TIMEOUT's bounds: SIGALRM and the timer in C, armed around each call.

Two runtimes in this process on the same inputs, one with HANDLER_TIMEOUT set and one without,
their steps interleaved input by input so that drift hits both alike. The difference is the
interval timer, the C timer's thread (started and joined per call) and the stop handlers' check.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from bench import stats
from bench.env import TRIVIAL_FILE, Bench
from bench.inprocess import Runtime
from bench.inputs import now_snapshot
from bench.report import Row, seconds

# The C timer starts and joins a thread per call (about 10 µs alone): a fixed cost, large only
# next to a trivial call's step, as here; the same budget as the runtime's overhead.
BUDGET = 1.5


def run(bench: Bench) -> list[Row]:
    """One row: a trivial call's step with HANDLER_TIMEOUT=30 vs unset."""
    function = bench.function_copy(TRIVIAL_FILE)
    calls = bench.size(2000, 40)
    runtimes = {}
    for name, timeout in (("bounded", {"HANDLER_TIMEOUT": "30"}), ("unbounded", {})):
        env = {
            "REDIS_URL": bench.valkey.url,
            "REDIS_INPUT_KEY": f"timeout:{name}:in",
            "REDIS_OUTPUT_KEY": f"timeout:{name}:out",
            "FUNCTION_PATH": str(function),
            "TRIGGER": "poll",
            "HTTP_PORT": "0",
            "LOG_LEVEL": "WARNING",
            **timeout,
        }
        runtimes[name] = Runtime(env)
    writer = bench.client()
    times: dict[str, list[float]] = {name: [] for name in runtimes}
    try:
        for runtime in runtimes.values():
            runtime.step()  # load the function; nothing to do yet
        for sequence in range(calls):
            value = now_snapshot(bench.rng)
            value["n"] = sequence
            raw = json.dumps(value).encode()
            for name, runtime in runtimes.items():
                writer.set(runtime.settings.keys.input, raw)
                times[name].append(_timed(runtime.step))
        for runtime in runtimes.values():
            runtime.check(calls)
    finally:
        for runtime in runtimes.values():
            runtime.close()
        writer.close()
    bounded, unbounded = times["bounded"], times["unbounded"]
    ratio = stats.median(bounded) / stats.median(unbounded)
    extra = stats.median(bounded) - stats.median(unbounded)
    return [
        Row(
            "per-call step, HANDLER_TIMEOUT=30 (SIGALRM + C timer)",
            f"{calls} each",
            f"{seconds(stats.median(bounded))} (+{seconds(extra)})",
            f"{seconds(stats.median(unbounded))} unset",
            ratio,
            f"≤ {BUDGET}x unset",
            ratio <= BUDGET,
        )
    ]


def _timed(call: Callable[[], None]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started
