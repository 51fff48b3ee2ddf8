"""A failing function version is harmless: push a bug, revert it, the function continues.

The bad version below fails on the state the good one made (it expects a string where the good one
counts) but would work on an empty `context.env`: nothing about the committed state may change
because it failed, whether it arrives by hot reload, by a rolling update or on a fresh pod that has
a journal to replay.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.process.test_reload import ConfigMapDir
from tests.support.http import get
from tests.support.processes import RUNTIME, Process, runtime_env, wait_for
from tests.support.valkey import free_port

pytestmark = pytest.mark.slow

GOOD = """
def handler(input, context):
    context.env["n"] = context.env.get("n", 0) + 1
    return {"count": context.env["n"], "i": input["i"]}
"""
BAD = """
def handler(input, context):
    context.env["n"] = context.env.get("n", "") + "x"  # TypeError on the good version's state
    return {"bad": context.env["n"], "i": input["i"]}
"""


def output(client: Any) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(client.get("out") or "{}")
    return value


def error_kind(client: Any) -> str | None:
    record = json.loads(client.get("out:error") or "{}")
    kind: str | None = record.get("kind")
    return kind


def feed(client: Any, i: int) -> None:
    """Write input i and wait for its output."""
    client.set("metrics", json.dumps({"i": i}))
    wait_for(lambda: output(client).get("i") == i, what=f"the output of input {i}")


def fail(client: Any, i: int) -> None:
    """Write input i, which the bad version fails on, and wait for what the runtime does."""
    client.delete("out:error")
    client.set("metrics", json.dumps({"i": i}))
    wait_for(lambda: error_kind(client) or output(client).get("i") == i, what=f"input {i}")
    assert error_kind(client) == "handler-error", "a handler error, never a state verdict"
    assert output(client).get("i") != i, "nothing committed"


def start(valkey: Any, path: Path, log: Path, **extra: str) -> Process:
    env = runtime_env(valkey.port, "out", FUNCTION_PATH=str(path), INTERVAL="0.2", **extra)
    return Process([RUNTIME], env, log)


def test_hot_reload_to_a_failing_version_and_back_keeps_the_state(
    valkey, redis_client, tmp_path: Path
) -> None:
    mount = ConfigMapDir(tmp_path / "function")
    mount.publish({"usermodule.py": GOOD}, mtime=1_700_000_000)
    proc = start(valkey, mount.root / "usermodule.py", tmp_path / "runtime.log")
    try:
        for i in (1, 2, 3):
            feed(redis_client, i)
        assert output(redis_client)["count"] == 3
        mount.publish({"usermodule.py": BAD}, mtime=1_700_000_100)
        for i in (4, 5, 6):
            fail(redis_client, i)
        mount.publish({"usermodule.py": GOOD}, mtime=1_700_000_200)
        feed(redis_client, 7)
        assert output(redis_client)["count"] == 4, "continues from the last committed state"
        assert "empty context.env" not in proc.output()
        assert "replay-error" not in proc.output()
    finally:
        proc.close()


def test_rolling_update_to_a_failing_version_and_back_keeps_the_state(
    valkey, redis_client, tmp_path: Path
) -> None:
    (tmp_path / "good.py").write_text(GOOD)
    (tmp_path / "bad.py").write_text(BAD)
    old = start(valkey, tmp_path / "good.py", tmp_path / "old.log")
    new = revert = None
    try:
        for i in (1, 2, 3):
            feed(redis_client, i)
        new = start(valkey, tmp_path / "bad.py", tmp_path / "new.log")  # the new pod, surging
        wait_for(lambda: "watching" in new.output(), what="the new pod to start")
        old.signal(signal.SIGTERM)
        assert old.wait() == 0
        wait_for(lambda: "loaded function" in new.output(), what="the new pod to lead")
        for i in (4, 5):
            fail(redis_client, i)
        revert = start(valkey, tmp_path / "good.py", tmp_path / "revert.log")
        wait_for(lambda: "watching" in revert.output(), what="the reverted pod to start")
        new.signal(signal.SIGTERM)
        assert new.wait() == 0
        # Input 5, never committed, is still the input: the reverted version processes it.
        wait_for(lambda: output(redis_client).get("i") == 5, what="input 5 after the revert")
        assert output(redis_client)["count"] == 4, "continues from the last committed state"
        feed(redis_client, 6)
        assert output(redis_client)["count"] == 5
    finally:
        for proc in (old, new, revert):
            if proc is not None:
                proc.close()


def test_failing_version_that_cannot_replay_the_journal_waits_for_a_revert(
    valkey, redis_client, tmp_path: Path
) -> None:
    (tmp_path / "good.py").write_text(GOOD)
    first = start(valkey, tmp_path / "good.py", tmp_path / "first.log")
    try:
        for i in (1, 2, 3):
            feed(redis_client, i)
    finally:
        first.close()  # SIGKILL, a node loss: no last snapshot, the journal holds the last commits
    assert redis_client.xlen("out:state:journal") > 0
    committed = (redis_client.get("out:state"), redis_client.xrange("out:state:journal"))
    mount = ConfigMapDir(tmp_path / "function")
    mount.publish({"usermodule.py": BAD}, mtime=1_700_000_000)
    port = free_port()
    proc = start(valkey, mount.root / "usermodule.py", tmp_path / "bad.log", HTTP_PORT=str(port))
    try:
        redis_client.set("metrics", json.dumps({"i": 4}))
        wait_for(lambda: error_kind(redis_client) == "replay-error", what="the replay error")
        record = json.loads(redis_client.get("out:error"))
        assert "commit" in record["message"] and "version" in record["message"]
        # The traceback is the function's: its line, none of the runtime's replay frames.
        assert f'File "{mount.root / "usermodule.py"}", line ' in record["traceback"]
        assert record["traceback"].rstrip().splitlines()[-1].startswith("TypeError: ")
        assert "serverless_runtime/" not in record["traceback"]
        wait_for(lambda: get(port, "/readyz")[0] == 503, what="not ready")
        assert get(port, "/healthz")[0] == 200
        assert output(redis_client)["i"] == 3, "input 4 is not processed on a wrong state"
        assert proc.alive
        now = (redis_client.get("out:state"), redis_client.xrange("out:state:journal"))
        assert now == committed, "the committed state is untouched"
        mount.publish({"usermodule.py": GOOD}, mtime=1_700_000_100)
        wait_for(lambda: output(redis_client).get("i") == 4, what="input 4 after the revert")
        assert output(redis_client)["count"] == 4
        wait_for(lambda: get(port, "/readyz")[0] == 200, what="ready again")
    finally:
        proc.close()


def test_replica_that_cannot_replay_lets_another_version_lead(
    valkey, redis_client, tmp_path: Path
) -> None:
    (tmp_path / "good.py").write_text(GOOD)
    (tmp_path / "bad.py").write_text(BAD)
    first = start(valkey, tmp_path / "good.py", tmp_path / "first.log")
    try:
        for i in (1, 2, 3):
            feed(redis_client, i)
    finally:
        first.close()  # SIGKILL: the journal holds the last commits
    bad = start(valkey, tmp_path / "bad.py", tmp_path / "bad.log")
    good = None
    try:
        redis_client.set("metrics", json.dumps({"i": 4}))
        wait_for(lambda: error_kind(redis_client) == "replay-error", what="the replay error")
        good = start(valkey, tmp_path / "good.py", tmp_path / "good.log")  # e.g. the other replica
        wait_for(lambda: output(redis_client).get("i") == 4, what="input 4 by the good replica")
        assert output(redis_client)["count"] == 4
        assert bad.alive
    finally:
        bad.close()
        if good is not None:
            good.close()
