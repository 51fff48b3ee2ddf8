"""Recovery is bounded in time and never trips liveness: snapshots by replay cost, a live replay."""

from __future__ import annotations

import json
import time
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from tests.support.http import get
from tests.support.processes import RUNTIME, Process, runtime_env, wait_for
from tests.support.valkey import free_port

pytestmark = pytest.mark.slow

# About 50 ms a call, with a state far larger than an input: the byte rule alone would journal
# hundreds of inputs before writing a snapshot.
SLOW = """
import time

def handler(input, context):
    time.sleep({seconds})
    context.env.setdefault("pad", "x" * 20000)
    context.env["n"] = context.env.get("n", 0) + 1
    return {{"n": context.env["n"], "i": input["i"]}}
"""


def output(client: Any) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(client.get("out") or "{}")
    return value


def has_output(client: Any, i: int) -> bool:
    return output(client).get("i") == i


def test_snapshots_keep_the_journal_replay_under_max_replay_seconds(
    valkey, redis_client, tmp_path: Path
) -> None:
    function = tmp_path / "slow.py"
    function.write_text(SLOW.format(seconds=0.05))
    env = runtime_env(
        valkey.port, "out", FUNCTION_PATH=str(function), INTERVAL="0.1", MAX_REPLAY_SECONDS="0.3"
    )
    proc = Process([RUNTIME], env, tmp_path / "runtime.log")
    lengths = []
    try:
        for i in range(1, 25):
            redis_client.set("metrics", json.dumps({"i": i}))
            wait_for(partial(has_output, redis_client, i), what=f"input {i}")
            lengths.append(redis_client.xlen("out:state:journal"))
    finally:
        proc.close()
    # Each entry costs at least 50 ms to replay: 0.3 s is at most 6 of them.
    assert max(lengths) <= 6, f"journal lengths {lengths}"
    assert max(lengths) >= 3, "inputs are journaled between the snapshots"
    assert output(redis_client)["n"] == 24


def test_healthz_stays_200_while_a_long_journal_is_replayed(
    valkey, redis_client, tmp_path: Path
) -> None:
    function = tmp_path / "slow.py"
    function.write_text(SLOW.format(seconds=0.1))
    entries = 150  # 15 s of replay: longer than the heartbeat's 10 s
    redis_client.set("out:state", json.dumps({"format": 2, "seq": 0, "env": {}}))
    for seq in range(1, entries + 1):
        redis_client.xadd("out:state:journal", {"input": json.dumps({"i": -seq})}, id=f"{seq}-0")
    redis_client.set("out:state:seq", entries)
    redis_client.set("metrics", json.dumps({"i": 1}))
    port = free_port()
    env = runtime_env(valkey.port, "out", FUNCTION_PATH=str(function), HTTP_PORT=str(port))
    proc = Process([RUNTIME], env, tmp_path / "runtime.log")
    health, ready = set(), []
    try:
        wait_for(lambda: get(port, "/healthz")[0] == 200, what="the probes")
        deadline = time.monotonic() + 60
        while output(redis_client).get("i") != 1 and time.monotonic() < deadline:
            health.add(get(port, "/healthz")[0])
            ready.append(get(port, "/readyz"))
            time.sleep(0.5)
        assert output(redis_client) == {"n": entries + 1, "i": 1}
        assert health == {200}, "alive all along"
        assert any(status == 503 and "rebuilding the state" in body for status, body in ready)
        assert "journal entries replayed" in proc.output()  # the progress line
    finally:
        proc.close()


HANGS_ON_REPLAY = """
import time

def handler(input, context):
    while context.replaying:  # ignores every interruption
        try:
            time.sleep(0.1)
        except BaseException:
            pass
    context.env["n"] = context.env.get("n", 0) + 1
    return {"n": context.env["n"], "i": input["i"]}
"""


def test_a_replay_that_hangs_poisons_no_input(valkey, redis_client, tmp_path: Path) -> None:
    function = tmp_path / "hangs.py"
    function.write_text(HANGS_ON_REPLAY)
    redis_client.set("out:state", json.dumps({"format": 2, "seq": 0, "env": {}}))
    redis_client.xadd("out:state:journal", {"input": json.dumps({"i": 0})}, id="1-0")
    redis_client.set("out:state:seq", 1)
    redis_client.set("out:input-digest", "digest-of-input-0")
    redis_client.set("metrics", json.dumps({"i": 1}))
    env = runtime_env(
        valkey.port, "out", FUNCTION_PATH=str(function), HANDLER_TIMEOUT="0.5", INTERVAL="0.1"
    )
    proc = Process([RUNTIME], env, tmp_path / "runtime.log")
    try:
        assert proc.wait(timeout=20) == 3  # the watchdog ended it
        record = json.loads(redis_client.get("out:error"))
        assert "replaying the journal" in record["message"]
        assert redis_client.hget("out:poison", "input") is None, "no input is to blame"
        assert redis_client.hget("out:poison", "function"), "this version cannot rebuild it"
    finally:
        proc.close()
    again = Process([RUNTIME], env, tmp_path / "again.log")  # restarted: the version is refused
    try:
        wait_for(lambda: "not trying again what hung before" in again.output(), what="refusal")
        assert again.alive
        function.write_text(HANGS_ON_REPLAY.replace("while context.replaying", "while False"))
        wait_for(lambda: json.loads(redis_client.get("out") or "{}").get("i") == 1, what="out")
        assert json.loads(redis_client.get("out"))["n"] == 2, "input 0 replayed, then input 1"
    finally:
        again.close()
