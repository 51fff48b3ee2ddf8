"""No half commit: every write of the commit script forced to fail leaves nothing written, is
recorded once and is not applied again (a real Valkey, a real process).

A key the read script reads (the digest, the sequence number) in the wrong shape stops the read
itself: a Redis error, said once and ridden out with backoff, with no call made.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.support.processes import RUNTIME, Process, runtime_env, wait_for

FUNCTIONS = Path(__file__).parent / "functions"
pytestmark = pytest.mark.slow
MAX_ID = "18446744073709551615-18446744073709551615"

# Each write of the commit, its key put into a shape in which that write fails.
SHAPES: dict[str, tuple[str, Callable[[redis.Redis], object]]] = {
    "history at its last id": ("out:history", lambda c: c.xadd("out:history", {"f": 1}, id=MAX_ID)),
    "journal at its last id": (
        "out:state:journal",
        lambda c: c.xadd("out:state:journal", {"f": 1}, id=MAX_ID),
    ),
    "history a string": (
        "out:history",
        lambda c: (c.delete("out:history"), c.set("out:history", 1)),
    ),
    "output a hash": ("out", lambda c: (c.delete("out"), c.hset("out", "f", 1))),
    "digest a list": (
        "out:input-digest",
        lambda c: (c.delete("out:input-digest"), c.rpush("out:input-digest", 1)),
    ),
    "sequence a hash": (
        "out:state:seq",
        lambda c: (c.delete("out:state:seq"), c.hset("out:state:seq", "f", 1)),
    ),
}


def output(client: redis.Redis) -> dict[str, Any]:
    try:
        value: dict[str, Any] = json.loads(client.get("out") or "{}")
    except redis.ResponseError:
        return {}
    return value


def everything(valkey: Any, but: str) -> dict[bytes, Any]:
    """What every key the commit writes holds (the forced key, error, lease, mark aside)."""
    raw = redis.Redis(port=valkey.port)
    skipped = {but.encode(), b"out:error", b"out:lease", b"out:lease:token", b"out:in-flight"}
    held: dict[bytes, Any] = {}
    readers: dict[Any, Callable[[bytes], Any]] = {
        b"string": raw.get,
        b"stream": raw.xrange,
        b"hash": raw.hgetall,
    }
    keys: Any = raw.keys(b"out*")
    for key in sorted(k for k in keys if k not in skipped):
        held[key] = readers[raw.type(key)](key)
    return held


def refused(client: redis.Redis) -> bool:
    record: dict[str, Any] = json.loads(client.get("out:error") or "{}")
    return bool(record.get("kind") == "redis-error")


@pytest.mark.parametrize("shape", list(SHAPES))
def test_a_commit_whose_write_would_fail_writes_nothing_once(
    valkey, redis_client, tmp_path: Path, shape: str
) -> None:
    key, force = SHAPES[shape]
    env = runtime_env(
        valkey.port, "out", FUNCTION_PATH=str(FUNCTIONS / "counter.py"), INTERVAL="0.1"
    )
    proc = Process([RUNTIME], env, tmp_path / "runtime.log")
    try:
        redis_client.set("metrics", json.dumps({"value": 1}))
        wait_for(lambda: output(redis_client).get("value") == 1, what="commit 1")
        force(redis_client)
        before = everything(valkey, key)
        redis_client.set("metrics", json.dumps({"value": 2}))  # journaled, not snapshotted
        wait_for(lambda: refused(redis_client), what="the refused commit recorded")
        message = json.loads(redis_client.get("out:error"))["message"]
        time.sleep(1.5)  # some 15 ticks: a commit applied again would show by then
        assert everything(valkey, key) == before, "nothing written"
        said = [line for line in proc.output().splitlines() if line[:2] == "20" and message in line]
        assert len(said) == 1, "recorded once, not applied again"

        redis_client.delete(key)
        if key == "out:state:seq":
            redis_client.set(key, 1)
        redis_client.set("metrics", json.dumps({"value": 3}))
        wait_for(lambda: output(redis_client).get("value") == 3, what="the next input")
        assert output(redis_client)["calls"] == 2, "the refused input was never applied"
        assert proc.alive
    finally:
        proc.close()
