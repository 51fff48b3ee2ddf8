"""State follows the lease: rollouts, node loss and paused leaders lose nothing, repeat nothing.

Every scenario feeds the resource-monitor function a recorded input series, one input at a time,
while replicas are stopped, killed and paused; the outputs it committed (the history stream) must
then be exactly those of one uninterrupted run, and match an independent reference of the 60 s
window by input timestamps; the committed state must be that of the uninterrupted run.
"""

from __future__ import annotations

import importlib.util
import json
import random
import signal
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from tests.conftest import FIXTURES, FUNCTION_FILE
from tests.function.reference import Reference, assert_same_output
from tests.support.processes import RUNTIME, Process, runtime_env, wait_for
from tests.support.state import committed_env, head

FIXTURE = FIXTURES / "metrics-5s.jsonl"
pytestmark = pytest.mark.slow
INTERVAL = 0.5  # the lease lasts 2 x INTERVAL: a dead leader is replaced within about 1.5 s


def load_function() -> ModuleType:
    spec = importlib.util.spec_from_file_location("resource_monitor_under_test", FUNCTION_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def recorded_inputs(count: int) -> list[str]:
    """The collector's recording, repeated with timestamps 5 s apart, as raw JSON texts."""
    lines = [json.loads(line) for line in FIXTURE.read_text().splitlines() if line.strip()]
    start = datetime.fromisoformat(lines[0]["timestamp"])
    inputs = []
    for n in range(count):
        value = dict(lines[n % len(lines)])
        value["timestamp"] = str(start + timedelta(seconds=5 * n))
        inputs.append(json.dumps(value))
    return inputs


class Cluster:
    """Runtime replicas sharing one output key and lease, started and stopped by name."""

    def __init__(self, valkey: Any, client: Any, tmp_path: Path) -> None:
        self.valkey = valkey
        self.client = client
        self.tmp_path = tmp_path
        self.replicas: dict[str, Process] = {}
        self.started = 0

    def start(self) -> Process:
        self.started += 1
        name = f"r{self.started}"
        env = runtime_env(
            self.valkey.port, "out", FUNCTION_PATH=str(FUNCTION_FILE), TRIGGER="notify",
            INTERVAL=str(INTERVAL), STREAM_CONSUMER=name,
        )  # fmt: skip
        self.replicas[name] = Process([RUNTIME], env, self.tmp_path / f"{name}.log")
        wait_for(lambda: "watching" in self.replicas[name].output(), what=f"{name} to start")
        return self.replicas[name]

    def leader(self) -> Process:
        name = wait_for(self._holder, timeout=10, what="a leader")
        return self.replicas[name]

    def _holder(self) -> str | None:
        value = self.client.get("out:lease")
        name = None if value is None else value.split("/")[0]
        return name if name in self.replicas and self.replicas[name].alive else None

    def feed(self, raw: str) -> None:
        """Write one input and wait until its output is committed, by whichever replica."""
        self.write(raw)
        self.wait_output(raw)

    def write(self, raw: str) -> None:
        self.client.set("metrics", raw)

    def wait_output(self, raw: str) -> None:
        stamp = json.loads(raw)["timestamp"]
        wait_for(
            lambda: json.loads(self.client.get("out") or "{}").get("timestamp") == stamp,
            timeout=20,
            what=f"the output for {stamp}",
        )

    def close(self) -> None:
        for proc in self.replicas.values():
            proc.close()


@pytest.fixture
def cluster(valkey, redis_client, tmp_path: Path) -> Iterator[Cluster]:
    replicas = Cluster(valkey, redis_client, tmp_path)
    yield replicas
    replicas.close()


def assert_as_if_uninterrupted(client: Any, inputs: list[str]) -> None:
    """Committed outputs and state equal one uninterrupted run's, and the reference's."""
    function = load_function()
    context = SimpleNamespace(env={}, replaying=False, last_execution=None)
    expected = [function.handler(json.loads(raw), context) for raw in inputs]
    history = [json.loads(fields["output"]) for _id, fields in client.xrange("out:history")]
    assert len(history) == len(inputs), "every input committed exactly once"
    assert history == expected, "outputs identical to one uninterrupted run"
    reference = Reference()
    for raw, output in zip(inputs, history, strict=True):
        assert_same_output(output, reference.output(json.loads(raw)))
    assert head(client, "out:state") == len(inputs)
    assert committed_env(client, "out:state", function.handler) == context.env


def test_rolling_update_hands_state_over(cluster: Cluster, redis_client) -> None:
    inputs = recorded_inputs(24)
    old = cluster.start()
    assert cluster.leader() is old
    for raw in inputs[:3]:
        cluster.feed(raw)
    new = cluster.start()  # maxSurge: the new pod starts while the old one still leads
    for raw in inputs[3:10]:
        cluster.feed(raw)  # the old leader processes 7 more inputs the new pod has not seen
    old.signal(signal.SIGTERM)
    assert old.wait() == 0
    for raw in inputs[10:]:
        cluster.feed(raw)
    assert cluster.leader() is new
    assert_as_if_uninterrupted(redis_client, inputs)
    assert redis_client.get("out:error") is None


def test_node_loss_of_the_leader_again_and_again(cluster: Cluster, redis_client) -> None:
    inputs = recorded_inputs(40)
    cluster.start()
    cluster.start()
    position = 0
    for _kill in range(6):
        for raw in inputs[position : position + 4]:
            cluster.feed(raw)
        position += 4
        cluster.leader().kill()  # SIGKILL: the lease is not released and has to lapse
        cluster.write(inputs[position])  # written while no replica holds the lease
        cluster.wait_output(inputs[position])
        position += 1
        cluster.start()  # the Deployment replaces the lost pod: a standby is always there
    for raw in inputs[position:]:
        cluster.feed(raw)
    assert_as_if_uninterrupted(redis_client, inputs)


def test_kill_at_random_points_of_the_commit_cycle(cluster: Cluster, redis_client) -> None:
    inputs = recorded_inputs(30)
    rng = random.Random(20261201)
    cluster.start()
    cluster.start()
    for raw in inputs[:3]:
        cluster.feed(raw)
    for raw in inputs[3:13]:
        leader = cluster.leader()
        cluster.write(raw)
        # Somewhere between reading the input, calling the handler, committing (journal append,
        # snapshot, trim) and after: the commit is one script, so each is all or nothing.
        time.sleep(rng.uniform(0, 0.004))
        leader.kill()
        cluster.wait_output(raw)
        cluster.start()
    for raw in inputs[13:]:
        cluster.feed(raw)
    assert_as_if_uninterrupted(redis_client, inputs)


def test_paused_leader_neither_writes_nor_resumes_from_stale_state(
    cluster: Cluster, redis_client
) -> None:
    inputs = recorded_inputs(24)
    paused = cluster.start()
    other = cluster.start()
    assert cluster.leader() is paused
    for raw in inputs[:5]:
        cluster.feed(raw)
    paused.signal(signal.SIGSTOP)  # longer than LEASE_TTL: the other replica takes over
    try:
        for raw in inputs[5:12]:
            cluster.feed(raw)
        assert cluster.leader() is other
    finally:
        paused.signal(signal.SIGCONT)
    wait_for(lambda: "standing by" in paused.output(), what="the paused replica to stand by")
    for raw in inputs[12:16]:
        cluster.feed(raw)
    other.kill()
    for raw in inputs[16:]:
        cluster.feed(raw)  # the once-paused replica leads again, from the committed state
    assert cluster.leader() is paused
    assert "catching up" in paused.output() or "restored function state" in paused.output()
    assert_as_if_uninterrupted(redis_client, inputs)
