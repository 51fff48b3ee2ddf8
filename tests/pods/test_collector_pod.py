"""The dev overlay's collector pod writes host metrics where the runtime reads them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis

from tests.manifests.rendered import find, render_overlay
from tests.pods.emulate import EmulatedPod, bwrap
from tests.support.valkey import ValkeyProcess

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(bwrap() is None, reason="bubblewrap (bwrap) is not installed"),
]


def test_collector_pod_writes_the_metrics_key(
    valkey: ValkeyProcess, redis_client: redis.Redis, tmp_path: Path
) -> None:
    docs = render_overlay("dev")
    workload = find(docs, "Deployment", "metrics-collector")
    # Tests talk to loopback only: Redis is the test's Valkey.
    overrides = {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(valkey.port)}

    with EmulatedPod(workload, "collector", docs, tmp_path, overrides) as pod:
        raw = pod.wait_for("metrics", lambda: redis_client.get("metrics"))
        snapshot = json.loads(raw)
        # The course collector's shape (DESIGN §3), which the resource-monitor function reads.
        assert isinstance(snapshot["timestamp"], str)
        assert "cpu_percent-0" in snapshot
        assert "virtual_memory-total" in snapshot
        assert pod.stop() == 0, pod.logs()
