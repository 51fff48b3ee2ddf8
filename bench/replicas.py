"""COMMIT_REPLICAS=1: the cost of waiting for a replica after each commit (WAIT, pipelined with the
commit script), against the same runtime step without it, on the same master with one replica
attached, input by input interleaved."""

from __future__ import annotations

import json
import time

from serverless_runtime.config import Settings

from bench import stats
from bench.env import TRIVIAL_FILE, Bench
from bench.inprocess import Runtime
from bench.inputs import now_snapshot
from bench.report import Row, seconds
from tests.support.sentinel import replica_of


def run(bench: Bench) -> list[Row]:
    """Per-call time of a step with COMMIT_REPLICAS=1 vs 0, a replica started for the run."""
    function = bench.function_copy(TRIVIAL_FILE)
    calls = bench.size(2000, 40)
    replica = replica_of(bench.valkey, bench.workdir / "replica")
    replica.start()
    try:
        _wait_for_link(bench)
        waiting = Runtime(_settings(bench, function, "wait", replicas=1))
        plain = Runtime(_settings(bench, function, "plain", replicas=0))
        waited, baseline = _interleave(bench, waiting, plain, calls)
    finally:
        replica.stop()
    ratio = stats.median(waited) / stats.median(baseline)
    return [
        Row(
            "per-call time, COMMIT_REPLICAS=1 (one local replica)",
            f"{len(waited)} each",
            f"{seconds(stats.median(waited))} (p99 {seconds(stats.p99(waited))})",
            f"{seconds(stats.median(baseline))} (p99 {seconds(stats.p99(baseline))})",
            ratio,
            "— (the price of WAIT)",
            None,
        )
    ]


def _settings(bench: Bench, function: object, name: str, replicas: int) -> Settings:
    return Settings.from_env(
        {
            "REDIS_URL": bench.valkey.url,
            "REDIS_INPUT_KEY": f"replicas:{name}:in",
            "REDIS_OUTPUT_KEY": f"replicas:{name}:out",
            "FUNCTION_PATH": str(function),
            "TRIGGER": "poll",
            "HTTP_PORT": "0",
            "LOG_LEVEL": "WARNING",
            "COMMIT_REPLICAS": str(replicas),
        }
    )


def _wait_for_link(bench: Bench) -> None:
    client = bench.client()
    try:
        deadline = time.monotonic() + 30
        # Connected is not enough: a replica still loading the master's dump acknowledges nothing.
        while (client.info("replication").get("slave0") or {}).get("state") != "online":
            if time.monotonic() > deadline:
                raise RuntimeError("the replica did not connect")
            time.sleep(0.05)
    finally:
        client.close()


def _interleave(
    bench: Bench, waiting: Runtime, plain: Runtime, calls: int
) -> tuple[list[float], list[float]]:
    writer = bench.client()
    times: dict[int, list[float]] = {id(waiting): [], id(plain): []}
    try:
        for runtime in (waiting, plain):
            runtime.step()  # restore state, load the function
        for sequence in range(calls):
            value = now_snapshot(bench.rng)
            value["n"] = sequence
            for runtime in (waiting, plain):
                writer.set(runtime.settings.keys.input, json.dumps(value))
                started = time.perf_counter()
                runtime.step()
                times[id(runtime)].append(time.perf_counter() - started)
        for runtime in (waiting, plain):
            runtime.check(calls)
    finally:
        waiting.close()
        plain.close()
        writer.close()
    return times[id(waiting)], times[id(plain)]
