"""HANDLER_TIMEOUT stops a handler that runs too long; the loop goes on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.processes import RUNTIME, Process, runtime_env, wait_for

FUNCTIONS = Path(__file__).parent / "functions"
pytestmark = pytest.mark.slow


def test_hanging_handler_times_out_and_next_input_is_processed(
    valkey, redis_client, tmp_path: Path
) -> None:
    env = runtime_env(
        valkey.port, "out", FUNCTION_PATH=str(FUNCTIONS / "hangs.py"),
        HANDLER_TIMEOUT="0.5", TRIGGER="notify", INTERVAL="1",
    )  # fmt: skip
    proc = Process([RUNTIME], env, tmp_path / "runtime.log")
    try:
        redis_client.set("metrics", json.dumps({"hang": True, "timestamp": "t1"}))
        record = json.loads(wait_for(lambda: redis_client.get("out:error"), what="timeout"))
        assert record["kind"] == "timeout"
        assert "HANDLER_TIMEOUT=0.5s" in record["message"]
        assert record["input_timestamp"] == "t1"
        redis_client.set("metrics", json.dumps({"value": "next"}))
        wait_for(lambda: redis_client.get("out"), what="the next input's output")
        assert json.loads(redis_client.get("out")) == {"value": "next"}
        assert proc.alive
    finally:
        proc.close()


def test_timeout_is_not_swallowed_by_handler_except_exception(
    valkey, redis_client, tmp_path: Path
) -> None:
    function = tmp_path / "usermodule.py"
    function.write_text(
        "import time\n\ndef handler(input, context):\n"
        "    try:\n        time.sleep(3600)\n"
        "    except Exception:\n        return {'swallowed': True}\n"
    )
    env = runtime_env(valkey.port, "out", FUNCTION_PATH=str(function), HANDLER_TIMEOUT="0.3")
    proc = Process([RUNTIME], env, tmp_path / "runtime.log")
    try:
        redis_client.set("metrics", "{}")
        record = json.loads(wait_for(lambda: redis_client.get("out:error"), what="timeout"))
        assert record["kind"] == "timeout"
        assert redis_client.get("out") is None
    finally:
        proc.close()
