"""The rendered dashboard pod serves its page and health check on its port."""

from __future__ import annotations

import json
import re
import shutil
import urllib.request
from pathlib import Path

import pytest
import redis

from tests.manifests.rendered import OUTPUT_KEYS, OVERLAYS, Doc, find, render_overlay
from tests.pods.emulate import VENV, EmulatedPod, bwrap
from tests.pods.redis_pod import overlay_redis
from tests.support.valkey import ValkeyProcess, free_port

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(bwrap() is None, reason="bubblewrap (bwrap) is not installed"),
    pytest.mark.skipif(
        shutil.which("monitoring-dashboard", path=str(VENV / "bin")) is None,
        reason="the monitoring-dashboard console script is not installed in the virtualenv",
    ),
]


def _get(url: str) -> tuple[int, str] | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except OSError:
        return None


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_dashboard_pod_serves_its_page(overlay: str, valkey: ValkeyProcess, tmp_path: Path) -> None:
    docs = render_overlay(overlay)
    # dev's Redis as its Deployment starts it (password from the Secret); else the shared Valkey.
    with overlay_redis(docs, valkey, tmp_path / "redis") as (port, redis_client):
        _serves_its_page(overlay, docs, port, redis_client, tmp_path)


def _serves_its_page(
    overlay: str, docs: list[Doc], redis_port: int, redis_client: redis.Redis, tmp_path: Path
) -> None:
    workload = find(docs, "Deployment", "monitoring-dashboard")
    port = free_port()

    def loopback(argv: list[str]) -> list[str]:
        # Tests bind loopback only: the pod's --bind 0.0.0.0:8050 becomes 127.0.0.1:<free port>.
        at = argv.index("--bind") + 1
        assert argv[at] == "0.0.0.0:8050"
        return [*argv[:at], f"127.0.0.1:{port}", *argv[at + 1 :]]

    overrides = {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(redis_port)}
    output = {"percent-network-egress": 12.5, "timestamp": "2026-11-27 23:22:01.123456"}
    redis_client.set(OUTPUT_KEYS[overlay], json.dumps(output))
    base = f"http://127.0.0.1:{port}"

    with EmulatedPod(workload, "dashboard", docs, tmp_path, overrides, loopback) as pod:
        health = pod.wait_for("/healthz", lambda: _get(f"{base}/healthz"))
        assert health[0] == 200
        status, page = pod.wait_for("the page", lambda: _get(f"{base}/"))
        assert status == 200
        assert "_dash-config" in page
        # The layout is built from the pod's settings, and Bootstrap comes from the app itself.
        status, layout = pod.wait_for("layout", lambda: _get(f"{base}/_dash-layout"))
        assert status == 200 and json.loads(layout)
        (stylesheet,) = re.findall(r'href="([^"]*bootstrap[^"]*\.css[^"]*)"', page)
        css = _get(f"{base}{stylesheet}")
        assert css is not None and css[0] == 200 and ".btn" in css[1]
        assert pod.stop() == 0, pod.logs()
