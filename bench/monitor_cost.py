"""5. resource-monitor cost per call by CPU count and window length, vs the tests' reference.

The window is 60 s, so its length in samples is set by the cadence: 12 samples at 5 s (the
course), 60 at 1 s, 600 at 0.1 s. Each function is first fed enough snapshots to fill its window,
then every call is timed. The baseline is `tests/function/reference.py` (through
`bench/naive_monitor.py`), which filters and averages its whole sample list on every call, as the
function itself now does with its rows (issue 22 chose that readable shape over running sums).

The figure is the median over batches of consecutive calls (2 windows, at least 200 calls) of
the mean per call, so that a moment of a busy machine does not dominate.
"""

from __future__ import annotations

import gc
import importlib.util
import json
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

from bench import naive_monitor, stats
from bench.env import FUNCTION_FILE, Bench
from bench.inputs import series
from bench.report import Row, seconds

CPUS = (2, 8, 64)
WINDOWS = (12, 60, 600)
WINDOW_SECONDS = 60.0
BUDGET = 50e-6
BUDGET_CPUS, BUDGET_WINDOW = 64, 60
# "Flat in window length": 50 times the samples may cost at most this much more per call.
FLATNESS_BUDGET = 1.5
NAIVE_BATCH = 20

Handler = Callable[[Any, Any], Any]


def run(bench: Bench) -> list[Row]:
    """One row per CPU count and window length, then the flatness and state-size rows."""
    real = _load(bench.function_copy(FUNCTION_FILE)).handler
    batches = bench.size(7, 2)
    naive_batches = bench.size(15, 2)
    rows = []
    costs: dict[tuple[int, int], tuple[float, float]] = {}
    encode: dict[int, tuple[float, int]] = {}
    for cpus in CPUS:
        for window in WINDOWS:
            batch = max(2 * window, 200)
            warmup = 2 * window + 10
            inputs = series(
                datetime(2026, 11, 27, 23, 0),
                WINDOW_SECONDS / window,
                warmup + batches * batch,
                cpus,
                bench.rng,
            )
            context = SimpleNamespace(env={})
            times = _timed_calls(real, inputs, warmup, context)
            naive = _timed_calls(
                naive_monitor.handler,
                inputs,
                window + 10,
                SimpleNamespace(env={}),
                naive_batches * NAIVE_BATCH,
            )
            figure = _batch_median(times, batch)
            baseline = _batch_median(naive, NAIVE_BATCH)
            costs[(cpus, window)] = (figure, baseline)
            if cpus == BUDGET_CPUS:
                encode[window] = _encode_cost(context.env, bench.size(200, 10))
            budgeted = (cpus, window) == (BUDGET_CPUS, BUDGET_WINDOW)
            rows.append(
                Row(
                    f"resource-monitor, {cpus} CPUs, {window}-sample window",
                    f"{len(times)} / {len(naive)}",
                    f"{seconds(figure)} mean, p99 {seconds(stats.p99(times))}",
                    f"{seconds(baseline)} naive",
                    figure / baseline,
                    f"≤ {seconds(BUDGET)}" if budgeted else "—",
                    figure <= BUDGET if budgeted else None,
                )
            )
    short, long = WINDOWS[0], WINDOWS[-1]
    top = CPUS[-1]
    real_growth = costs[(top, long)][0] / costs[(top, short)][0]
    naive_growth = costs[(top, long)][1] / costs[(top, short)][1]
    rows.append(
        Row(
            f"resource-monitor flatness, {top} CPUs, {long} vs {short}",
            "as above",
            f"{real_growth:.2f}x per call",
            f"{naive_growth:.1f}x naive",
            real_growth / naive_growth,
            f"≤ {FLATNESS_BUDGET}x (flat)",
            real_growth <= FLATNESS_BUDGET,
        )
    )
    for window in (BUDGET_WINDOW, long):
        cost, size = encode[window]
        function_cost = costs[(top, window)][0]
        rows.append(
            Row(
                f"old per-call state write, json.dumps, {top} CPUs, {window} samples",
                f"{bench.size(200, 10)}",
                f"{seconds(cost)} ({size / 1000:.0f} kB)",
                f"{seconds(function_cost)} function",
                cost / function_cost,
                "— (state v1; see state rows)",
                None,
            )
        )
    return rows


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("resource_monitor", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _timed_calls(
    handler: Handler,
    inputs: list[dict[str, Any]],
    warmup: int,
    context: Any,
    limit: int | None = None,
) -> list[float]:
    """Feed `warmup` inputs untimed, then time each further call (up to `limit`)."""
    for value in inputs[:warmup]:
        handler(value, context)
    timed = inputs[warmup:] if limit is None else inputs[warmup : warmup + limit]
    times = []
    clock = time.perf_counter
    # The prepared inputs are far more objects than a runtime process holds: out of the
    # collector's sight, so that its pauses reflect the function's own allocations.
    gc.collect()
    gc.freeze()
    try:
        for value in timed:
            started = clock()
            handler(value, context)
            times.append(clock() - started)
    finally:
        gc.unfreeze()
    return times


def _batch_median(times: list[float], batch: int) -> float:
    """The median over consecutive batches of the mean time per call."""
    means = [
        stats.mean(times[start : start + batch])
        for start in range(0, len(times) - batch + 1, batch)
    ]
    return stats.median(means or [stats.mean(times)])


def _encode_cost(env: dict[str, Any], repeats: int) -> tuple[float, int]:
    """What the runtime paid per call before state v2 to persist this state: json.dumps of env."""
    times = []
    text = ""
    for _ in range(repeats):
        started = time.perf_counter()
        text = json.dumps(env)
        times.append(time.perf_counter() - started)
    return stats.median(times), len(text)
