"""The dev overlay's collector pod writes host metrics where the runtime reads them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis

from tests.manifests.rendered import Doc, find, render_overlay
from tests.pods.emulate import EmulatedPod, bwrap
from tests.pods.redis_pod import overlay_redis
from tests.support.valkey import ValkeyProcess

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(bwrap() is None, reason="bubblewrap (bwrap) is not installed"),
]


def test_collector_pod_writes_the_metrics_key(valkey: ValkeyProcess, tmp_path: Path) -> None:
    docs = render_overlay("dev")
    workload = find(docs, "Deployment", "metrics-collector")
    # dev's Redis as its Deployment starts it (password from the Secret), on loopback.
    with overlay_redis(docs, valkey, tmp_path / "redis") as (port, redis_client):
        _writes_metrics(workload, docs, port, redis_client, tmp_path)


def _writes_metrics(
    workload: Doc, docs: list[Doc], port: int, redis_client: redis.Redis, tmp_path: Path
) -> None:
    # Tests talk to loopback only; the password is the one the pod resolves from the Secret.
    overrides = {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(port)}

    with EmulatedPod(workload, "collector", docs, tmp_path, overrides) as pod:
        raw = pod.wait_for("metrics", lambda: redis_client.get("metrics"))
        snapshot = json.loads(raw)
        # The course collector's shape (DESIGN §3), which the resource-monitor function reads.
        assert isinstance(snapshot["timestamp"], str)
        assert "cpu_percent-0" in snapshot
        assert "virtual_memory-total" in snapshot
        assert pod.stop() == 0, pod.logs()
