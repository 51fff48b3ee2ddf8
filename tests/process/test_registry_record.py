"""A real runtime process records itself in the function registry whenever Redis answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from serverless_runtime.registry import FunctionRecord

from tests.support.http import get
from tests.support.processes import runtime_env, wait_for
from tests.support.valkey import ValkeyProcess, free_port

FUNCTIONS = Path(__file__).parent / "functions"
COUNTER = str(FUNCTIONS / "counter.py")
pytestmark = pytest.mark.slow


def test_runtime_records_its_layout_in_the_registry(valkey, redis_client, start) -> None:
    env = runtime_env(
        valkey.port, "word-count", FUNCTION_PATH=COUNTER, TRIGGER="poll", INTERVAL="1"
    )
    start(env)
    raw = wait_for(
        lambda: redis_client.hget("serverless:functions", "word-count"), what="registry entry"
    )
    record = FunctionRecord.parse("word-count", raw)
    assert record is not None
    assert (record.input, record.input_kind, record.history, record.error, record.state) == (
        "metrics",
        "key",
        "word-count:history",
        "word-count:error",
        "word-count:state",
    )
    assert (record.trigger, record.invoke_on) == ("poll", "change")
    assert (record.function, record.handler) == (COUNTER, ":handler")
    assert record.registered_at.endswith("+00:00")
    # HTTP_PORT=0: no /metrics to name.
    assert record.metrics == ""


def test_runtime_records_where_its_metrics_answer(valkey, redis_client, start) -> None:
    port = free_port()
    env = runtime_env(
        valkey.port, "scraped", FUNCTION_PATH=COUNTER, TRIGGER="poll", HTTP_PORT=str(port)
    )
    start(env)
    raw = wait_for(
        lambda: redis_client.hget("serverless:functions", "scraped"), what="registry entry"
    )
    record = FunctionRecord.parse("scraped", raw)
    assert record is not None and record.metrics == f"http://127.0.0.1:{port}/metrics"
    # The URL answers with the runtime's own series: what the dashboard reads.
    # (The probe server starts before the loop, which writes the record once Redis answers.)
    status, text = get(port, "/metrics")
    assert status == 200 and "serverless_runtime_invocations_total" in text


def test_runtime_without_registry_or_with_a_broken_one_still_runs(
    valkey, redis_client, start
) -> None:
    redis_client.set("metrics", json.dumps({"value": "a"}))
    # Disabled: nothing written, the function runs.
    plain = runtime_env(valkey.port, "quiet", FUNCTION_PATH=COUNTER, TRIGGER="poll", INTERVAL="1")
    start({**plain, "FUNCTIONS_KEY": ""}, "quiet")
    # The registry key holds a string: one warning, and the function runs all the same.
    redis_client.set("team:functions", "not a hash")
    broken = runtime_env(valkey.port, "loud", FUNCTION_PATH=COUNTER, TRIGGER="poll", INTERVAL="1")
    proc = start({**broken, "FUNCTIONS_KEY": "team:functions"}, "loud")
    wait_for(lambda: redis_client.get("quiet"), timeout=30, what="output of quiet")
    wait_for(lambda: redis_client.get("loud"), timeout=30, what="output of loud")
    assert not redis_client.exists("serverless:functions")
    assert redis_client.get("team:functions") == "not a hash"
    assert "cannot record 'loud' in the function registry 'team:functions'" in proc.output()
    assert proc.alive


def test_a_restarted_redis_gets_the_record_back(tmp_path: Path, start) -> None:
    # Redis restarted without its data: the runtime records itself again once it reconnects, so
    # the dashboard keeps listing the function.
    server = ValkeyProcess(tmp_path / "valkey")
    server.start()
    try:
        client = server.client()
        env = runtime_env(server.port, "word-count", FUNCTION_PATH=COUNTER, TRIGGER="poll")
        proc = start({**env, "INTERVAL": "0.2"})
        wait_for(lambda: client.hexists("serverless:functions", "word-count"), what="record")
        server.stop()
        wait_for(lambda: "Redis unreachable" in proc.output(), what="the outage noticed")
        server.start()
        wait_for(
            lambda: client.hexists("serverless:functions", "word-count"),
            timeout=30,
            what="the record written again",
        )
        assert proc.output().count("recorded 'word-count' in the function registry") == 2
        assert proc.alive
    finally:
        server.stop()
