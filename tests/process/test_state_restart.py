"""State survives restarts: the window is kept and an input is not processed twice."""

from __future__ import annotations

import json
import signal
from functools import partial
from pathlib import Path

import pytest

from tests.process.functions import counter
from tests.support.processes import RUNTIME, Process, runtime_env, wait_for
from tests.support.state import committed_env, head

FUNCTIONS = Path(__file__).parent / "functions"
pytestmark = pytest.mark.slow


def run_counter(valkey, tmp_path: Path, name: str, **extra: str) -> Process:
    env = runtime_env(
        valkey.port, "out", FUNCTION_PATH=str(FUNCTIONS / "counter.py"), INTERVAL="0.05", **extra
    )
    return Process([RUNTIME], env, tmp_path / f"{name}.log")


def has_value(client, value: object) -> bool:
    return bool(json.loads(client.get("out") or "{}").get("value") == value)


def calls(client) -> int | None:
    raw = client.get("out")
    return None if raw is None else json.loads(raw)["calls"]


def test_restart_restores_state_and_skips_processed_input(valkey, redis_client, tmp_path) -> None:
    redis_client.set("metrics", json.dumps({"value": 1}))
    first = run_counter(valkey, tmp_path, "first")
    try:
        wait_for(lambda: calls(redis_client) == 1, what="first call")
        redis_client.set("metrics", json.dumps({"value": 2}))
        wait_for(lambda: calls(redis_client) == 2, what="second call")
        first.signal(signal.SIGTERM)
        assert first.wait() == 0
    finally:
        first.close()
    # SIGTERM writes a last snapshot: it alone holds the state, with nothing left to replay.
    snapshot = json.loads(redis_client.get("out:state"))
    assert (snapshot["seq"], snapshot["env"]) == (2, {"calls": 2})
    assert redis_client.xlen("out:state:journal") == 0

    second = run_counter(valkey, tmp_path, "second")
    try:
        wait_for(lambda: "restored function state" in second.output(), what="restore")
        redis_client.set("metrics", json.dumps({"value": 2}))  # rewritten, same content
        redis_client.set("metrics", json.dumps({"value": 3}))
        wait_for(lambda: calls(redis_client) == 3, what="third call, counted from the state")
        assert redis_client.xlen("out:history") == 3
    finally:
        second.close()


def test_commit_writes_output_history_state_and_digest_together(
    valkey, redis_client, tmp_path
) -> None:
    redis_client.set("metrics", json.dumps({"value": "x"}))
    proc = run_counter(valkey, tmp_path, "one", HISTORY_LENGTH="5", TRIGGER="notify")
    try:
        # MAXLEN ~ trims whole stream nodes (100 entries each), so write a few nodes' worth.
        for n in range(250):
            redis_client.set("metrics", json.dumps({"value": n}))
            wait_for(partial(has_value, redis_client, n), what=f"output {n}")
        entries = redis_client.xrange("out:history")
        assert json.loads(entries[-1][1]["output"]) == json.loads(redis_client.get("out"))
        assert 5 <= len(entries) < 250  # trimmed to about HISTORY_LENGTH
        assert redis_client.get("out:input-digest")
    finally:
        proc.close()


def test_empty_result_commits_state_but_keeps_output(valkey, redis_client, tmp_path) -> None:
    redis_client.set("metrics", json.dumps({"value": "shown"}))
    proc = run_counter(valkey, tmp_path, "one")
    try:
        wait_for(lambda: calls(redis_client) == 1)
        redis_client.set("metrics", json.dumps({"fail": "empty"}))
        wait_for(lambda: head(redis_client, "out:state") == 2, what="second commit")
        assert committed_env(redis_client, "out:state", counter.handler) == {"calls": 2}
        assert json.loads(redis_client.get("out"))["value"] == "shown"  # falsy result not written
    finally:
        proc.close()


def test_disabled_keys_are_not_written(valkey, redis_client, tmp_path) -> None:
    redis_client.set("metrics", json.dumps({"value": 1}))
    proc = run_counter(
        valkey, tmp_path, "one", STATE_KEY="", HISTORY_KEY="", ERROR_KEY="", LEASE_KEY=""
    )
    try:
        wait_for(lambda: calls(redis_client) == 1)
        redis_client.set("metrics", "not json")
        wait_for(lambda: "invalid-input" in proc.output())
        # The in-flight mark has no setting: it is what keeps a deadly input from crash-looping.
        assert sorted(redis_client.keys("out*")) == ["out", "out:in-flight", "out:input-digest"]
    finally:
        proc.close()
