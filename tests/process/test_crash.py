"""SIGKILL at random points while a recording is replayed: outputs equal an uninterrupted run."""

from __future__ import annotations

import json
import random
import time
from functools import partial
from pathlib import Path

import pytest
from serverless_runtime.function.context import Context
from serverless_runtime.function.loader import load_file

from tests.support.processes import RUNTIME, Process, runtime_env, wait_for

REPO = Path(__file__).resolve().parents[2]
FUNCTION = REPO / "apps" / "functions" / "resource-monitor" / "usermodule.py"
RECORDING = REPO / "tests" / "fixtures" / "metrics-5s.jsonl"
pytestmark = pytest.mark.slow


def reference_outputs(lines: list[str]) -> list[dict[str, object]]:
    """The uninterrupted run: one process, state kept as the runtime keeps it (JSON)."""
    handler = load_file(FUNCTION).handler
    context = Context("localhost", 6379, "metrics", "out", "")
    outputs = []
    for line in lines:
        outputs.append(handler(json.loads(line), context))
        context.env = json.loads(json.dumps(context.env))
    return outputs


def output_for(client, stamp: str) -> str | None:
    raw = client.get("out")
    return raw if raw is not None and stamp in raw else None


def assert_same(actual: dict[str, object], expected: dict[str, object]) -> None:
    assert actual.keys() == expected.keys()
    for key, value in expected.items():
        if isinstance(value, float):
            assert actual[key] == pytest.approx(value, rel=1e-9, abs=1e-9), key
        else:
            assert actual[key] == value, key


def test_sigkill_at_random_points_loses_and_doubles_nothing(
    valkey, redis_client, tmp_path: Path
) -> None:
    lines = RECORDING.read_text().splitlines()
    expected = reference_outputs(lines)
    rng = random.Random(20261127)
    kill_points = set(rng.sample(range(1, len(lines)), 8))
    env = runtime_env(
        valkey.port, "out", FUNCTION_PATH=str(FUNCTION), TRIGGER="notify", INTERVAL="0.5",
        LEASE_TTL="0.6",
    )  # fmt: skip
    runs = 0

    def start() -> Process:
        nonlocal runs
        runs += 1
        return Process([RUNTIME], env, tmp_path / f"run{runs}.log")

    proc = start()
    try:
        for i, line in enumerate(lines):
            stamp = json.loads(line)["timestamp"]
            if i in kill_points:
                if rng.random() < 0.5:
                    proc.kill()  # while idle; this input is written while the runtime is down
                    redis_client.set("metrics", line)
                else:
                    redis_client.set("metrics", line)
                    time.sleep(rng.uniform(0, 0.02))  # somewhere in read, call or commit
                    proc.kill()
                proc.close()
                proc = start()
            else:
                redis_client.set("metrics", line)
            raw = wait_for(
                partial(output_for, redis_client, stamp), timeout=30, what=f"output for input {i}"
            )
            assert_same(json.loads(raw), expected[i])
        assert runs == len(kill_points) + 1
    finally:
        proc.close()
