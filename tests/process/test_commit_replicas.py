"""COMMIT_REPLICAS: each commit waits (WAIT, pipelined) for replicas to hold it; when fewer do
within COMMIT_REPLICAS_TIMEOUT the commit stands and a warning says so once (a real master and
replica; the runtime a real process)."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.support.processes import RUNTIME, Process, runtime_env, wait_for
from tests.support.sentinel import Topology, topology

FUNCTIONS = Path(__file__).parent / "functions"
pytestmark = pytest.mark.slow
SHORT = "a commit reached 0 of COMMIT_REPLICAS=1 replicas within 0.3 s"


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Topology]:
    with topology(tmp_path) as started:
        yield started


def output(client: redis.Redis) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(client.get("out") or "{}")
    return value


def feed(client: redis.Redis, value: int) -> None:
    client.set("metrics", json.dumps({"value": value}))
    wait_for(lambda: output(client).get("value") == value, what=f"input {value}")


def test_commits_wait_for_the_replica_and_stand_when_it_lags(
    servers: Topology, tmp_path: Path
) -> None:
    env = runtime_env(
        servers.first.port, "out", FUNCTION_PATH=str(FUNCTIONS / "counter.py"), INTERVAL="0.1",
        COMMIT_REPLICAS="1", COMMIT_REPLICAS_TIMEOUT="0.3",
    )  # fmt: skip
    proc = Process([RUNTIME], env, tmp_path / "runtime.log")
    master, replica = servers.first.client(), servers.second.client()
    try:
        feed(master, 1)
        # The commit was acknowledged by the replica before the runtime went on.
        wait_for(lambda: output(replica).get("value") == 1, what="the replica to hold it")
        servers.second.signal(signal.SIGSTOP)
        try:
            for value in (2, 3):
                feed(master, value)
            wait_for(lambda: SHORT in proc.output(), what="the warning")
        finally:
            servers.second.signal(signal.SIGCONT)
        feed(master, 4)
        wait_for(lambda: "reach COMMIT_REPLICAS=1 replicas again" in proc.output(), what="again")
        assert output(master)["calls"] == 4, "the commits that lacked a replica stand"
        assert proc.output().count(SHORT) == 1, "said once"
        assert master.get("out:error") is None, "not a failure"
    finally:
        servers.second.signal(signal.SIGCONT)
        master.close()
        replica.close()
        proc.close()
