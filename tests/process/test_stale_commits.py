"""A commit refused as stale is judged again a bounded number of times, with backoff."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from serverless_runtime.loop import STALE_RETRIES

from tests.support.processes import Process, runtime_env, wait_for

pytestmark = pytest.mark.slow

# Another writer moves the commit sequence during every call: each commit is refused as stale.
MOVES_THE_SEQUENCE = """
import redis

def handler(input, context):
    client = redis.Redis(host=context.host, port=context.port)
    client.incr("calls")
    client.incr(context.output_key + ":state:seq")
    client.close()
    return {"n": input.get("n")}
"""

STREAK = "commits refused as stale"


def test_refused_stale_commits_back_off_and_are_logged_once(
    valkey, redis_client, start, tmp_path: Path
) -> None:
    function = tmp_path / "usermodule.py"
    function.write_text(MOVES_THE_SEQUENCE)
    redis_client.set("metrics", json.dumps({"n": 1}))
    # One tick a minute: every call after the first is a retry of a refused commit.
    env = runtime_env(
        valkey.port, "out", FUNCTION_PATH=str(function), TRIGGER="poll", INTERVAL="60"
    )
    proc: Process = start(env)
    wait_for(lambda: "until the next tick" in proc.output(), what="the retries to stop")
    assert int(redis_client.get("calls") or 0) == 1 + STALE_RETRIES
    assert proc.output().count(STREAK) == 1, "one line for the streak, not one per refusal"
    assert redis_client.get("out") is None
    assert proc.alive


def test_a_streak_over_several_ticks_is_one_line(
    valkey, redis_client, start, tmp_path: Path
) -> None:
    function = tmp_path / "usermodule.py"
    function.write_text(MOVES_THE_SEQUENCE)
    redis_client.set("metrics", json.dumps({"n": 1}))
    env = runtime_env(valkey.port, "out", FUNCTION_PATH=str(function), TRIGGER="poll", INTERVAL="1")
    proc: Process = start(env)
    ticks = 3
    wait_for(
        lambda: int(redis_client.get("calls") or 0) >= ticks * (1 + STALE_RETRIES),
        timeout=60,
        what=f"{ticks} ticks of refused commits",
    )
    assert proc.output().count(STREAK) == 1
    assert proc.alive
