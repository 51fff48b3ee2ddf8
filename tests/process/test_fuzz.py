"""Fuzz: thousands of generated inputs through the real runtime and resource-monitor."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.processes import RUNTIME, Process, runtime_env, wait_for
from tests.support.valkey import ValkeyProcess

REPO = Path(__file__).resolve().parents[2]
FUNCTION = REPO / "apps" / "functions" / "resource-monitor" / "usermodule.py"
pytestmark = pytest.mark.slow

METRIC_KEYS = [
    "timestamp",
    "virtual_memory-total",
    "virtual_memory-cached",
    "virtual_memory-buffers",
    "net_io_counters_eth0-bytes_sent",
    "net_io_counters_eth0-bytes_recv",
    "net_io_counters_wlan0-bytes_sent",
    "cpu_percent-0",
    "cpu_percent-1",
    "cpu_percent-63",
]
odd_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.just("2026-11-27 23:22:01.123456"),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
nested = st.recursive(st.integers(), lambda inner: st.lists(inner, max_size=2), max_leaves=60)
metric_objects = st.dictionaries(
    st.sampled_from(METRIC_KEYS), odd_values, max_size=len(METRIC_KEYS)
)
payloads = st.one_of(
    st.binary(max_size=64).map(lambda b: b"\xff" + b),  # never valid JSON
    metric_objects.map(lambda d: json.dumps(d).encode()),  # NaN/Infinity tokens included
    st.dictionaries(st.text(max_size=8), nested, max_size=3).map(lambda d: json.dumps(d).encode()),
    nested.map(lambda v: json.dumps({"deep": [[[[[v]]]]] * 3}).encode()),
    st.text(min_size=1, max_size=5).map(lambda s: json.dumps({"timestamp": s * 20000}).encode()),
    st.one_of(st.integers(), st.text(), st.lists(st.integers())).map(
        lambda v: json.dumps(v).encode()
    ),
)


@pytest.fixture(scope="module")
def fuzz_runtime(tmp_path_factory) -> Iterator[tuple[redis.Redis, Process]]:
    workdir = tmp_path_factory.mktemp("fuzz")
    server = ValkeyProcess(workdir / "valkey")
    server.start()
    env = runtime_env(server.port, "out", FUNCTION_PATH=str(FUNCTION), TRIGGER="notify")
    proc = Process([RUNTIME, "run"], {**env, "LOG_LEVEL": "CRITICAL"}, workdir / "runtime.log")
    client = redis.Redis(port=server.port, socket_timeout=5)
    try:
        yield client, proc
    finally:
        client.close()
        proc.close()
        server.stop()


counter = iter(range(10**9))


def sane(output: dict[str, object]) -> bool:
    """Finite, non-negative figures; shares of a whole at most 100 (caching may exceed it
    only when the input says cached + buffers > total, which the function reports as is)."""
    for key, value in output.items():
        if key == "timestamp":
            continue
        if not isinstance(value, float) or not math.isfinite(value) or value < 0:
            return False
        if key != "percent-memory-caching" and value > 100:
            return False
    return True


@settings(
    max_examples=2000,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(payload=payloads)
def test_fuzz_inputs_give_output_or_error_never_a_crash(fuzz_runtime, payload: bytes) -> None:
    client, proc = fuzz_runtime
    n = next(counter)
    # Make every input distinct, so each one is processed (INVOKE_ON=change).
    if payload.startswith(b"{") and payload != b"{}":
        payload = b'{"fuzz-id": %d, ' % n + payload[1:]
    else:
        payload = (
            payload + b" " * (n % 7) + b"\n" * (n // 7 % 3)
            if payload[:1] != b"\xff"
            else (payload + str(n).encode())
        )
    before_error = client.get("out:error")
    client.set("metrics", payload)
    digest = hashlib.blake2b(payload, digest_size=16).hexdigest().encode()

    def handled() -> str | None:
        if client.get("out:input-digest") == digest:
            return "output"
        if client.get("out:error") != before_error:
            return "error"
        return None

    outcome = wait_for(handled, timeout=30, what=f"input {n} to be handled", poll=0.002)
    assert proc.alive, proc.output()[-2000:]
    if outcome == "output":
        raw = client.get("out")
        assert raw is not None
        assert sane(json.loads(raw))
    else:
        record = json.loads(client.get("out:error"))
        assert record["kind"] in {"invalid-input", "handler-error", "invalid-output"}
