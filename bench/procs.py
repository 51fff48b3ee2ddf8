"""Child processes under measurement, and waiting for the keys they write."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

import redis

# Only what a process needs to start; nothing else from the caller's environment leaks in.
PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR")


class Child:
    """A started process whose output goes to a log file; stopped with SIGTERM on exit."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("ab")
        base = {name: os.environ[name] for name in PASSED_ENV if name in os.environ}
        self.proc = subprocess.Popen(
            list(argv),
            env={**base, **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        """The process id."""
        return self.proc.pid

    def check(self) -> None:
        """Raise with the end of the log when the process has exited."""
        if self.proc.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{self.proc.args!r} exited with {self.proc.returncode}:\n{tail}")

    def rss_bytes(self) -> int:
        """Resident set size now, from /proc/<pid>/status."""
        return rss_bytes(self.pid)

    def cpu_seconds(self) -> float:
        """User + system CPU time used so far, from /proc/<pid>/stat (clock-tick resolution)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rpartition(")")[2].split()
        # Fields 14 and 15 of proc(5), counted after the command name: utime, stime.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not exit within ten seconds."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def __enter__(self) -> Child:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def rss_bytes(pid: int) -> int:
    """VmRSS of a process in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def enable_key_events(client: redis.Redis) -> None:
    """Publish keyspace events for string (`$`) commands, which the watchers below rely on."""
    current = str(client.config_get("notify-keyspace-events").get("notify-keyspace-events", ""))
    wanted = "".join(sorted(set(current) | {"K", "$"}))
    client.config_set("notify-keyspace-events", wanted)


class KeyWatcher:
    """Wakes when a key is written, via a keyspace notification: no polling in the measurement."""

    def __init__(self, client: redis.Redis, key: str) -> None:
        self._pubsub = client.pubsub()
        channel = f"__keyspace@0__:{key}"
        self._pubsub.subscribe(channel)
        # Wait for the confirmation, so that no write can race ahead of the subscription.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            message = self._pubsub.get_message(timeout=0.5)
            if message is not None and message["type"] == "subscribe":
                return
        raise RuntimeError(f"could not subscribe to {channel}")

    def wait(self, timeout: float) -> float:
        """perf_counter() at the next write of the key; TimeoutError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no write of the watched key")
            message = self._pubsub.get_message(timeout=remaining)
            if message is not None and message["type"] == "message":
                return time.perf_counter()

    def close(self) -> None:
        """Unsubscribe and close the connection."""
        self._pubsub.close()
