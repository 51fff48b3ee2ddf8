"""One of the state's keys lost on its own (evicted, or deleted by hand after it held the wrong
type) while the others stay: the state is neither rewound nor applied twice (a real Valkey and
real runtime processes)."""

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
    value: dict[str, Any] = json.loads(client.get("out") or "{}")
    return value


def feed(client: redis.Redis, values: range) -> None:
    for n in values:
        client.set("metrics", json.dumps({"n": n}))
        wait_for(partial(lambda m: output(client).get("n") == m, n), timeout=30, what=f"input {n}")


def start(port: int, tmp_path: Path, name: str) -> Process:
    env = runtime_env(
        port, "out", FUNCTION_PATH=str(FUNCTIONS / "tally.py"), INTERVAL="0.2", TRIGGER="poll"
    )
    return Process([RUNTIME], env, tmp_path / f"{name}.log")


def test_a_lost_sequence_number_is_written_back_not_restarted_from_one(
    redis_client: redis.Redis, valkey: ValkeyProcess, tmp_path: Path
) -> None:
    first = start(valkey.port, tmp_path, "first")
    try:
        feed(redis_client, range(1, 4))
        redis_client.delete("out:state:seq")  # the snapshot, its journal and the epoch stay
        feed(redis_client, range(4, 5))
        first.signal(signal.SIGTERM)
        assert first.wait(timeout=30) == 0
    finally:
        first.close()
    assert committed_env(redis_client, "out:state", tally.handler)["seen"] == [1, 2, 3, 4]
    second = start(valkey.port, tmp_path, "second")
    try:
        feed(redis_client, range(5, 7))
        assert output(redis_client)["seen"] == [1, 2, 3, 4, 5, 6], "nothing lost, nothing twice"
    finally:
        second.close()
    record = json.loads(redis_client.get("out:error") or "{}")
    assert record.get("kind") == "redis-reset", record


def test_a_redis_that_evicts_any_key_is_named_at_start(
    own_valkey: ValkeyProcess, tmp_path: Path
) -> None:
    own_valkey.client().config_set("maxmemory-policy", "allkeys-lru")
    proc = start(own_valkey.port, tmp_path, "evicting")
    try:
        wait_for(lambda: "connected to Redis" in proc.output(), what="the runtime connected")
        said = [line for line in proc.output().splitlines() if "maxmemory-policy" in line]
        assert len(said) == 1 and "WARNING" in said[0] and "allkeys-lru" in said[0], said
    finally:
        proc.close()


def test_a_redis_that_never_evicts_is_not_warned_about(
    own_valkey: ValkeyProcess, tmp_path: Path
) -> None:
    own_valkey.client().config_set("maxmemory-policy", "volatile-lru")  # evicts the lease only
    proc = start(own_valkey.port, tmp_path, "keeping")
    try:
        wait_for(lambda: "connected to Redis" in proc.output(), what="the runtime connected")
        assert "maxmemory-policy" not in proc.output()
    finally:
        proc.close()


def test_a_journal_ahead_of_its_head_is_written_back_instead_of_rebuilt_forever(
    redis_client: redis.Redis, valkey: ValkeyProcess, tmp_path: Path
) -> None:
    first = start(valkey.port, tmp_path, "first")
    try:
        feed(redis_client, range(1, 4))
    finally:
        first.close()  # SIGKILL: no snapshot at shutdown, the journal keeps its entries
    journal: list[tuple[str, dict[str, str]]] = redis_client.xrange("out:state:journal")  # type: ignore[assignment]
    assert journal, "the snapshot is behind the head"
    last = int(journal[-1][0].split("-")[0])
    redis_client.set("out:state:seq", last - 1)  # the head rewound alone, below its journal
    second = start(valkey.port, tmp_path, "second")
    try:
        feed(redis_client, range(4, 6))
        assert output(redis_client)["seen"] == [1, 2, 3, 4, 5], "nothing lost, nothing twice"
    finally:
        second.close()
    record = json.loads(redis_client.get("out:error") or "{}")
    assert record.get("kind") == "redis-reset", record


def test_a_failed_call_after_a_rebuild_rolls_back_without_replaying_the_journal_again(
    redis_client: redis.Redis, valkey: ValkeyProcess, tmp_path: Path
) -> None:
    env = runtime_env(
        valkey.port, "out", FUNCTION_PATH=str(FUNCTIONS / "replay_count.py"), INTERVAL="0.2",
        TRIGGER="poll",
    )  # fmt: skip
    first = Process([RUNTIME], env, tmp_path / "first.log")
    try:
        feed(redis_client, range(1, 21))
    finally:
        first.close()  # SIGKILL: the next process rebuilds from the journal
    journal = redis_client.xlen("out:state:journal")
    assert journal > 10, "most inputs are in the journal"
    second = Process([RUNTIME], env, tmp_path / "second.log")
    try:
        redis_client.set("metrics", json.dumps({"n": 21, "fail": True}))
        wait_for(lambda: redis_client.exists("out:error"), what="the failed call recorded")
        feed(redis_client, range(22, 23))
        assert output(redis_client)["seen"] == [*range(1, 21), 22], "the failed call rolled back"
    finally:
        second.close()
    assert redis_client.llen("replays") == journal, "the journal replayed once, by the rebuild"


@pytest.mark.parametrize(
    "key",
    ["out:state:seq", "out:state:epoch", "out:input-digest", "out:in-flight", "out:lease:token"],
)
def test_a_key_read_with_the_input_holding_the_wrong_type_is_named(
    redis_client: redis.Redis, valkey: ValkeyProcess, tmp_path: Path, key: str
) -> None:
    redis_client.set("metrics", json.dumps({"n": 1}))
    if key == "out:in-flight":
        redis_client.set(key, "a string")
    else:
        redis_client.hset(key, "a", "hash")
    proc = start(valkey.port, tmp_path, "wrong")
    try:
        record = wait_for(
            lambda: json.loads(redis_client.get("out:error") or "{}"), what="the error recorded"
        )
        assert record["kind"] == "redis-error" and f"key {key} holds a" in record["message"]
        redis_client.delete(key)
        wait_for(lambda: output(redis_client).get("n") == 1, what="the input processed")
    finally:
        proc.close()
