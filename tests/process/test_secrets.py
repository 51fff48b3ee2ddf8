"""A password in REDIS_URL never shows: not in logs, not in /metrics, /readyz or /healthz."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.http import get
from tests.support.processes import RUNTIME, Process, runtime_env, wait_for
from tests.support.valkey import ValkeyProcess, free_port

FUNCTIONS = Path(__file__).parent / "functions"
PASSWORD = "s3cret-Pa55"
pytestmark = pytest.mark.slow


@pytest.fixture
def protected_valkey(tmp_path: Path) -> Iterator[ValkeyProcess]:
    """A Valkey that requires PASSWORD."""
    server = ValkeyProcess(tmp_path / "valkey", password=PASSWORD)
    server.start()
    yield server
    server.stop()


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_run_password_in_redis_url_never_shows(
    protected_valkey: ValkeyProcess, tmp_path: Path, log_format: str
) -> None:
    port = free_port()
    url = f"redis://default:{PASSWORD}@127.0.0.1:{protected_valkey.port}/0"
    env = runtime_env(
        protected_valkey.port, "out", REDIS_URL=url, FUNCTION_PATH=str(FUNCTIONS / "counter.py"),
        HTTP_PORT=str(port), TRIGGER="notify", INTERVAL="0.5", LOG_LEVEL="DEBUG",
        LOG_FORMAT=log_format,
    )  # fmt: skip
    proc = Process([RUNTIME], env, tmp_path / "runtime.log")
    client = protected_valkey.client()
    try:
        client.set("metrics", json.dumps({"value": 1}))
        wait_for(lambda: client.get("out"), what="output through the password-protected Redis")
        bodies = [get(port, path) for path in ("/metrics", "/readyz", "/healthz")]
        assert [status for status, _ in bodies] == [200, 200, 200]
        protected_valkey.stop()  # connection errors get logged and reach /readyz
        wait_for(lambda: get(port, "/readyz")[0] == 503, what="/readyz to follow Redis down")
        bodies += [get(port, path) for path in ("/metrics", "/readyz")]
    finally:
        proc.close()
    assert "serverless_runtime_redis_up" in bodies[0][1]
    for _, body in bodies:
        assert PASSWORD not in body
    assert PASSWORD not in proc.output()
