"""A Redis Cluster node reached through REDIS_HOST/REDIS_PORT or REDIS_URL is refused at the
first connection, with one line pointing at REDIS_CLUSTER_NODES (cluster mode: tests/cluster).

A single-server client would meet MOVED replies for most keys. A cluster node is not a passing
fault: the runtime stops (exit code 2, as for a bad setting) instead of retrying forever.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import RUNTIME, Process, runtime_env, wait_for
from tests.support.valkey import ValkeyProcess, free_port

FUNCTIONS = Path(__file__).parent / "functions"
pytestmark = pytest.mark.slow

REFUSAL = (
    "expected a single Redis server or a Sentinel-managed master (REDIS_SENTINELS), not a Redis "
    "Cluster node (cluster_enabled:1): set REDIS_CLUSTER_NODES for a Redis Cluster"
)


@pytest.fixture
def cluster_node(tmp_path: Path) -> Iterator[ValkeyProcess]:
    # The cluster bus defaults to port + 10000, past 65535 for a high port: given its own.
    extra = ("--cluster-enabled", "yes", "--cluster-port", str(free_port()))
    server = ValkeyProcess(tmp_path / "node", password="s3cret", extra_args=extra)
    server.start()
    yield server
    server.stop()


def run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([RUNTIME], env=env, capture_output=True, text=True, timeout=60)


def test_cluster_node_stops_the_runtime_with_one_line(cluster_node: ValkeyProcess) -> None:
    env = runtime_env(
        cluster_node.port,
        "out",
        FUNCTION_PATH=str(FUNCTIONS / "counter.py"),
        REDIS_PASSWORD="s3cret",
    )
    done = run(env)
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == (
        "serverless-runtime: invalid setting "
        f"REDIS_HOST/REDIS_PORT='127.0.0.1:{cluster_node.port}': {REFUSAL}"
    )
    assert "Traceback" not in done.stderr
    assert cluster_node.client().dbsize() == 0, "nothing written"


def test_cluster_node_by_url_is_named_without_its_password(cluster_node: ValkeyProcess) -> None:
    env = runtime_env(cluster_node.port, "out", FUNCTION_PATH=str(FUNCTIONS / "counter.py"))
    env["REDIS_URL"] = f"redis://:s3cret@127.0.0.1:{cluster_node.port}/0"
    done = run(env)
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == (
        f"serverless-runtime: invalid setting REDIS_URL='redis://:***@127.0.0.1:{cluster_node.port}/0'"
        f": {REFUSAL}"
    )
    assert "s3cret" not in done.stderr + done.stdout


def test_server_that_refuses_info_is_taken_for_a_single_server(tmp_path: Path) -> None:
    server = ValkeyProcess(tmp_path / "node", extra_args=("--rename-command", "INFO", '""'))
    server.start()
    client = server.client()
    try:
        client.set("metrics", '{"value": 1}')
        proc = Process(
            [RUNTIME],
            runtime_env(server.port, "out", FUNCTION_PATH=str(FUNCTIONS / "counter.py")),
            tmp_path / "runtime.log",
        )
        try:
            wait_for(lambda: client.get("out"), what="an output")
        finally:
            proc.close()
    finally:
        client.close()
        server.stop()
