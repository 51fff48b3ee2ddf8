"""Redis restarted without persistence under two replicas: the replica holding the newest commit
writes it back, so no input is lost, whichever replica wins the lease (a real Valkey, restarted
on its port, and real runtime processes)."""

from __future__ import annotations

import json
import signal
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.process.functions import tally
from tests.support.processes import RUNTIME, Process, runtime_env, wait_for
from tests.support.state import committed_env
from tests.support.valkey import ValkeyProcess

FUNCTIONS = Path(__file__).parent / "functions"
pytestmark = pytest.mark.slow


def output(client: redis.Redis) -> dict[str, Any]:
    try:
        value: dict[str, Any] = json.loads(client.get("out") or "{}")
    except redis.ConnectionError:
        return {}
    return value


def feed(client: redis.Redis, values: range) -> None:
    for n in values:
        client.set("metrics", json.dumps({"n": n}))
        wait_for(partial(shows, client, n), timeout=30, what=f"input {n}")


def shows(client: redis.Redis, n: int) -> bool:
    return output(client).get("n") == n


def start(valkey: ValkeyProcess, tmp_path: Path, name: str) -> Process:
    env = runtime_env(
        valkey.port, "out", FUNCTION_PATH=str(FUNCTIONS / "tally.py"), INTERVAL="0.2",
        LEASE_TTL="1", STREAM_CONSUMER=name,
    )  # fmt: skip
    return Process([RUNTIME], env, tmp_path / f"{name}.log")


def test_a_standby_winning_the_lease_after_a_reset_gets_the_leaders_state_back(
    own_valkey: ValkeyProcess, tmp_path: Path
) -> None:
    client = own_valkey.client()
    leader = start(own_valkey, tmp_path, "leader")
    standby: Process | None = None
    try:
        feed(client, range(1, 11))
        standby = start(own_valkey, tmp_path, "standby")
        wait_for(lambda: "connected to Redis" in standby.output(), what="the standby up")
        feed(client, range(11, 13))
        leader.signal(signal.SIGSTOP)  # so that the standby takes the lease after the reset
        own_valkey.stop()
        own_valkey.start()
        client = own_valkey.client()
        wait_for(lambda: "leading" in standby.output(), timeout=30, what="the standby leading")
        leader.signal(signal.SIGCONT)
        feed(client, range(13, 23))
        assert output(client)["seen"] == list(range(1, 23)), "no input lost: the state came back"
        said = leader.output() + standby.output()
        assert said.count("written back") == 1, said
        record = json.loads(client.get("out:error") or "{}")
        assert record.get("kind") == "redis-reset" and "written back" in record["message"]
    finally:
        leader.signal(signal.SIGCONT)
        leader.close()
        if standby is not None:
            standby.close()


def test_a_former_leader_does_not_keep_a_stale_state_of_another_history(
    own_valkey: ValkeyProcess, tmp_path: Path
) -> None:
    client = own_valkey.client()
    first = start(own_valkey, tmp_path, "first")
    second: Process | None = None
    try:
        feed(client, range(1, 4))  # the first replica's state: commit 3
        first.signal(signal.SIGSTOP)
        own_valkey.stop()
        own_valkey.start()
        client = own_valkey.client()
        # Nobody holds the old state but the stopped replica: the second starts afresh...
        second = start(own_valkey, tmp_path, "second")
        feed(client, range(101, 104))  # commits 1..3 of a new history
        # ... and the first, back with its state at commit 3 of the old one, follows the new.
        first.signal(signal.SIGCONT)
        second.close()
        feed(client, range(104, 105))
        assert output(client)["seen"] == [101, 102, 103, 104], "not the stale state of commit 3"
    finally:
        first.signal(signal.SIGCONT)
        first.close()
        if second is not None:
            second.close()


def test_a_stream_consumer_writes_its_state_back_after_a_reset(
    valkey: Any, redis_client: redis.Redis, tmp_path: Path
) -> None:
    env = runtime_env(
        valkey.port, "out", FUNCTION_PATH=str(FUNCTIONS / "tally.py"), TRIGGER="stream",
        STREAM_CONSUMER="a", STREAM_CLAIM_IDLE="0.5", INTERVAL="0.2",
    )  # fmt: skip
    proc = Process([RUNTIME], env, tmp_path / "a.log")
    try:
        for n in range(1, 6):
            redis_client.xadd("metrics", {"data": json.dumps({"n": n})})
        wait_for(partial(shows, redis_client, 5), what="entries 1 to 5")
        redis_client.flushall()  # as a Redis restarted without persistence
        for n in (6, 7):
            redis_client.xadd("metrics", {"data": json.dumps({"n": n})})
        wait_for(partial(shows, redis_client, 7), timeout=30, what="entry 7")
        # The entry whose commit found Redis empty is done again once claimed: maybe after 7.
        wait_for(lambda: redis_client.xpending("metrics", "serverless-runtime")["pending"] == 0)
        seen = committed_env(redis_client, "out:state:a", tally.handler)["seen"]
        assert seen[:5] == [1, 2, 3, 4, 5], "the consumer's state came back whole"
        assert sorted(seen[5:]) == [6, 7]
    finally:
        proc.close()
