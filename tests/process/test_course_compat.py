"""The course deployment's pod, emulated: only the course env, the function bound read-only at
/opt/usermodule.py, a read-only root and a non-root uid. Functions written for it run unchanged."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.support.processes import RUNTIME, Process, wait_for

FUNCTIONS = Path(__file__).parent / "functions"
REPO = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap (bwrap) is not installed"),
    # The pod's /opt is a fresh mount; a checkout inside /opt would be hidden by it.
    pytest.mark.skipif(REPO.is_relative_to("/opt"), reason="the checkout lies under /opt"),
]


def course_pod(function: Path, valkey_port: int, log: Path) -> Process:
    """Run the runtime the way the course Deployment runs its image, under bwrap."""
    argv = [
        "bwrap",
        "--ro-bind", "/", "/",
        "--dev", "/dev",
        "--proc", "/proc",
        "--tmpfs", "/opt",
        "--ro-bind", str(function), "/opt/usermodule.py",  # the ConfigMap `pyfile` by subPath
        "--remount-ro", "/opt",
        "--unshare-user", "--uid", "10001", "--gid", "10001",
        "--unshare-pid",
        "--die-with-parent",
        "--chdir", "/",
        RUNTIME,
    ]  # fmt: skip
    env = {
        # Exactly the course deployment's variables; the host is the test's loopback Valkey.
        "REDIS_HOST": "127.0.0.1",
        "REDIS_PORT": str(valkey_port),
        "REDIS_INPUT_KEY": "metrics",
        "REDIS_OUTPUT_KEY": "course-output",
        # Test servers bind to loopback only; in a pod the probes port listens on all addresses.
        "HTTP_HOST": "127.0.0.1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    return Process(argv, env, log)


def test_course_pod_runs_resource_monitor(valkey, redis_client, tmp_path: Path) -> None:
    function = REPO / "apps" / "functions" / "resource-monitor" / "usermodule.py"
    pod = course_pod(function, valkey.port, tmp_path / "pod.log")
    try:
        lines = (REPO / "tests" / "fixtures" / "metrics-5s.jsonl").read_text().splitlines()
        redis_client.set("metrics", lines[0])
        first = wait_for(lambda: redis_client.get("course-output"), what="first output")
        redis_client.set("metrics", lines[1])
        wait_for(lambda: redis_client.get("course-output") != first, what="second output")
        result = json.loads(redis_client.get("course-output"))
        assert result["timestamp"] == json.loads(lines[1])["timestamp"]
        assert {"percent-network-egress", "percent-memory-caching", "avg-util-cpu0-60sec"} <= set(
            result
        )
        assert pod.alive, pod.output()
    finally:
        pod.close()


def test_course_pod_runs_course_style_function_unchanged(
    valkey, redis_client, tmp_path: Path
) -> None:
    pod = course_pod(FUNCTIONS / "course_style.py", valkey.port, tmp_path / "pod.log")
    try:
        redis_client.set("metrics", json.dumps({"timestamp": "2026-11-27 23:00:00"}))
        first = json.loads(wait_for(lambda: redis_client.get("course-output"), what="output"))
        assert first["calls"] == 1
        assert first["last_execution"] is None
        assert (first["input_key"], first["output_key"]) == ("metrics", "course-output")
        assert (first["host"], first["port"]) == ("127.0.0.1", valkey.port)
        assert len(first["function_getmtime"]) == len("2026-11-27 23:00:00")
        redis_client.set("metrics", json.dumps({"timestamp": "2026-11-27 23:00:05"}))
        second = json.loads(
            wait_for(
                lambda: (
                    (raw := redis_client.get("course-output"))
                    and json.loads(raw)["calls"] == 2
                    and raw
                ),
                what="second output",
            )
        )
        assert second["last_execution"] is not None  # a datetime, set after the first call
        output = pod.output()
        assert "course-style handler called 2 times" in output  # print() still reaches the log
        assert "kept in memory only" not in output  # datetimes in env: written, faithfully
        assert pod.alive
    finally:
        pod.close()


def test_course_pod_user_is_not_root(valkey, redis_client, tmp_path: Path) -> None:
    probe = tmp_path / "usermodule.py"
    probe.write_text(
        "import os\n\ndef handler(input, context):\n"
        "    try:\n        open('/opt/written', 'w')\n        writable = True\n"
        "    except OSError:\n        writable = False\n"
        "    return {'uid': os.getuid(), 'opt_writable': writable}\n"
    )
    pod = course_pod(probe, valkey.port, tmp_path / "pod.log")
    try:
        redis_client.set("metrics", "{}")
        # An empty dict result is falsy and not written; give the function a key to see.
        redis_client.set("metrics", json.dumps({"timestamp": "x"}))
        result = json.loads(wait_for(lambda: redis_client.get("course-output"), what="output"))
        assert result == {"uid": 10001, "opt_writable": False}
    finally:
        pod.close()
