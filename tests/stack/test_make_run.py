"""`make run`, as a user runs it: outputs appear, and Ctrl-C leaves no process behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
import redis

from scripts.function_folders import FUNCTIONS
from tests.stack.ports import stack_ports
from tests.support.processes import Process, wait_for

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def session_processes(sid: int) -> list[str]:
    """Command lines of the processes still in the session `make run` was started in."""
    listing = subprocess.run(
        ["ps", "-e", "-o", "sid=,pid=,args="], capture_output=True, text=True, check=True
    ).stdout
    return [line for line in listing.splitlines() if line.split(None, 1)[0] == str(sid)]


def test_make_run_shows_outputs_and_stops_cleanly(tmp_path: Path) -> None:
    ports = stack_ports(len([p for p in FUNCTIONS.iterdir() if (p / "function.env").is_file()]))
    redis_port = int(ports["DEV_REDIS_PORT"])
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", str(tmp_path)),
        **ports,
        # Its own run directory: a stack the developer runs meanwhile holds the default one.
        "DEV_RUN_DIR": str(tmp_path / "run"),
        # The user's TLS trust and uv settings: uv may fetch cpu-stats' packages for its venv.
        **{k: v for k, v in os.environ.items() if k.startswith(("SSL_CERT_", "UV_"))},
    }
    stack = Process(["make", "--no-print-directory", "run"], env, tmp_path / "run.log", cwd=REPO)
    sid = stack.proc.pid
    try:
        client = redis.Redis(port=redis_port, decode_responses=True, socket_timeout=2)

        def output() -> dict[str, object] | None:
            try:
                raw = client.get("resource-monitor")
            except redis.ConnectionError:
                return None
            return None if raw is None else json.loads(raw)

        result = wait_for(output, timeout=15, what="the first output of `make run`")
        cpus = len(
            [k for k in json.loads(client.get("metrics") or "{}") if k.startswith("cpu_percent-")]
        )
        expected = {"percent-network-egress", "percent-memory-caching", "timestamp"}
        expected |= {f"avg-util-cpu{n}-60sec" for n in range(cpus)}
        assert expected <= set(result), stack.output()

        # Every function folder runs: cpu-stats, from its venv with numpy (made on first use).
        def cpu_stats() -> dict[str, object] | None:
            raw = client.get("cpu-stats")
            return None if raw is None else json.loads(raw)

        stats = wait_for(cpu_stats, timeout=180, what="the first output of cpu-stats")
        assert {f"p95-util-cpu{n}-60sec" for n in range(cpus)} <= set(stats), stack.output()
        log = stack.output()
        assert f"redis://127.0.0.1:{redis_port}/0" in log
        assert "metrics -> cpu-stats" in log
        assert "metrics -> resource-monitor" in log
        assert "scripts/watch.py" in log
        # Ctrl-C in a terminal signals the whole foreground process group.
        os.killpg(sid, signal.SIGINT)
        stack.wait(timeout=30)
        assert "Stopped." in stack.output()
        assert session_processes(sid) == []
    finally:
        stack.close()
