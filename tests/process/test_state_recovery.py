"""A damaged snapshot or journal, or a state another function version made: reported, never a loop.

The documented fallbacks: an unreadable snapshot → an empty `context.env` plus the journal after it;
an unusable journal entry → reported and left out; a state the running function version fails on →
a handler error, the state kept; STATE_RESET → an empty `context.env`, once per token.
"""

from __future__ import annotations

import json
import signal
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import RUNTIME, Process, runtime_env, wait_for

FUNCTIONS = Path(__file__).parent / "functions"
pytestmark = pytest.mark.slow


def start_counter(valkey, tmp_path: Path, name: str = "counter") -> Process:
    env = runtime_env(
        valkey.port, "out", FUNCTION_PATH=str(FUNCTIONS / "counter.py"), INTERVAL="0.1"
    )
    return Process([RUNTIME], env, tmp_path / f"{name}.log")


def snapshot(seq: int, env: object, function: str = "") -> str:
    document = {"format": 2, "seq": seq, "function": function, "at": "2026-12-01T10:00:00"}
    return json.dumps({**document, "env": env})


def output(client) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(client.get("out") or "{}")
    return value


def has_value(client, value: int) -> bool:
    return bool(output(client).get("value") == value)


def last_error(client) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(client.get("out:error") or "{}")
    return value


def test_unreadable_snapshot_falls_back_to_empty_state_plus_journal(
    valkey, redis_client, tmp_path
) -> None:
    redis_client.set("out:state", "{not json")
    redis_client.xadd("out:state:journal", {"input": json.dumps({"value": 1}), "at": ""}, id="1-0")
    redis_client.set("out:state:seq", 1)
    redis_client.set("metrics", json.dumps({"value": 2}))
    proc = start_counter(valkey, tmp_path)
    try:
        wait_for(lambda: output(redis_client).get("value") == 2, what="an output")
        # Empty state, the journal entry replayed (1 call), then this call: 2.
        assert output(redis_client)["calls"] == 2
        assert last_error(redis_client)["kind"] == "invalid-state"
        assert "'out:state'" in last_error(redis_client)["message"]
        assert int(redis_client.get("out:state:seq")) == 2
        assert proc.alive
    finally:
        proc.close()


@pytest.mark.parametrize(
    "document",
    [json.dumps([1, 2]), json.dumps({"format": 2, "seq": "x", "env": {}}), snapshot(3, [1])],
    ids=["array", "bad-seq", "env-not-object"],
)
def test_snapshot_of_the_wrong_shape_is_reported(valkey, redis_client, tmp_path, document) -> None:
    redis_client.set("out:state", document)
    redis_client.set("metrics", json.dumps({"value": 1}))
    proc = start_counter(valkey, tmp_path)
    try:
        wait_for(lambda: output(redis_client).get("value") == 1, what="an output")
        assert output(redis_client)["calls"] == 1
        assert last_error(redis_client)["kind"] == "invalid-state"
        assert proc.alive
    finally:
        proc.close()


def test_unusable_journal_entry_is_reported_and_left_out(valkey, redis_client, tmp_path) -> None:
    redis_client.set("out:state", snapshot(0, {"calls": 10}))
    redis_client.xadd("out:state:journal", {"input": "not json", "at": ""}, id="1-0")
    redis_client.xadd("out:state:journal", {"at": ""}, id="2-0")  # no input at all
    redis_client.xadd("out:state:journal", {"input": json.dumps({"value": 0}), "at": ""}, id="3-0")
    redis_client.set("out:state:seq", 3)
    redis_client.set("metrics", json.dumps({"value": 1}))
    proc = start_counter(valkey, tmp_path)
    try:
        wait_for(lambda: output(redis_client).get("value") == 1, what="an output")
        assert output(redis_client)["calls"] == 12  # 10, + entry 3, + this call
        log = proc.output()
        assert "replaying journal entry 1 failed" in log
        assert "journal entry 2 has no input" in log
        assert last_error(redis_client)["kind"] == "replay-error"
        assert proc.alive
    finally:
        proc.close()


def test_state_an_incompatible_function_version_fails_on_is_kept(
    valkey, redis_client, tmp_path
) -> None:
    # Another version kept a string where this one counts: `calls + 1` raises TypeError.
    document = snapshot(5, {"calls": "five"}, function="an-older-version")
    redis_client.set("out:state", document)
    redis_client.set("out:state:seq", 5)
    redis_client.set("metrics", json.dumps({"value": 1}))
    proc = start_counter(valkey, tmp_path, "first")
    try:
        wait_for(lambda: last_error(redis_client).get("kind"), what="the failure")
        error = last_error(redis_client)
        assert error["kind"] == "handler-error", "a failing handler is never a state verdict"
        assert redis_client.get("out") is None, "nothing committed"
        proc.signal(signal.SIGTERM)
        assert proc.wait() == 0
    finally:
        proc.close()
    assert redis_client.get("out:state") == document, "the committed state is kept"


def test_state_reset_starts_from_an_empty_state_once(valkey, redis_client, tmp_path) -> None:
    redis_client.set("out:state", snapshot(5, {"calls": "five"}))
    redis_client.xadd("out:state:journal", {"input": json.dumps({"value": 0}), "at": ""}, id="6-0")
    redis_client.set("out:state:seq", 6)
    redis_client.set("metrics", json.dumps({"value": 1}))
    env = runtime_env(
        valkey.port, "out", FUNCTION_PATH=str(FUNCTIONS / "counter.py"), INTERVAL="0.1",
        STATE_RESET="2026-12-06",
    )  # fmt: skip
    proc = Process([RUNTIME], env, tmp_path / "reset.log")
    try:
        wait_for(lambda: output(redis_client).get("value") == 1, what="an output")
        assert output(redis_client)["calls"] == 1, "from an empty context.env"
        assert "STATE_RESET='2026-12-06' differs" in proc.output()
        assert json.loads(redis_client.get("out:state"))["reset"] == "2026-12-06"
        proc.signal(signal.SIGTERM)
        assert proc.wait() == 0
    finally:
        proc.close()
    again = Process([RUNTIME], env, tmp_path / "again.log")  # the same token: no reset again
    try:
        redis_client.set("metrics", json.dumps({"value": 2}))
        wait_for(lambda: output(redis_client).get("value") == 2, what="the next output")
        assert output(redis_client)["calls"] == 2
    finally:
        again.close()


def test_failure_of_the_same_function_version_keeps_the_state(
    valkey, redis_client, tmp_path
) -> None:
    redis_client.set("metrics", json.dumps({"value": 1}))
    proc = start_counter(valkey, tmp_path)
    try:
        wait_for(lambda: output(redis_client).get("calls") == 1, what="first call")
        redis_client.set("metrics", json.dumps({"fail": "raise"}))
        wait_for(lambda: last_error(redis_client).get("kind") == "handler-error", what="failure")
        redis_client.set("metrics", json.dumps({"value": 2}))
        wait_for(lambda: output(redis_client).get("value") == 2, what="third input")
        assert output(redis_client)["calls"] == 2, "the failed call was rolled back, not reset"
    finally:
        proc.close()


def test_commits_missing_from_the_journal_are_reported(valkey, redis_client, tmp_path) -> None:
    redis_client.set("out:state", snapshot(2, {"calls": 2}))
    redis_client.xadd("out:state:journal", {"input": json.dumps({"value": 0}), "at": ""}, id="3-0")
    redis_client.set("out:state:seq", 5)  # commits 4 and 5 were lost (e.g. the journal deleted)
    redis_client.set("metrics", json.dumps({"value": 1}))
    proc = start_counter(valkey, tmp_path)
    try:
        wait_for(lambda: output(redis_client).get("value") == 1, what="an output")
        assert output(redis_client)["calls"] == 4  # 2, + commit 3, + this call
        assert "commits 4 to 5 missing from the journal" in last_error(redis_client)["message"]
        assert int(redis_client.get("out:state:seq")) == 6
    finally:
        proc.close()


def test_state_survives_redis_losing_its_data(valkey, redis_client, tmp_path) -> None:
    redis_client.set("metrics", json.dumps({"value": 1}))
    proc = start_counter(valkey, tmp_path)
    try:
        for value in (1, 2, 3):
            redis_client.set("metrics", json.dumps({"value": value}))
            wait_for(partial(has_value, redis_client, value), what=f"input {value}")
        redis_client.flushall()  # as a Redis restarted without persistence
        redis_client.set("metrics", json.dumps({"value": 4}))
        wait_for(lambda: output(redis_client).get("value") == 4, what="input 4")
        assert output(redis_client)["calls"] == 4, "the leader's state is the newest copy: kept"
        # ... written back as soon as the loss was seen (commit 3), so that another replica
        # would rebuild it; input 4 is journaled after it.
        snapshot = json.loads(redis_client.get("out:state"))
        assert (snapshot["seq"], snapshot["env"]) == (3, {"calls": 3})
        assert int(redis_client.get("out:state:seq")) == 4
        assert "this state was written back as commit 3" in proc.output()
    finally:
        proc.close()
