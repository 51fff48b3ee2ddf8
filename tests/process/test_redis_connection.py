"""Connection settings and log format, against a Valkey that requires a password."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
import redis

from tests.support.processes import RUNTIME, Process, runtime_env, wait_for
from tests.support.valkey import ValkeyProcess

FUNCTIONS = Path(__file__).parent / "functions"
pytestmark = pytest.mark.slow


@pytest.fixture
def secured(tmp_path: Path):
    server = ValkeyProcess(tmp_path / "valkey", password="s3cret")
    server.start()
    yield server
    server.stop()


def test_redis_url_with_password_and_db(secured, tmp_path: Path) -> None:
    env = runtime_env(secured.port, "out", FUNCTION_PATH=str(FUNCTIONS / "counter.py"))
    env["REDIS_URL"] = f"redis://:s3cret@127.0.0.1:{secured.port}/3"
    env["REDIS_HOST"] = "unused.invalid"  # REDIS_URL wins over host and port
    proc = Process([RUNTIME], env, tmp_path / "runtime.log")
    db3 = redis.Redis(port=secured.port, password="s3cret", db=3, decode_responses=True)
    try:
        db3.set("metrics", json.dumps({"value": "in db 3"}))
        out = wait_for(lambda: db3.get("out"), what="output in db 3")
        assert json.loads(str(out))["value"] == "in db 3"
    finally:
        proc.close()


def test_redis_password_with_host_and_port_and_json_logs(secured, tmp_path: Path) -> None:
    env = runtime_env(
        secured.port, "out", FUNCTION_PATH=str(FUNCTIONS / "counter.py"),
        REDIS_PASSWORD="s3cret", LOG_FORMAT="json",
    )  # fmt: skip
    proc = Process([RUNTIME], env, tmp_path / "runtime.log")
    client = secured.client()
    try:
        client.set("metrics", json.dumps({"fail": "raise"}))
        wait_for(lambda: client.get("out:error"), what="error record")
        records = [json.loads(line) for line in proc.output().splitlines() if line.strip()]
        failure = next(r for r in records if r.get("kind") == "handler-error")
        assert failure["level"] == "ERROR"
        assert "asked to fail" in failure["message"]
        assert "RuntimeError" in failure["traceback"]
    finally:
        proc.close()


def test_wrong_password_is_retried_not_fatal(secured, tmp_path: Path) -> None:
    env = runtime_env(
        secured.port, "out", FUNCTION_PATH=str(FUNCTIONS / "counter.py"), REDIS_PASSWORD="wrong"
    )
    proc = Process([RUNTIME], env, tmp_path / "runtime.log")
    try:
        wait_for(
            lambda: "Redis refused the credentials" in proc.output(), what="the auth failure said"
        )
        assert proc.alive
        proc.signal(signal.SIGTERM)  # honoured while it keeps trying
        assert proc.wait(timeout=10) == 0
        assert proc.output().count("Redis refused the credentials") == 1, "said once"
        assert "wrong" not in proc.output()
    finally:
        proc.close()
