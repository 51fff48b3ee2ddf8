"""The running runtime's probes and metrics, as Kubernetes and Prometheus see them."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.http import get
from tests.support.processes import RUNTIME, Process, runtime_env, wait_for
from tests.support.valkey import free_port

FUNCTIONS = Path(__file__).parent / "functions"
pytestmark = pytest.mark.slow


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_count_what_happened(own_valkey, tmp_path: Path) -> None:
    port = free_port()
    env = runtime_env(
        own_valkey.port, "out", FUNCTION_PATH=str(FUNCTIONS / "counter.py"),
        HTTP_PORT=str(port), TRIGGER="notify", INTERVAL="0.5",
    )  # fmt: skip
    proc = Process([RUNTIME], env, tmp_path / "runtime.log")
    client = own_valkey.client()
    try:
        wait_for(lambda: get(port, "/healthz")[0] == 200, what="/healthz")
        for value in ({"value": 1}, {"value": 2}, {"fail": "raise"}):
            client.set("metrics", json.dumps(value))
            wait_for(partial(_seen, client, value), what=f"call on {value}")
        status, text = get(port, "/metrics")
        assert status == 200
        found = samples(text)
        assert found[("serverless_runtime_invocations_total", (("outcome", "success"),))] == 2
        assert found[("serverless_runtime_invocations_total", (("outcome", "handler-error"),))] == 1
        assert found[("serverless_runtime_invocation_duration_seconds_count", ())] == 3
        assert found[("serverless_runtime_leader", ())] == 1
        assert found[("serverless_runtime_function_loaded", ())] == 1
        assert found[("serverless_runtime_state_bytes", ())] == len(client.get("out:state"))
        assert get(port, "/readyz")[0] == 200

        own_valkey.stop()
        wait_for(lambda: get(port, "/readyz")[0] == 503, what="/readyz to follow Redis down")
        assert get(port, "/healthz")[0] == 200  # a Redis outage is not a reason to restart
        own_valkey.start()
        wait_for(lambda: get(port, "/readyz")[0] == 200, timeout=30, what="/readyz back")
    finally:
        proc.close()


def _seen(client, value: dict[str, Any]) -> bool:
    if "fail" in value:
        return client.get("out:error") is not None
    return bool(json.loads(client.get("out") or "{}").get("value") == value["value"])


def test_healthz_turns_unhealthy_when_the_loop_is_stuck(valkey, redis_client, tmp_path) -> None:
    port = free_port()
    env = runtime_env(
        valkey.port, "out", FUNCTION_PATH=str(FUNCTIONS / "hangs.py"),
        HTTP_PORT=str(port), TRIGGER="notify", INTERVAL="1",
    )  # fmt: skip
    proc = Process([RUNTIME], env, tmp_path / "runtime.log")
    try:
        wait_for(lambda: get(port, "/healthz")[0] == 200, what="healthy")
        redis_client.set("metrics", json.dumps({"hang": True}))  # no HANDLER_TIMEOUT: stuck

        def unhealthy() -> str | None:
            status, body = get(port, "/healthz")
            return body if status == 503 else None

        assert "heartbeat" in wait_for(unhealthy, timeout=30, what="unhealthy")
    finally:
        proc.close()
