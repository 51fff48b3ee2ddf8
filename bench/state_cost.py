"""7. Durable state in steady state: per-call overhead and bytes sent to Redis, by state size.

The real resource-monitor function at three state sizes: 2 CPUs x 12 samples in its 60 s window
(the course's 5 s cadence), 64 x 60 (1 s) and 64 x 600 (0.1 s). The window is filled first, through
the runtime, so the state and its snapshot have their full size. Then each input is written
(untimed) and processed by one runtime step, and by a bare redis-py loop: GET, orjson, handler,
SET of the output alone (one round trip each, the least any loop can do).

Overhead is a step's time minus the handler's own time (timed around the handler on both
sides). The runtime's figure is a mean, so the snapshots it writes now and then are paid for in
it; the calls are grouped in batches long enough to hold several snapshots and the median batch
mean counts, so that a busy moment of the machine does not dominate.

Bytes are the server's `total_net_input_bytes` around each step (read with INFO, whose own
request is measured and subtracted): everything the runtime sends, commands included. The old
approach wrote the output and the whole `context.env` (stdlib json.dumps) on every call; that
is computed on a sample of the calls (the window's state grows to twice its length, then is
compacted, so its size varies from call to call).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import redis
from serverless_runtime.function.loader import load_file
from serverless_runtime.state import codec, tagged

from bench import stats
from bench.env import FUNCTION_FILE, Bench
from bench.inprocess import HandlerClock, Runtime
from bench.inputs import series
from bench.report import Row, seconds

SIZES = ((2, 12), (64, 60), (64, 600))  # CPUs, samples in the 60 s window
WINDOW_SECONDS = 60.0
BUDGET = 1.5  # x the bare loop's overhead
FLATNESS_BUDGET = 1.5  # largest state's overhead / smallest's
BATCHES = 5
OLD_SAMPLES = 50  # calls whose old-approach bytes are computed (json.dumps is slow)


@dataclass(frozen=True)
class SizeResult:
    """What one state size measured."""

    cpus: int
    window: int
    calls: int
    snapshots: int
    overhead: float  # runtime step - handler, batch-median mean
    floor: float  # bare loop - handler, same
    handler: float  # the handler's own mean time in the runtime
    sent: float  # bytes sent to Redis per runtime call
    input_bytes: float
    old_bytes: float  # output + json.dumps(context.env): what the old runtime wrote per call
    state_bytes: int  # the last snapshot's size
    encoding: float  # seconds per call spent in the state encoding (state_codec), amortised
    json_encoding: float  # the same snapshots written with today's JSON encoder, per call

    @property
    def label(self) -> str:
        """E.g. `64 CPUs x 600`."""
        return f"{self.cpus} CPUs x {self.window}"


def run(bench: Bench) -> list[Row]:
    """Rows: overhead per size, flatness, bytes per size."""
    function = bench.function_copy(FUNCTION_FILE)
    calls = bench.size(2000, 30)
    results = [_measure(bench, function, cpus, window, calls) for cpus, window in SIZES]
    rows = [_overhead_row(result) for result in results]
    small, large = results[0], results[-1]
    growth = large.overhead / small.overhead
    rows.append(
        Row(
            f"state overhead flatness, {large.label} vs {small.label}",
            "as above",
            f"{seconds(large.overhead)} vs {seconds(small.overhead)}",
            f"floor {large.floor / small.floor:.2f}x",
            growth,
            f"≤ {FLATNESS_BUDGET}x (flat)",
            growth <= FLATNESS_BUDGET,
        )
    )
    rows.extend(_bytes_row(result) for result in results)
    rows.extend(_encoding_row(result) for result in results)
    return rows


def _encoding_row(result: SizeResult) -> Row:
    """The overhead per call against the same run with the snapshots encoded as plain JSON."""
    today = result.overhead - result.encoding + result.json_encoding
    ratio = result.overhead / today
    return Row(
        f"state encoding vs today's JSON, per call, {result.label}",
        f"{result.calls}, {result.snapshots} snapshots",
        f"{seconds(result.overhead)} (encoding {seconds(result.encoding)})",
        f"{seconds(today)} (JSON {seconds(result.json_encoding)})",
        ratio,
        f"≤ {BUDGET}x",
        ratio <= BUDGET,
    )


def _overhead_row(result: SizeResult) -> Row:
    ratio = result.overhead / result.floor
    return Row(
        f"per-call overhead, resource-monitor, {result.label}",
        f"{result.calls} each, {result.snapshots} snapshots",
        f"{seconds(result.overhead)} (handler {seconds(result.handler)})",
        f"{seconds(result.floor)} bare GET/SET loop",
        ratio,
        f"≤ {BUDGET}x bare loop",
        ratio <= BUDGET,
    )


def _bytes_row(result: SizeResult) -> Row:
    return Row(
        f"bytes sent to Redis per call, {result.label}",
        f"{result.calls}, state {result.state_bytes / 1000:.1f} kB",
        f"{result.sent / 1000:.2f} kB (input {result.input_bytes / 1000:.2f} kB)",
        f"{result.old_bytes / 1000:.2f} kB old: output+state",
        result.sent / result.old_bytes,
        "— (O(input), not O(state))",
        None,
    )


def _measure(bench: Bench, function: Path, cpus: int, window: int, calls: int) -> SizeResult:
    name = f"state:{cpus}x{window}"
    warmup = 2 * window + 10
    inputs = [
        json.dumps(value).encode()
        for value in series(
            datetime(2026, 11, 27, 23, 0), WINDOW_SECONDS / window, warmup + calls, cpus, bench.rng
        )
    ]
    clock = HandlerClock()
    env = {
        "REDIS_URL": bench.valkey.url,
        "REDIS_INPUT_KEY": f"{name}:in",
        "REDIS_OUTPUT_KEY": f"{name}:out",
        "FUNCTION_PATH": str(function),
        "TRIGGER": "poll",
        "HTTP_PORT": "0",
        "LOG_LEVEL": "WARNING",
    }
    runtime = Runtime(env, clock)
    floor = _Floor(bench.client(), function, f"{name}:floor")
    writer = bench.client()
    bytes_of = _NetInput(writer)
    encoder = _EncodingClock()
    try:
        runtime.step()  # restore the (empty) state, load the function; nothing to do yet
        for raw in inputs[:warmup]:
            writer.set(env["REDIS_INPUT_KEY"], raw)
            runtime.step()
            writer.set(floor.input_key, raw)
            floor.call()
        runtime.store.snapshots = 0
        encoder.start()
        overhead, base, handler, old, sent = [], [], [], [], 0
        stride = max(1, calls // OLD_SAMPLES)
        for index, raw in enumerate(inputs[warmup:]):
            writer.set(env["REDIS_INPUT_KEY"], raw)
            before = bytes_of.now()
            step = _timed(runtime.step)
            sent += bytes_of.since(before)
            overhead.append(step - clock.last)
            handler.append(clock.last)
            encoder.compare()  # untimed: today's encoder on the state just snapshotted
            writer.set(floor.input_key, raw)
            base.append(_timed(floor.call) - floor.handler_time)
            if index % stride == 0:  # untimed: json.dumps of the state is what took so long
                output = writer.get(env["REDIS_OUTPUT_KEY"]) or b""
                old.append(len(output) + len(json.dumps(runtime.runner.context.env)))
        runtime.check(warmup + calls)
        state = runtime.runner.state
        return SizeResult(
            cpus=cpus,
            window=window,
            calls=calls,
            snapshots=runtime.store.snapshots,
            overhead=_batch_median(overhead),
            floor=_batch_median(base),
            handler=stats.mean(handler),
            sent=sent / calls,
            input_bytes=stats.mean([len(raw) for raw in inputs[warmup:]]),
            old_bytes=stats.mean(old),
            state_bytes=state.snapshot_bytes,
            encoding=encoder.total / calls,
            json_encoding=encoder.json_total / calls,
        )
    finally:
        encoder.stop()
        runtime.close()
        floor.close()
        writer.close()


def _timed(call: Callable[[], None]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def _batch_median(values: list[float]) -> float:
    """The median of BATCHES consecutive batch means (the mean when there are too few)."""
    size = len(values) // BATCHES
    if size < 10:
        return stats.mean(values)
    return stats.median([stats.mean(values[i * size : (i + 1) * size]) for i in range(BATCHES)])


class _EncodingClock:
    """Times tagged.dumps inside the runtime, and codec.dumps on the same state after."""

    def __init__(self) -> None:
        self.total = 0.0
        self.json_total = 0.0
        self._original = tagged.dumps
        self._pending: Any = None

    def start(self) -> None:
        original = self._original

        def timed(env: Any, what: str = "context.env") -> bytes:
            started = time.perf_counter()
            try:
                return original(env, what)
            finally:
                self.total += time.perf_counter() - started
                self._pending = env

        tagged.dumps = timed

    def compare(self) -> None:
        """Encode the state just snapshotted (unchanged since) as the runtime did before."""
        if self._pending is not None:
            started = time.perf_counter()
            codec.dumps(self._pending, "context.env")
            self.json_total += time.perf_counter() - started
            self._pending = None

    def stop(self) -> None:
        tagged.dumps = self._original


class _NetInput:
    """The server's count of bytes received, minus the INFO requests that read it."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        first = self._read()
        self.request = self._read() - first  # one INFO stats request, as the server counts it

    def _read(self) -> int:
        return int(self.client.info("stats")["total_net_input_bytes"])

    def now(self) -> int:
        """The count now."""
        return self._read()

    def since(self, before: int) -> int:
        """Bytes received since `before`, without this reading's own request."""
        return self._read() - before - self.request


class _Floor:
    """The least a loop can do per input: GET, parse, call, SET the output; a round trip each."""

    def __init__(self, client: redis.Redis, function: Path, key: str) -> None:
        self.client = client
        self.input_key = f"{key}:in"
        self.output_key = f"{key}:out"
        self.handler = load_file(function).handler
        self.context: Any = SimpleNamespace(env={})
        self.handler_time = 0.0

    def call(self) -> None:
        """Process the current input once."""
        raw = self.client.get(self.input_key)
        assert raw is not None
        value = orjson.loads(raw)
        started = time.perf_counter()
        result = self.handler(value, self.context)
        self.handler_time = time.perf_counter() - started
        self.client.set(self.output_key, orjson.dumps(result))

    def close(self) -> None:
        """Close the client."""
        self.client.close()
