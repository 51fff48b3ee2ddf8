"""What the image tests share: which images, how podman runs them like their pods, a container."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("SERVERLESS_IMAGE_TESTS") != "1",
        reason="image tests build and run podman images: run `make test-images`",
    ),
]

TAG = os.environ.get("IMAGE_TAG", "dev")
RUNTIME_IMAGE = f"localhost/serverless-runtime:{TAG}"
DASHBOARD_IMAGE = f"localhost/monitoring-dashboard:{TAG}"
PODMAN = ["podman", "--storage-driver", "vfs"]
# runc here refuses the rlimits podman would copy from the host; the pod's user, read-only root,
# no capabilities and no privilege escalation as in the manifests. Host networking, so that the
# container reaches the test's Valkey on 127.0.0.1; what it serves binds 127.0.0.1 too.
RUN = [
    *PODMAN,
    "--runtime",
    "runc",
    "run",
    "--rm",
    "--pull=never",
    "--network=host",
    "--ulimit=nofile=1024:1024",
    "--ulimit=nproc=1024:1024",
    "--read-only",
    "--cap-drop=ALL",
    "--security-opt=no-new-privileges",
]


class Container:
    """A podman container in the foreground; its output goes to a log file."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.name = f"serverless-test-{uuid.uuid4().hex[:12]}"
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [*RUN, "--name", self.name, *args],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def logs(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, what: str, check: Callable[[], Any], timeout: float = 120.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value:
                return value
            if self.proc.poll() is not None:
                raise AssertionError(f"{what}: exited with {self.proc.returncode}\n{self.logs()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not within {timeout} s\n{self.logs()}")
            time.sleep(0.2)

    def stop(self) -> int:
        """SIGTERM to the container's PID 1, as the kubelet does; its exit code."""
        if self.proc.poll() is None:
            subprocess.run(
                [*PODMAN, "stop", "--time", "20", self.name], check=False, capture_output=True
            )
        return self.proc.wait(timeout=60)
