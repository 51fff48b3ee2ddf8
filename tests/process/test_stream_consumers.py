"""TRIGGER=stream: replicas share a stream through a consumer group; nothing is lost."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.process.functions import tally
from tests.support.processes import RUNTIME, Process, runtime_env, wait_for
from tests.support.state import committed_env

FUNCTIONS = Path(__file__).parent / "functions"
pytestmark = pytest.mark.slow
ENTRIES = 120


def consumer(valkey, tmp_path: Path, name: str) -> Process:
    env = runtime_env(
        valkey.port, "out", FUNCTION_PATH=str(FUNCTIONS / "recorder.py"), TRIGGER="stream",
        STREAM_CONSUMER=name, STREAM_CLAIM_IDLE="1", INTERVAL="0.5",
    )  # fmt: skip
    return Process([RUNTIME], env, tmp_path / f"{name}.log")


def processed(client) -> Counter[int]:
    return Counter(json.loads(item)[1] for item in client.lrange("calls", 0, -1))


def pending_of(client, name: str) -> list[Any]:
    """The entries consumer `name` has read and not acknowledged."""
    return list(client.xpending_range("metrics", "serverless-runtime", "-", "+", 10, name))


def test_stream_two_consumers_share_entries_and_survive_a_crash(
    valkey, redis_client, tmp_path: Path
) -> None:
    for n in range(ENTRIES):
        redis_client.xadd("metrics", {"data": json.dumps({"n": n, "sleep": 0.02})})
    a = consumer(valkey, tmp_path, "a")
    b = consumer(valkey, tmp_path, "b")
    try:
        wait_for(lambda: sum(processed(redis_client).values()) >= ENTRIES // 3, what="progress")
        pids = {json.loads(item)[0] for item in redis_client.lrange("calls", 0, -1)}
        assert pids == {a.proc.pid, b.proc.pid}, "both consumers took entries"
        # Mid-stream: the entry it is working on stays pending. Between two entries (a read and
        # a commit away) it would leave nothing to claim, so the kill waits for one in flight.
        wait_for(lambda: pending_of(redis_client, "a"), what="consumer a in the middle of an entry")
        a.kill()
        left = pending_of(redis_client, "a")  # a is dead: what it left pending stays as it is
        wait_for(
            lambda: set(processed(redis_client)) == set(range(ENTRIES)),
            timeout=60,
            what="every entry processed",
        )
        wait_for(lambda: redis_client.xpending("metrics", "serverless-runtime")["pending"] == 0)
        counts = processed(redis_client)
        duplicates = [n for n, count in counts.items() if count > 1]
        # At-least-once: only what the killed consumer had in flight may run twice.
        assert len(duplicates) <= 1
        if left:  # almost always: the entry read when a was killed goes to b by a claim
            assert "claimed" in b.output()
    finally:
        a.close()
        b.close()


def test_stream_bad_entry_is_recorded_and_acknowledged(valkey, redis_client, tmp_path) -> None:
    redis_client.xadd("metrics", {"data": "not json"})
    redis_client.xadd("metrics", {"data": json.dumps({"n": 1})})
    proc = consumer(valkey, tmp_path, "a")
    try:
        wait_for(lambda: processed(redis_client) == Counter({1: 1}), what="the good entry")
        assert json.loads(redis_client.get("out:error"))["kind"] == "invalid-input"
        wait_for(lambda: redis_client.xpending("metrics", "serverless-runtime")["pending"] == 0)
    finally:
        proc.close()


def test_stream_claimed_entry_joins_the_claiming_consumers_state(
    valkey, redis_client, tmp_path: Path
) -> None:
    def start(name: str) -> Process:
        env = runtime_env(
            valkey.port, "out", FUNCTION_PATH=str(FUNCTIONS / "tally.py"), TRIGGER="stream",
            STREAM_CONSUMER=name, STREAM_CLAIM_IDLE="1", INTERVAL="0.2",
        )  # fmt: skip
        return Process([RUNTIME], env, tmp_path / f"{name}.log")

    def latest() -> dict[str, Any]:
        value: dict[str, Any] = json.loads(redis_client.get("out") or "{}")
        return value

    for n in (1, 2):
        redis_client.xadd("metrics", {"data": json.dumps({"n": n})})
    a = start("a")
    try:
        wait_for(lambda: latest().get("seen") == [1, 2], what="a to process 1 and 2")
        hang = {"n": 3, "sleep_once": str(tmp_path / "hung")}
        redis_client.xadd("metrics", {"data": json.dumps(hang)})
        wait_for((tmp_path / "hung").exists, what="a to hang on entry 3")
        assert redis_client.xpending("metrics", "serverless-runtime")["pending"] == 1
        a.kill()  # entry 3 stays pending for a
    finally:
        a.close()
    b = start("b")
    try:
        # b claims entry 3 and applies it to its own state, which has never seen 1 or 2.
        wait_for(lambda: latest().get("n") == 3, what="b to claim entry 3")
        assert latest()["seen"] == [3]
        assert "claimed 1 entries" in b.output()
    finally:
        b.close()
    # Each consumer's committed state keeps exactly what that consumer committed.
    handler = tally.handler
    assert committed_env(redis_client, "out:state:a", handler) == {"seen": [1, 2]}
    assert committed_env(redis_client, "out:state:b", handler) == {"seen": [3]}
