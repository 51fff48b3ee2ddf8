"""context.env comes back as the function left it after a restart: int keys, tuples, sets."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest
from serverless_runtime.state import tagged

from tests.support.processes import RUNTIME, Process, runtime_env, wait_for

FUNCTIONS = Path(__file__).parent / "functions"
pytestmark = pytest.mark.slow


def output(client: Any) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(client.get("out") or "{}")
    return value


def start(valkey: Any, tmp_path: Path, name: str) -> Process:
    env = runtime_env(
        valkey.port, "out", FUNCTION_PATH=str(FUNCTIONS / "course_buckets.py"), INTERVAL="0.1"
    )
    return Process([RUNTIME], env, tmp_path / f"{name}.log")


def feed(client: Any, i: int) -> dict[str, Any]:
    client.set("metrics", json.dumps({"i": i}))
    wait_for(lambda: output(client).get("i") == i, what=f"the output of input {i}")
    return output(client)


def test_course_function_keeps_working_after_a_kill_and_a_restart(
    valkey, redis_client, tmp_path: Path
) -> None:
    first = start(valkey, tmp_path, "first")
    try:
        for i in range(1, 6):
            feed(redis_client, i)
    finally:
        first.close()  # SIGKILL: the next process rebuilds from snapshot and journal
    second = start(valkey, tmp_path, "second")
    try:
        assert feed(redis_client, 6) == {
            "i": 6, "sizes": [1, 2, 2, 1], "seen": 6, "last_is_tuple": True,
        }  # fmt: skip
        second.signal(signal.SIGTERM)  # a last snapshot: the next process replays nothing
        assert second.wait() == 0
    finally:
        second.close()
    env = tagged.loads(json.dumps(json.loads(redis_client.get("out:state"))["env"]))
    assert env["buckets"] == {0: [4], 1: [1, 5], 2: [2, 6], 3: [3]}
    assert env["last"] == (6, None)
    third = start(valkey, tmp_path, "third")
    try:
        assert feed(redis_client, 7)["sizes"] == [1, 2, 2, 2]
        assert "KeyError" not in third.output()
    finally:
        third.close()
