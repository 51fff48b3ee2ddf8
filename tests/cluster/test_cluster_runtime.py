"""The runtime in cluster mode, as a real process on a real Valkey Cluster: the resource-monitor
replays the recording with its input and output keys on different masters, and its outputs are
exactly the independent reference's across SIGKILLs of the runtime, a migration of the input's
slot to another master, and a failover of the output's master to its replica; settings a
cluster cannot honour stop it at start with one line.
"""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.function.reference import Reference, assert_same_output
from tests.support.processes import RUNTIME, Process, runtime_env, wait_for
from tests.support.valkey import ValkeyProcess, free_port
from tests.support.valkey_cluster import ClusterNode, ValkeyCluster

from .conftest import PASSWORD

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
FUNCTION = REPO / "apps" / "functions" / "resource-monitor" / "usermodule.py"
RECORDING = REPO / "tests" / "fixtures" / "metrics-5s.jsonl"
LINES = [line for line in RECORDING.read_text().splitlines() if line.strip()]


def cluster_env(
    nodes: ValkeyCluster, input_key: str, output_key: str, **extra: str
) -> dict[str, str]:
    listed = ",".join(f"{host}:{port}" for host, port in nodes.startup_nodes[:2])
    return {
        "REDIS_CLUSTER_NODES": listed,
        "REDIS_PASSWORD": PASSWORD,
        "REDIS_INPUT_KEY": input_key,
        "REDIS_OUTPUT_KEY": output_key,
        "FUNCTION_PATH": str(FUNCTION),
        "TRIGGER": "notify",
        "INTERVAL": "0.5",
        "HTTP_PORT": "0",
        **extra,
    }


class Replay:
    """The recording written to the input one line at a time, each output awaited and compared
    with the reference's; runtimes started (and killed) as the test says."""

    def __init__(
        self, nodes: ValkeyCluster, env: dict[str, str], logs: Path, client: Any = None
    ) -> None:
        self.nodes = nodes
        self.env = env
        self.logs = logs
        self.client = client if client is not None else nodes.client()
        self.reference = Reference()
        self.runs: list[Process] = []
        self.done = 0

    @property
    def input_key(self) -> str:
        return self.env["REDIS_INPUT_KEY"]

    @property
    def output_key(self) -> str:
        return self.env["REDIS_OUTPUT_KEY"]

    def start(self) -> Process:
        proc = Process([RUNTIME], self.env, self.logs / f"run{len(self.runs)}.log")
        self.runs.append(proc)
        return proc

    def kill(self) -> None:
        self.runs[-1].kill()

    def write(self) -> None:
        """The next line to the input (retried while its master fails over), or as a stream
        entry with TRIGGER=stream."""
        line = LINES[self.done]
        if self.env.get("TRIGGER") == "stream":
            self.client.xadd(self.input_key, {"data": line})
        else:
            retried(lambda: self.client.set(self.input_key, line))

    def awaited(self) -> None:
        """The output of the line written last, checked against the reference."""
        data = json.loads(LINES[self.done])
        stamp = data["timestamp"]

        def output() -> Any:
            raw = retried(lambda: self.client.get(self.output_key))
            return raw if isinstance(raw, str) and stamp in raw else None

        try:
            raw = wait_for(output, timeout=30, what=f"the output of line {self.done}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the runtime's log ends:\n{self.log()}") from None
        assert_same_output(json.loads(raw), self.reference.output(data))
        self.done += 1

    def step(self) -> None:
        self.write()
        self.awaited()

    def log(self) -> str:
        return self.runs[-1].output()[-3000:] if self.runs else ""

    def close(self) -> None:
        for proc in self.runs:
            proc.close()
        self.client.close()


def retried(command: Callable[[], Any]) -> Any:
    """A command of the test's own client, tried again while the cluster moves."""

    def attempt() -> tuple[Any] | None:
        try:
            return (command(),)
        except (redis.ConnectionError, redis.TimeoutError, redis.exceptions.ClusterError):
            return None

    return wait_for(attempt, timeout=30, what="the cluster to answer again")[0]


@pytest.fixture
def replay(
    shaped: ValkeyCluster, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Replay]:
    input_key, output_key = request.param
    # Each commit waits for the output master's replica (so that a failover loses none), at most
    # 0.2 s: after the failover the new master has none until the old one comes back.
    replicas = {"COMMIT_REPLICAS": "1", "COMMIT_REPLICAS_TIMEOUT": "0.2"}
    env = cluster_env(shaped, input_key, output_key, LEASE_TTL="1", **replicas)
    made = Replay(shaped, env, tmp_path)
    assert shaped.owner(input_key) is not shaped.owner(output_key)
    yield made
    made.close()


def test_stream_mode_with_the_stream_in_the_output_keys_slot(
    shaped: ValkeyCluster, tmp_path: Path
) -> None:
    output_key = "monitor-stream"
    stream = "{monitor-stream}:events"
    env = cluster_env(shaped, stream, output_key, TRIGGER="stream", STREAM_CONSUMER="c1")
    replay = Replay(shaped, env, tmp_path)
    try:
        replay.start()
        for _ in range(8):
            replay.step()
        replay.kill()
        replay.start()
        while replay.done < 16:
            replay.step()
        assert replay.client.xpending(stream, "serverless-runtime")["pending"] == 0
    finally:
        replay.close()


# What the runtime README's "Moving a single-server deployment to a cluster" renames.
RENAMED = (
    "state", "state:journal", "state:seq", "state:epoch", "history", "error", "input-digest",
    "in-flight", "poison", "dead", "lease:token",
)  # fmt: skip


def test_a_single_server_deployment_moved_as_the_readme_says_keeps_its_state(
    shaped: ValkeyCluster, tmp_path: Path
) -> None:
    input_key, output_key = "metrics-moved2", "monitor-moved2"
    assert shaped.owner(input_key) is not shaped.owner(output_key)
    server = ValkeyProcess(tmp_path / "single")
    server.start()
    single = server.client()
    env = cluster_env(shaped, input_key, output_key)
    del env["REDIS_CLUSTER_NODES"], env["REDIS_PASSWORD"]
    replay = Replay(shaped, {**env, **runtime_env(server.port, output_key)}, tmp_path, single)
    replay.env["REDIS_INPUT_KEY"] = input_key
    try:
        replay.start()
        for _ in range(15):  # the function's 60 s window holds 12 of the recording's inputs
            replay.step()
        replay.runs[-1].signal(signal.SIGTERM)  # 1. the Deployment scaled to 0
        assert replay.runs[-1].wait() == 0
        for suffix in RENAMED:  # 2. renamed on the single server
            if single.exists(f"{output_key}:{suffix}"):
                single.rename(f"{output_key}:{suffix}", f"{{{output_key}}}:{suffix}")
        single.delete(f"{output_key}:lease")
        assert single.exists(f"{{{output_key}}}:state:seq", f"{{{output_key}}}:input-digest") == 2
        with server.client() as dumps:  # 3. copied into the cluster (as --cluster-copy does)
            raw = redis.Redis(port=server.port, socket_timeout=5)
            target = shaped.client()
            for key in dumps.scan_iter():
                dumped = raw.dump(key)
                assert isinstance(dumped, bytes)
                target.restore(key, 0, dumped, replace=True)
            raw.close()
            target.close()
        single.close()
        replay.client = shaped.client()
        replay.env = cluster_env(shaped, input_key, output_key)  # 4. started in cluster mode
        replay.start()
        while replay.done < len(LINES):
            replay.step()  # the reference goes on with the state of the first 15 inputs
        assert not replay.client.exists(f"{output_key}:state", f"{output_key}:state:seq")
    finally:
        replay.close()
        server.stop()


def third_master(nodes: ValkeyCluster, *not_these: ClusterNode) -> ClusterNode:
    return next(master for master in nodes.masters() if master not in not_these)


@pytest.mark.parametrize("replay", [("metrics", "resource-monitor")], indirect=True)
def test_outputs_are_exact_across_sigkills_of_the_runtime(replay: Replay) -> None:
    kill_before = {4, 11, 19, 27}  # killed idle: the next line is written while it is down
    kill_after_write = {7, 15, 23, 31}  # killed right after a write: in read, call or commit
    replay.start()
    while replay.done < len(LINES):
        if replay.done in kill_before:
            replay.kill()
            replay.write()
            replay.start()
            replay.awaited()
        elif replay.done in kill_after_write:
            replay.write()
            replay.kill()
            replay.start()
            replay.awaited()
        else:
            replay.step()
    assert len(replay.runs) == len(kill_before) + len(kill_after_write) + 1


@pytest.mark.parametrize("replay", [("metrics-migrated", "monitor-migrated")], indirect=True)
def test_outputs_are_exact_across_a_migration_of_the_inputs_slot(replay: Replay) -> None:
    nodes = replay.nodes
    source, home = nodes.owner(replay.input_key), nodes.owner(replay.output_key)
    target = third_master(nodes, source, home)
    replay.start()
    for _ in range(10):
        replay.step()
    with nodes.migrating(nodes.keyslot(replay.input_key), target) as move_keys:
        assert move_keys() == 1
        replay.step()  # written through ASK to the master importing the slot
        replay.step()
    assert nodes.owner(replay.input_key) is target
    while replay.done < len(LINES):
        replay.step()
    assert len(replay.runs) == 1 and replay.runs[0].alive, "followed without a restart"


@pytest.mark.parametrize(
    ("replay", "killed"),
    [
        (("metrics-failover1", "monitor-failover1"), True),
        (("metrics-failover5", "monitor-failover5"), False),
    ],
    ids=["master-killed", "graceful"],
    indirect=["replay"],
)
def test_outputs_are_exact_across_a_failover_of_the_outputs_master(
    replay: Replay, killed: bool
) -> None:
    nodes = replay.nodes
    old = nodes.owner(replay.output_key)
    replay.start()
    for _ in range(12):
        replay.step()
    nodes.wait_settled()  # COMMIT_REPLICAS=1: the replica holds every commit already
    # Killed: the runtime loses its connection to the output's master. Graceful (CLUSTER
    # FAILOVER): the old master, now a replica, answers MOVED on that connection.
    new = nodes.takeover(old) if killed else nodes.failover(old)
    assert nodes.owner(replay.output_key) is new
    while replay.done < len(LINES):
        replay.step()
    assert len(replay.runs) == 1 and replay.runs[0].alive, "followed without a restart"


@pytest.mark.parametrize(
    ("extra", "line"),
    [
        (
            {"STATE_KEY": "state"},
            "invalid setting STATE_KEY='state': expected a key in REDIS_OUTPUT_KEY's hash slot "
            "in a Redis Cluster, e.g. '{resource-monitor}:state'",
        ),
        (
            {"TRIGGER": "stream", "REDIS_INPUT_KEY": "events"},
            "invalid setting REDIS_INPUT_KEY='events': expected a stream in REDIS_OUTPUT_KEY's "
            "hash slot with TRIGGER=stream in a Redis Cluster (e.g. '{resource-monitor}:events'): "
            "the commit acknowledges the entry in the same script",
        ),
        (
            {"REDIS_URL": "redis://:s3cret@127.0.0.1:6379/0"},
            "invalid setting REDIS_URL='***': expected unset when REDIS_CLUSTER_NODES is set: "
            "the cluster says where keys are",
        ),
    ],
    ids=["state-key-elsewhere", "stream-elsewhere", "url-beside"],
)
def test_what_a_cluster_cannot_honour_stops_the_runtime_with_one_line(
    valkey_cluster: ValkeyCluster, extra: dict[str, str], line: str
) -> None:
    env = {**cluster_env(valkey_cluster, "metrics", "resource-monitor"), **extra}
    done = subprocess.run([RUNTIME], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == f"serverless-runtime: {line}"
    assert "Traceback" not in done.stderr
    assert "s3cret" not in done.stderr


def test_no_node_answering_at_start_is_waited_out_not_a_crash(tmp_path: Path) -> None:
    dead = free_port()
    env = {
        "REDIS_CLUSTER_NODES": f"127.0.0.1:{dead}",
        "REDIS_OUTPUT_KEY": "resource-monitor",
        "FUNCTION_PATH": str(FUNCTION),
        "HTTP_PORT": "0",
    }
    proc = Process([RUNTIME], env, tmp_path / "run.log")
    try:
        wait_for(lambda: "retrying with backoff" in proc.output(), what="the backoff")
        assert proc.alive
        assert f"Redis unreachable (no cluster node of 127.0.0.1:{dead} answered" in proc.output()
        proc.signal(signal.SIGTERM)
        assert proc.wait() == 0
        assert "Traceback" not in proc.output()
    finally:
        proc.close()
