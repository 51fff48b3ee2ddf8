"""loop.py: the Runner's step, on fakeredis, driven one step at a time."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from serverless_runtime.function import new_requirements
from serverless_runtime.function.loader import FunctionSource, load_file
from serverless_runtime.function.new_requirements import Requirements, RequirementsFailed
from serverless_runtime.loop import Runner
from serverless_runtime.ops.telemetry import Telemetry
from serverless_runtime.storage.store import Store
from serverless_runtime.triggers.waiters import PollWaiter

COUNTER = """
def handler(input, context):
    context.env["calls"] = context.env.get("calls", 0) + 1
    if input.get("fail"):
        raise RuntimeError("asked to fail")
    return {"calls": context.env["calls"], "n": input.get("n")}
"""


@pytest.fixture
def runner(client, settings, tmp_path: Path):
    def make(requirements: Requirements | None = None, **env: str) -> Runner:
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
            requirements,
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


def test_runner_installs_new_requerimients_once_before_loading(
    runner, client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    installs: list[Requirements] = []
    loaded_before: list[bool] = []

    def install(requirements: Requirements, stop: threading.Event) -> bool:
        installs.append(requirements)
        loaded_before.append(run.source.current is not None)
        return True

    monkeypatch.setattr(new_requirements, "install", install)
    wanted = Requirements(("numpy",), tmp_path / "installed", 60.0)
    run = runner(wanted, INVOKE_ON="interval")
    client.set("metrics", json.dumps({"n": 1}))
    for _ in range(3):
        run.step()
    assert installs == [wanted]
    assert loaded_before == [False]
    assert output(client) == {"calls": 3, "n": 1}


def test_runner_failed_requirements_are_recorded_once_and_nothing_runs(
    runner,
    client,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    attempts: list[Requirements] = []

    def install(requirements: Requirements, stop: threading.Event) -> bool:
        attempts.append(requirements)
        raise RequirementsFailed("NEW_REQUERIMENTS='nope': pip install failed (exit code 1)")

    monkeypatch.setattr(new_requirements, "install", install)
    run = runner(Requirements(("nope",), tmp_path / "installed", 60.0), INVOKE_ON="interval")
    client.set("metrics", json.dumps({"n": 1}))
    for _ in range(3):
        run.step()
    assert len(attempts) == 1  # pip is not run again on the next ticks
    recorded = [r for r in caplog.records if getattr(r, "kind", None) == "requirements-failed"]
    assert len(recorded) == 1
    error = json.loads(client.get("out:error"))
    assert (error["kind"], error["message"]) == (
        "requirements-failed",
        "NEW_REQUERIMENTS='nope': pip install failed (exit code 1)",
    )
    assert run.telemetry.load_failures == {"requirements-failed": 1}
    assert not run.telemetry.function_loaded
    assert client.get("out") is None
