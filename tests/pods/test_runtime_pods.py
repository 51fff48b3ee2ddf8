"""The rendered runtime pods, and the course's own deployment with our image, produce outputs."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from tests.conftest import FIXTURES, FUNCTION_FILE
from tests.manifests.rendered import (
    OUTPUT_KEYS,
    RUNTIMES,
    Doc,
    course_deployment,
    find,
    render_overlay,
)
from tests.pods.emulate import EmulatedPod, bwrap
from tests.pods.redis_pod import overlay_redis
from tests.support.valkey import ValkeyProcess, free_port

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(bwrap() is None, reason="bubblewrap (bwrap) is not installed"),
]

COURSE_OUTPUT_KEY = "resource-monitor-course-deployment"


def _course_deployment_objects() -> tuple[Doc, list[Doc]]:
    """The course's Deployment with only the image swapped, and the ConfigMaps the course
    has its users create (`kubectl create configmap pyfile --from-file pyfile=usermodule.py`,
    `kubectl create configmap outputkey --from-literal REDIS_OUTPUT_KEY=…`)."""
    (deployment,) = course_deployment()
    deployment["spec"]["template"]["spec"]["containers"][0]["image"] = "serverless-runtime"
    configmaps: list[Doc] = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "pyfile"},
            "data": {"pyfile": FUNCTION_FILE.read_text()},
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "outputkey"},
            "data": {"REDIS_OUTPUT_KEY": COURSE_OUTPUT_KEY},
        },
    ]
    return deployment, [deployment, *configmaps]


def _runtime_pod(source: str) -> tuple[Doc, list[Doc], str]:
    if source == "course-deployment":
        deployment, docs = _course_deployment_objects()
        return deployment, docs, COURSE_OUTPUT_KEY
    docs = render_overlay(source)
    return find(docs, "Deployment", RUNTIMES[source]), docs, OUTPUT_KEYS[source]


def _snapshots(count: int) -> list[Doc]:
    lines = (FIXTURES / "metrics-5s.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines[:count]]


def _output(client: redis.Redis, key: str, timestamp: str) -> Doc | None:
    raw = client.get(key)
    if raw is None:
        return None
    output: Doc = json.loads(raw)
    return output if output.get("timestamp") == timestamp else None


def _answers(overrides: dict[str, str], path: str) -> Callable[[], bool]:
    url = f"http://127.0.0.1:{overrides['HTTP_PORT']}{path}"

    def check() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return int(response.status) == 200
        except OSError:  # refused, or an HTTP error status
            return False

    return check


@pytest.mark.parametrize("source", ["dev", "prod", "course", "course-deployment"])
def test_runtime_pod_writes_outputs(source: str, valkey: ValkeyProcess, tmp_path: Path) -> None:
    workload, docs, output_key = _runtime_pod(source)
    container = workload["spec"]["template"]["spec"]["containers"][0]
    with overlay_redis(docs, valkey, tmp_path / "redis") as (port, redis_client):
        _writes_outputs(workload, container, docs, output_key, port, redis_client, tmp_path)


def _writes_outputs(
    workload: Doc,
    container: Doc,
    docs: list[Doc],
    output_key: str,
    redis_port: int,
    redis_client: redis.Redis,
    tmp_path: Path,
) -> None:
    # Tests talk to loopback only: Redis is the test's Valkey (dev: its own Redis, started from
    # the rendered Deployment with the Secret's password), the probe server binds 127.0.0.1.
    # Only where things listen changes; the password is the one the pod resolves.
    overrides = {
        "REDIS_HOST": "127.0.0.1",
        "REDIS_PORT": str(redis_port),
        "HTTP_HOST": "127.0.0.1",
        "HTTP_PORT": str(free_port()),
    }
    first, second = _snapshots(2)
    redis_client.set("metrics", json.dumps(first))

    with EmulatedPod(workload, container["name"], docs, tmp_path, overrides) as pod:
        output = pod.wait_for(
            "first output", lambda: _output(redis_client, output_key, first["timestamp"])
        )
        cpus = [key for key in first if key.startswith("cpu_percent-")]
        assert {"percent-network-egress", "percent-memory-caching"} <= output.keys()
        assert {f"avg-util-cpu{key.split('-')[1]}-60sec" for key in cpus} <= output.keys()

        redis_client.set("metrics", json.dumps(second))
        pod.wait_for(
            "second output", lambda: _output(redis_client, output_key, second["timestamp"])
        )
        assert redis_client.xlen(f"{output_key}:history") == 2
        # The kubelet's probes, as the manifest declares them, are answered.
        for probe in ("livenessProbe", "readinessProbe"):
            if probe in container:
                path = container[probe]["httpGet"]["path"]
                pod.wait_for(f"{probe} {path} answering 200", _answers(overrides, path))
        # The kubelet stops a pod with SIGTERM: the runtime finishes and exits cleanly.
        assert pod.stop() == 0, pod.logs()
