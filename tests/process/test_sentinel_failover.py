"""Redis Sentinel: the runtime finds the master through the sentinels and follows a failover.

Real servers: a master, a replica and one sentinel (quorum 1), all valkey-server; the runtime is a
real process. Passwords on both sides: REDIS_PASSWORD for the servers, REDIS_SENTINEL_PASSWORD for
the sentinel.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.support.processes import RUNTIME, Process, runtime_env, wait_for
from tests.support.sentinel import MASTER_NAME, Topology, topology

FUNCTIONS = Path(__file__).parent / "functions"
PASSWORD = "data-s3cret"
SENTINEL_PASSWORD = "sentinel-s3cret"
pytestmark = pytest.mark.slow


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Topology]:
    with topology(tmp_path, PASSWORD, SENTINEL_PASSWORD) as started:
        yield started


def sentinel_env(servers: Topology, **extra: str) -> dict[str, str]:
    env = runtime_env(
        1,  # REDIS_PORT: never used, the sentinels say where the master is
        "out",
        FUNCTION_PATH=str(FUNCTIONS / "counter.py"),
        INTERVAL="0.2",
        REDIS_SENTINELS=f"127.0.0.1:{servers.sentinel.port}",
        REDIS_SENTINEL_MASTER=MASTER_NAME,
        REDIS_SENTINEL_PASSWORD=SENTINEL_PASSWORD,
        REDIS_PASSWORD=PASSWORD,
    )
    env["REDIS_HOST"] = "unused.invalid"
    return {**env, **extra}


def output(client: redis.Redis) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(client.get("out") or "{}")
    return value


def test_runtime_follows_a_failover_without_a_restart(servers: Topology, tmp_path: Path) -> None:
    proc = Process([RUNTIME], sentinel_env(servers), tmp_path / "runtime.log")
    old = servers.first.client()
    try:
        old.set("metrics", json.dumps({"value": "before"}))
        wait_for(lambda: output(old).get("value") == "before", what="an output on the master")
        # Wait until the replica holds the commit too: a failover keeps what was replicated.
        replica = servers.second.client()
        wait_for(lambda: output(replica).get("value") == "before", what="the replica to catch up")

        servers.fail_over()
        replica.set("metrics", json.dumps({"value": "after"}))
        wait_for(
            lambda: output(replica).get("value") == "after", what="an output on the new master"
        )

        assert proc.alive, "no restart"
        assert output(replica)["calls"] == 2, "context.env came over with the replication"
        assert int(replica.get("out:state:seq") or 0) == 2
        log = proc.output()
        assert PASSWORD not in log
        assert SENTINEL_PASSWORD not in log
    finally:
        old.close()
        replica.close()
        proc.close()


def test_runtime_rides_out_the_death_of_the_master(servers: Topology, tmp_path: Path) -> None:
    proc = Process([RUNTIME], sentinel_env(servers), tmp_path / "runtime.log")
    old, replica = servers.first.client(), servers.second.client()
    try:
        old.set("metrics", json.dumps({"value": "before"}))
        wait_for(lambda: output(old).get("value") == "before", what="an output on the master")
        wait_for(lambda: output(replica).get("value") == "before", what="the replica to catch up")

        servers.first.signal(signal.SIGKILL)
        # down-after-milliseconds (1 s here), then the sentinel promotes the replica by itself.
        wait_for(
            lambda: servers.sentinel.master_port() == servers.second.port,
            timeout=30,
            what="the sentinel to promote the replica",
        )
        replica.set("metrics", json.dumps({"value": "after"}))
        wait_for(
            lambda: output(replica).get("value") == "after",
            timeout=30,
            what="an output on the new master",
        )

        assert proc.alive, "no restart"
        assert output(replica)["calls"] == 2
        # Logged once the step that committed returns: waited for, not raced.
        wait_for(lambda: "Redis reachable again; resuming" in proc.output(), what="resumed")
        assert "Redis unreachable" in proc.output()
    finally:
        old.close()
        replica.close()
        proc.close()


def test_runtime_waits_for_a_master_the_sentinels_do_not_know(
    servers: Topology, tmp_path: Path
) -> None:
    env = sentinel_env(servers, REDIS_SENTINEL_MASTER="no-such-master")
    proc = Process([RUNTIME], env, tmp_path / "runtime.log")
    try:
        # Not a setting the runtime can check alone: said, and retried with backoff.
        wait_for(lambda: "No master found for 'no-such-master'" in proc.output(), what="warning")
        assert proc.alive
    finally:
        proc.close()
