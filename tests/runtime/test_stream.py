"""TRIGGER=stream: replicas share a stream through a consumer group; nothing is lost."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from tests.support.processes import RUNTIME, Process, runtime_env, wait_for

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
        a.kill()  # mid-stream: the entry it was working on stays pending
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
