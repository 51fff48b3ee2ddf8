"""Redis going back to an older commit, as after a failover to a replica that had not received the
last writes (replication is asynchronous): the state follows Redis, so a commit that was lost is
done again when its input survived, and no input is ever applied twice.

The rewind is made on one real Valkey: every key is copied (DUMP) at a point, then put back
(RESTORE, in one transaction) after the runtime committed more.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.support.processes import RUNTIME, Process, runtime_env, wait_for

FUNCTIONS = Path(__file__).parent / "functions"
pytestmark = pytest.mark.slow

Copy = dict[str, bytes]


def copy_all(client: redis.Redis) -> Copy:
    """Every key but the lease (which keeps its own time), as DUMP gives it."""
    keys = [key for key in client.keys("*") if not str(key).startswith("out:lease")]
    copy: Copy = {}
    for key in keys:
        value: Any = client.dump(key)
        copy[str(key)] = bytes(value)
    return copy


def put_back(client: redis.Redis, copy: Copy) -> None:
    """Make the database hold what `copy` holds again, atomically."""
    pipe = client.pipeline(transaction=True)
    for key in client.keys("*"):
        if not str(key).startswith("out:lease") and str(key) not in copy:
            pipe.delete(key)
    for key, value in copy.items():
        pipe.restore(key, 0, value, replace=True)
    pipe.execute()


def output(client: redis.Redis) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(client.get("out") or "{}")
    return value


def history_values(client: redis.Redis) -> list[Any]:
    entries: Any = client.xrange("out:history")
    return [json.loads(fields["output"])["value"] for _, fields in entries]


def start(valkey: Any, tmp_path: Path) -> Process:
    env = runtime_env(valkey.port, "out", FUNCTION_PATH=str(FUNCTIONS / "counter.py"))
    return Process([RUNTIME], {**env, "INTERVAL": "0.2"}, tmp_path / "runtime.log")


def test_commit_lost_with_its_input_surviving_is_done_again(
    valkey: Any, redis_client: redis.Redis, tmp_path: Path
) -> None:
    proc = start(valkey, tmp_path)
    try:
        redis_client.set("metrics", json.dumps({"value": 1}))
        wait_for(lambda: output(redis_client).get("value") == 1, what="commit 1")
        proc.signal(signal.SIGSTOP)
        redis_client.set("metrics", json.dumps({"value": 2}))
        before_commit_2 = copy_all(redis_client)  # what a replica got: input 2, not its commit
        proc.signal(signal.SIGCONT)
        wait_for(lambda: output(redis_client).get("value") == 2, what="commit 2")

        put_back(redis_client, before_commit_2)  # the output is commit 1's again
        wait_for(lambda: output(redis_client).get("value") == 2, what="input 2 done again")

        assert output(redis_client)["calls"] == 2, "from commit 1's state, input 2 applied once"
        assert int(redis_client.get("out:state:seq") or 0) == 2
        assert history_values(redis_client) == [1, 2]
        assert "Redis holds commit 1 but this replica's state is at commit 2" in proc.output()
    finally:
        proc.signal(signal.SIGCONT)
        proc.close()


def test_commit_lost_with_its_input_is_not_applied_twice(
    valkey: Any, redis_client: redis.Redis, tmp_path: Path
) -> None:
    proc = start(valkey, tmp_path)
    try:
        redis_client.set("metrics", json.dumps({"value": 1}))
        wait_for(lambda: output(redis_client).get("value") == 1, what="commit 1")
        after_commit_1 = copy_all(redis_client)
        redis_client.set("metrics", json.dumps({"value": 2}))
        wait_for(lambda: output(redis_client).get("value") == 2, what="commit 2")

        put_back(redis_client, after_commit_1)  # input 2 and its commit both lost
        wait_for(lambda: "rebuilding the state from Redis" in proc.output(), what="the rewind seen")
        redis_client.set("metrics", json.dumps({"value": 3}))
        wait_for(lambda: output(redis_client).get("value") == 3, what="input 3")

        # Input 1, already committed in the copy Redis holds, is not run again.
        assert output(redis_client)["calls"] == 2
        assert history_values(redis_client) == [1, 3]
    finally:
        proc.close()
