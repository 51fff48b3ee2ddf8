"""1. Input written → output visible: keyspace notifications vs course-style 5 s polling.

Then the notify trigger against its floor, measured in the same run: a bare loop that SUBSCRIBEs
to the input key's keyspace channel, GETs, calls the handler and SETs the output (baselines/
notify_loop.py), both with the trivial function, both running, samples alternating between them.
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time
from collections.abc import Mapping

import redis

from bench import stats
from bench.env import BASELINES, FUNCTION_FILE, TRIVIAL_FILE, Bench, runtime_argv
from bench.inputs import now_snapshot
from bench.procs import Child, KeyWatcher, enable_key_events
from bench.report import Row, seconds

COURSE_INTERVAL = 5.0
P50_BUDGET = 0.005
P99_BUDGET = 0.025
FLOOR_BUDGET = 1.5  # x the bare notify loop
# Notify mode has no tick to be out of phase with; a short random gap still varies the timing.
NOTIFY_GAP = 0.02


def run(bench: Bench) -> list[Row]:
    """Measure both triggers on the resource-monitor function; one row for p50, one for p99."""
    function = bench.function_copy(FUNCTION_FILE)
    notify = _notify(bench, function, bench.size(300, 10))
    poll = _course_polling(bench, function, runtimes=bench.size(4, 2), rounds=bench.size(5, 1))
    runtime, bare = _against_bare(bench, bench.size(300, 10))
    samples = f"{len(notify)} / {len(poll)}"
    p50, base50 = stats.median(notify), stats.median(poll)
    p99, base99 = stats.p99(notify), stats.p99(poll)
    return [
        Row(
            "latency p50, notify vs course polling",
            samples,
            seconds(p50),
            seconds(base50),
            p50 / base50,
            f"≤ {seconds(P50_BUDGET)}",
            p50 <= P50_BUDGET,
        ),
        Row(
            "latency p99, notify vs course polling",
            samples,
            seconds(p99),
            seconds(base99),
            p99 / base99,
            f"≤ {seconds(P99_BUDGET)}",
            p99 <= P99_BUDGET,
        ),
        *(
            Row(
                f"latency {name}, notify vs bare notify loop, trivial",
                f"{len(runtime)} each",
                seconds(figure(runtime)),
                seconds(figure(bare)),
                figure(runtime) / figure(bare),
                f"≤ {FLOOR_BUDGET}x bare loop",
                figure(runtime) / figure(bare) <= FLOOR_BUDGET,
            )
            for name, figure in (("p50", stats.median), ("p99", stats.p99))
        ),
    ]


def _settings(bench: Bench, name: str, function: object) -> dict[str, str]:
    return {
        "REDIS_URL": bench.valkey.url,
        "REDIS_INPUT_KEY": f"latency:{name}:in",
        "REDIS_OUTPUT_KEY": f"latency:{name}:out",
        "FUNCTION_PATH": str(function),
        "HTTP_PORT": "0",
        "LOG_LEVEL": "WARNING",
    }


def _notify(bench: Bench, function: object, count: int) -> list[float]:
    env = {**_settings(bench, "notify", function), "TRIGGER": "notify"}
    client = bench.client()
    enable_key_events(client)
    watcher = KeyWatcher(client, env["REDIS_OUTPUT_KEY"])
    log = bench.workdir / "latency-notify.log"
    try:
        with Child(runtime_argv(), env, log) as child:
            _sample(client, watcher, env, bench.rng, child)  # started and subscribed
            latencies = []
            for _ in range(count):
                time.sleep(bench.rng.uniform(0, NOTIFY_GAP))
                latencies.append(_sample(client, watcher, env, bench.rng, child))
    finally:
        watcher.close()
        client.close()
    return latencies


def _against_bare(bench: Bench, count: int) -> tuple[list[float], list[float]]:
    """The runtime (notify) and the bare notify loop side by side; samples alternate."""
    function = bench.function_copy(TRIVIAL_FILE)
    runtime_env = {**_settings(bench, "runtime", function), "TRIGGER": "notify"}
    bare_env = {
        "REDIS_PORT": str(bench.valkey.port),
        "REDIS_INPUT_KEY": "latency:bare:in",
        "REDIS_OUTPUT_KEY": "latency:bare:out",
        "FUNCTION_PATH": str(function),
    }
    client = bench.client()
    enable_key_events(client)
    watchers = [
        KeyWatcher(client, runtime_env["REDIS_OUTPUT_KEY"]),
        KeyWatcher(client, bare_env["REDIS_OUTPUT_KEY"]),
    ]
    bare_argv = [sys.executable, str(BASELINES / "notify_loop.py")]
    results: tuple[list[float], list[float]] = ([], [])
    try:
        with (
            Child(runtime_argv(), runtime_env, bench.workdir / "latency-runtime.log") as runtime,
            Child(bare_argv, bare_env, bench.workdir / "latency-bare.log") as bare,
        ):
            pairs = list(zip((runtime_env, bare_env), watchers, (runtime, bare), strict=True))
            for env, watcher, child in pairs:
                _sample(client, watcher, env, bench.rng, child)  # started and subscribed
            for _ in range(count):
                for (env, watcher, child), times in zip(pairs, results, strict=True):
                    time.sleep(bench.rng.uniform(0, NOTIFY_GAP))
                    times.append(_sample(client, watcher, env, bench.rng, child))
    finally:
        for watcher in watchers:
            watcher.close()
        client.close()
    return results


def _course_polling(bench: Bench, function: object, runtimes: int, rounds: int) -> list[float]:
    """Several course-style runtimes side by side, so a few minutes give enough samples."""
    latencies: list[float] = []
    failures: list[BaseException] = []
    client = bench.client()
    enable_key_events(client)
    client.close()

    def one(index: int, seed: int) -> None:
        rng = random.Random(seed)
        env = {
            **_settings(bench, f"poll{index}", function),
            "TRIGGER": "poll",
            "INTERVAL": str(COURSE_INTERVAL),
            "INVOKE_ON": "interval",
        }
        client = bench.client()
        watcher = KeyWatcher(client, env["REDIS_OUTPUT_KEY"])
        log = bench.workdir / f"latency-poll{index}.log"
        try:
            with Child(runtime_argv(), env, log) as child:
                _sample(client, watcher, env, rng, child)  # now just after a tick
                for _ in range(rounds):
                    # A uniformly random phase within the polling interval.
                    time.sleep(rng.uniform(0, COURSE_INTERVAL))
                    latencies.append(_sample(client, watcher, env, rng, child))
        except BaseException as exc:
            failures.append(exc)
        finally:
            watcher.close()
            client.close()

    threads = [
        threading.Thread(target=one, args=(index, bench.rng.getrandbits(32)))
        for index in range(runtimes)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    return latencies


def _sample(
    client: redis.Redis,
    watcher: KeyWatcher,
    env: Mapping[str, str],
    rng: random.Random,
    child: Child,
) -> float:
    """Write one input; seconds until the output carrying its timestamp is written."""
    value = now_snapshot(rng)
    raw = json.dumps(value)
    started = time.perf_counter()
    client.set(env["REDIS_INPUT_KEY"], raw)
    while True:
        try:
            seen = watcher.wait(timeout=3 * COURSE_INTERVAL + 10)
        except TimeoutError:
            child.check()
            raise
        output = client.get(env["REDIS_OUTPUT_KEY"])
        # The function copies the input's timestamp: it tells which input an output answers.
        if output is not None and json.loads(output).get("timestamp") == value["timestamp"]:
            return seen - started
