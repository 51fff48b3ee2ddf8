"""3. Stream-mode throughput with one and two consumers, vs a bare XREADGROUP/XACK loop.

Every process reads one entry per XREADGROUP. A round adds N entries in one pipeline and ends
when the consumer group has delivered the last one and none is pending; rounds of the runtime
and of the bare loop alternate, so both see the same machine.
"""

from __future__ import annotations

import json
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import redis

from bench import stats
from bench.env import BASELINES, TRIVIAL_FILE, Bench, runtime_argv
from bench.inputs import now_snapshot
from bench.procs import Child
from bench.report import Row, rate

GROUP = "serverless-runtime"
# Derived from the per-call budget: at most 1.5x the floor's time per entry.
BUDGET = 1 / 1.5
POLL = 0.002


@dataclass(frozen=True)
class _Setup:
    stream: str
    consumers: list[str]


def run(bench: Bench) -> list[Row]:
    """One row per consumer count."""
    function = bench.function_copy(TRIVIAL_FILE)
    entries = bench.size(2000, 100)
    rounds = bench.size(5, 1)
    rows = []
    for consumers in (1, 2):
        runtime, floor = _compare(bench, function, consumers, entries, rounds)
        figure, baseline = stats.median(runtime), stats.median(floor)
        ratio = figure / baseline
        plural = "s" if consumers > 1 else ""
        rows.append(
            Row(
                f"stream throughput, {consumers} consumer{plural}",
                f"{rounds} x {entries}",
                rate(figure),
                rate(baseline),
                ratio,
                f"≥ {BUDGET:.2f}x bare loop",
                ratio >= BUDGET,
            )
        )
    return rows


def _compare(
    bench: Bench, function: Path, consumers: int, entries: int, rounds: int
) -> tuple[list[float], list[float]]:
    client = bench.client()
    names = [f"c{index}" for index in range(consumers)]
    runtime = _Setup(f"throughput:{consumers}:runtime:in", names)
    floor = _Setup(f"throughput:{consumers}:floor:in", names)
    runtime_rates: list[float] = []
    floor_rates: list[float] = []
    with ExitStack() as stack:
        for name in names:
            env = {
                "REDIS_URL": bench.valkey.url,
                "REDIS_INPUT_KEY": runtime.stream,
                "REDIS_OUTPUT_KEY": f"throughput:{consumers}:runtime:out",
                "FUNCTION_PATH": str(function),
                "TRIGGER": "stream",
                "STREAM_CONSUMER": name,
                "HTTP_PORT": "0",
                "LOG_LEVEL": "WARNING",
            }
            log = bench.workdir / f"throughput-runtime-{consumers}-{name}.log"
            stack.enter_context(Child(runtime_argv(), env, log))
            floor_env = {
                "REDIS_PORT": str(bench.valkey.port),
                "REDIS_INPUT_KEY": floor.stream,
                "REDIS_OUTPUT_KEY": f"throughput:{consumers}:floor:out",
                "FUNCTION_PATH": str(function),
                "STREAM_CONSUMER": name,
            }
            argv = [sys.executable, str(BASELINES / "stream_loop.py")]
            log = bench.workdir / f"throughput-floor-{consumers}-{name}.log"
            stack.enter_context(Child(argv, floor_env, log))
        for setup in (runtime, floor):
            _wait_for_consumers(client, setup)
            _round(client, setup, bench, 1)  # warm-up: everything imported and connected
        for _ in range(rounds):
            runtime_rates.append(_round(client, runtime, bench, entries))
            floor_rates.append(_round(client, floor, bench, entries))
    client.close()
    return runtime_rates, floor_rates


def _wait_for_consumers(client: redis.Redis, setup: _Setup, timeout: float = 60) -> None:
    """Until every consumer has read from the group once (it then exists in XINFO)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            present = {_text(c["name"]) for c in client.xinfo_consumers(setup.stream, GROUP)}
        except redis.ResponseError:  # the stream or group does not exist yet
            present = set()
        if present >= set(setup.consumers):
            return
        time.sleep(0.05)
    raise RuntimeError(f"consumers of {setup.stream} did not start within {timeout}s")


def _round(client: redis.Redis, setup: _Setup, bench: Bench, entries: int) -> float:
    """Add `entries` entries at once; entries per second until all are acknowledged."""
    payloads = []
    for index in range(entries):
        value = now_snapshot(bench.rng)
        value["n"] = index
        payloads.append(json.dumps(value))
    pipe = client.pipeline(transaction=False)
    for payload in payloads:
        pipe.xadd(setup.stream, {"data": payload})
    started = time.perf_counter()
    last_id = _text(pipe.execute()[-1])
    deadline = time.monotonic() + 60 + entries / 50
    while True:
        group = _group(client, setup.stream)
        if _text(group["last-delivered-id"]) == last_id and group["pending"] == 0:
            return entries / (time.perf_counter() - started)
        if time.monotonic() > deadline:
            raise RuntimeError(f"{setup.stream}: entries not processed in time: {group}")
        time.sleep(POLL)


def _group(client: redis.Redis, stream: str) -> dict[str, object]:
    for group in client.xinfo_groups(stream):
        if _text(group["name"]) == GROUP:
            return dict(group)
    raise RuntimeError(f"no group {GROUP} on {stream}")


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
