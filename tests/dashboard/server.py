"""The dashboard as a separate process, served by gunicorn exactly as in production."""

from __future__ import annotations

import json as _json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.valkey import free_port

# Loopback only: never let an HTTP(S)_PROXY from the environment route test traffic.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def dashboard_command() -> list[str]:
    """The `monitoring-dashboard` console script of this environment."""
    script = Path(sys.executable).with_name("monitoring-dashboard")
    return [str(script)] if script.exists() else [sys.executable, "-m", "monitoring_dashboard"]


def clean_environ(**settings: str) -> dict[str, str]:
    """This process's environment without dashboard settings, plus the given ones."""
    prefixes = ("REDIS_", "DASH_", "REFRESH_SECONDS", "HISTORY_MINUTES", "LOG_LEVEL")
    env = {key: value for key, value in os.environ.items() if not key.startswith(prefixes)}
    env.update(settings)
    return env


def http_get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    """GET url; return the status and the body (errors included)."""
    try:
        with _OPENER.open(url, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


class HttpResponse:
    """The parts of a Flask test response that tests read, for a real HTTP answer."""

    def __init__(self, status_code: int, body: bytes) -> None:
        self.status_code = status_code
        self._body = body

    def get_data(self, as_text: bool = False) -> str | bytes:
        return self._body.decode() if as_text else self._body

    def get_json(self) -> Any:
        return _json.loads(self._body)


class HttpClient:
    """`get` and `post(json=...)` like Flask's test client, against a running server."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def get(self, path: str) -> HttpResponse:
        return self._send(urllib.request.Request(self.base_url + path))

    def post(self, path: str, json: Any) -> HttpResponse:
        body = _json.dumps(json).encode()
        headers = {"Content-Type": "application/json"}
        return self._send(urllib.request.Request(self.base_url + path, body, headers))

    def _send(self, request: urllib.request.Request) -> HttpResponse:
        try:
            with _OPENER.open(request, timeout=10) as response:
                return HttpResponse(response.status, response.read())
        except urllib.error.HTTPError as exc:
            return HttpResponse(exc.code, exc.read())


class DashboardProcess:
    """A dashboard server on 127.0.0.1 with its own port and log file."""

    def __init__(
        self,
        env: dict[str, str],
        log_path: Path,
        command: Callable[[str], list[str]] | None = None,
    ) -> None:
        self.env = env
        self.log_path = log_path
        self.port = free_port()
        bind = f"127.0.0.1:{self.port}"
        self.command = command(bind) if command else [*dashboard_command(), "--bind", bind]
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def start(self, timeout: float = 60.0) -> None:
        """Start the server and wait until /healthz answers."""
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                self.command, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while True:
            try:
                if http_get(f"{self.url}/healthz", timeout=1)[0] == 200:
                    return
            except OSError:
                pass
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"dashboard did not start:\n{self.log()}")
            time.sleep(0.1)

    def stop(self) -> int | None:
        """SIGTERM, as Kubernetes stops a pod; return the exit code."""
        if self._proc is None:
            return None
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        code = self._proc.returncode
        self._proc = None
        return code

    def log(self) -> str:
        """What the server wrote so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
