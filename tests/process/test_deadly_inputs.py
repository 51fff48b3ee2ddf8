"""An input that kills the process in key mode: poison after MAX_DEATHS deaths, never a crash loop.

A supervisor restarts the runtime whenever it ends, as the kubelet restarts a container.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.support.http import get
from tests.support.processes import RUNTIME, Process, runtime_env, wait_for
from tests.support.valkey import free_port

FUNCTIONS = Path(__file__).parent / "functions"
pytestmark = pytest.mark.slow


class Supervisor:
    """Keeps one runtime process running, starting a new one each time it ends."""

    def __init__(self, env: dict[str, str], tmp_path: Path) -> None:
        self.env = env
        self.tmp_path = tmp_path
        self.deaths = 0
        self.proc = self._start()

    def _start(self) -> Process:
        return Process([RUNTIME], self.env, self.tmp_path / f"run{self.deaths}.log")

    def restart_if_dead(self) -> None:
        if not self.proc.alive:
            self.proc.close()
            self.deaths += 1
            self.proc = self._start()

    def close(self) -> None:
        self.proc.close()


def output(client: redis.Redis) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(client.get("out") or "{}")
    return value


@pytest.mark.parametrize("how", ["exit", "segfault"])
def test_an_input_that_kills_the_process_becomes_poison_and_the_next_is_processed(
    valkey, redis_client, tmp_path: Path, how: str
) -> None:
    port = free_port()
    env = runtime_env(
        valkey.port, "out", FUNCTION_PATH=str(FUNCTIONS / "deadly.py"), INTERVAL="0.2",
        LEASE_TTL="0.5", HTTP_PORT=str(port),
    )  # fmt: skip
    supervisor = Supervisor(env, tmp_path)
    try:
        redis_client.set("metrics", json.dumps({"value": 1}))
        wait_for(lambda: output(redis_client).get("value") == 1, what="the first input")
        redis_client.set("metrics", json.dumps({"die": how, "timestamp": "t-deadly"}))

        def poisoned() -> bool:
            supervisor.restart_if_dead()
            assert supervisor.deaths <= 6, "crash loop: the input was never recorded as poison"
            return redis_client.hget("out:poison", "input") is not None

        wait_for(poisoned, timeout=60, what="the input recorded as poison")

        # The error record is written just after the poison mark: wait for it, not a moment.
        def poison_record() -> dict[str, Any] | None:
            record = json.loads(redis_client.get("out:error") or "{}")
            return record if record.get("kind") == "poison-input" else None

        record = wait_for(poison_record, what="the poison-input record")
        assert "ended the process 3 times" in record["message"]
        assert record["input_timestamp"] == "t-deadly"
        assert redis_client.hget("out:poison", "input-deaths") == "3"
        assert supervisor.deaths == 3

        redis_client.set("metrics", json.dumps({"value": 2}))
        wait_for(lambda: output(redis_client).get("value") == 2, what="the next input")
        assert output(redis_client)["calls"] == 2, "the deadly input left the state alone"
        assert supervisor.proc.alive
        assert supervisor.deaths == 3
        status, body = get(port, "/readyz")
        assert status == 200
        assert "poison: input=" in body and "input-deaths=3" in body
    finally:
        supervisor.close()


def test_max_deaths_is_configurable_and_a_restart_mid_call_is_no_death(
    valkey, redis_client, tmp_path: Path
) -> None:
    env = runtime_env(
        valkey.port, "out", FUNCTION_PATH=str(FUNCTIONS / "deadly.py"), INTERVAL="0.2",
        LEASE_TTL="0.5", MAX_DEATHS="1",
    )  # fmt: skip
    supervisor = Supervisor(env, tmp_path)
    try:
        redis_client.set("metrics", json.dumps({"die": "exit"}))

        def poisoned() -> bool:
            supervisor.restart_if_dead()
            return redis_client.hget("out:poison", "input") is not None

        wait_for(poisoned, timeout=30, what="the input recorded as poison")
        assert supervisor.deaths == 1
        assert redis_client.hget("out:poison", "input-deaths") == "1"
        # An input whose call ended normally leaves no process named in flight.
        redis_client.set("metrics", json.dumps({"value": 7}))
        wait_for(lambda: output(redis_client).get("value") == 7, what="the next input")
        assert redis_client.hget("out:in-flight", "owner") == ""
    finally:
        supervisor.close()
