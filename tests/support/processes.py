"""Start the runtime as a real process and wait for what it does, never for a fixed time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

VENV_BIN = Path(sys.executable).parent
RUNTIME = str(VENV_BIN / "serverless-runtime")


def wait_for(
    probe: Callable[[], T | None],
    timeout: float = 15.0,
    what: str = "condition",
    poll: float = 0.05,
) -> T:
    """Poll `probe` until it returns something truthy; fail the test with `what` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(poll)


class Process:
    """A child process whose combined output goes to a log file the test can read."""

    def __init__(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        log_path: Path,
        cwd: Path | None = None,
    ) -> None:
        self.log_path = log_path
        self._log = log_path.open("ab")
        base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TZ")}
        self.proc = subprocess.Popen(
            list(argv),
            env={**base, **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            start_new_session=True,
        )

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, signum: int) -> None:
        if self.alive:
            self.proc.send_signal(signum)

    def wait(self, timeout: float = 10.0) -> int:
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        if self.alive:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def close(self) -> None:
        self.kill()
        self._log.close()


def runtime_env(valkey_port: int, output_key: str, **extra: str) -> dict[str, str]:
    """The course's env pointed at a local Valkey, plus settings a test adds."""
    return {
        "REDIS_HOST": "127.0.0.1",
        "REDIS_PORT": str(valkey_port),
        "REDIS_INPUT_KEY": "metrics",
        "REDIS_OUTPUT_KEY": output_key,
        "HTTP_HOST": "127.0.0.1",
        "HTTP_PORT": "0",
        **extra,
    }
