"""loop.py: the Runner's step, on fakeredis, driven one step at a time."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from serverless_runtime.loader import FunctionSource, load_file
from serverless_runtime.loop import Runner
from serverless_runtime.store import Store
from serverless_runtime.telemetry import Telemetry
from serverless_runtime.triggers import PollWaiter

COUNTER = """
def handler(input, context):
    context.env["calls"] = context.env.get("calls", 0) + 1
    if input.get("fail"):
        raise RuntimeError("asked to fail")
    return {"calls": context.env["calls"], "n": input.get("n")}
"""


@pytest.fixture
def runner(client, settings, tmp_path: Path):
    def make(**env: str) -> Runner:
        function = tmp_path / "usermodule.py"
        function.write_text(COUNTER)
        config = settings(FUNCTION_PATH=str(function), LEASE_KEY="", **env)
        stop = threading.Event()
        return Runner(
            config,
            Store(client, config, None, "pod"),
            FunctionSource(function, load_file),
            lambda: PollWaiter(stop),
            stop,
            Telemetry(stale_after=10),
        )

    return make


def output(client) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(client.get("out") or "{}")
    return value


def test_runner_calls_once_per_changed_input(runner, client) -> None:
    step = runner().step
    client.set("metrics", json.dumps({"n": 1}))
    step()
    step()  # same input: no call
    assert output(client) == {"calls": 1, "n": 1}
    client.set("metrics", json.dumps({"n": 2}))
    step()
    assert output(client) == {"calls": 2, "n": 2}


def test_runner_interval_policy_calls_every_step(runner, client) -> None:
    step = runner(INVOKE_ON="interval").step
    client.set("metrics", json.dumps({"n": 1}))
    for _ in range(3):
        step()
    assert output(client)["calls"] == 3


def test_runner_failed_call_is_recorded_and_rolled_back(runner, client) -> None:
    run = runner()
    client.set("metrics", json.dumps({"n": 1}))
    run.step()
    client.set("metrics", json.dumps({"fail": True}))
    run.step()
    run.step()  # the failed input is not retried
    error = json.loads(client.get("out:error"))
    assert (error["kind"], error["message"]) == (
        "handler-error",
        "handler raised RuntimeError: asked to fail",
    )
    assert output(client) == {"calls": 1, "n": 1}, "the last good output stays"
    assert run.context.env == {"calls": 1}, "the failed call's change is undone"
    assert run.telemetry.outcomes == {"success": 1, "handler-error": 1}


def test_runner_unusable_input_is_recorded_once(runner, client) -> None:
    run = runner()
    client.hset("metrics", "n", 1)
    run.step()
    run.step()
    assert json.loads(client.get("out:error"))["kind"] == "invalid-input"
    assert run.telemetry.outcomes == {"invalid-input": 1}
