"""The runtime as a real process against a real Valkey: outputs, failures, outages, signals."""

from __future__ import annotations

import json
import signal
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.support.processes import runtime_env, wait_for
from tests.support.valkey import ValkeyProcess

FUNCTIONS = Path(__file__).parent / "functions"
pytestmark = pytest.mark.slow


def output(client: redis.Redis, key: str = "out") -> Any:
    raw = client.get(key)
    return None if raw is None else json.loads(raw)


def error(client: redis.Redis, key: str = "out:error") -> Any:
    raw = client.get(key)
    return None if raw is None else json.loads(raw)


def _equals(client: redis.Redis, expected: dict[str, Any]) -> bool:
    return bool(output(client) == expected)


def counter_env(valkey: ValkeyProcess, **extra: str) -> dict[str, str]:
    return runtime_env(valkey.port, "out", FUNCTION_PATH=str(FUNCTIONS / "counter.py"), **extra)


def test_runtime_writes_output_when_input_changes(valkey, redis_client, start) -> None:
    proc = start(counter_env(valkey, TRIGGER="notify", INTERVAL="60"))
    redis_client.set("metrics", json.dumps({"value": "a"}))
    # INTERVAL is 60 s: only the keyspace notification can explain an output before that.
    assert wait_for(lambda: output(redis_client), timeout=30, what="output")["value"] == "a"
    redis_client.set("metrics", json.dumps({"value": "b"}))
    wait_for(lambda: (output(redis_client) or {}).get("value") == "b", timeout=30, what="2nd")
    assert proc.alive


def test_runtime_change_policy_skips_unchanged_input(valkey, redis_client, start) -> None:
    redis_client.set("metrics", json.dumps({"value": "same"}))
    start(counter_env(valkey, TRIGGER="poll", INTERVAL="0.05"))
    wait_for(lambda: output(redis_client), what="first output")
    redis_client.set("metrics", json.dumps({"value": "same"}))  # same content, rewritten
    redis_client.set("metrics", json.dumps({"value": "new"}))
    wait_for(lambda: (output(redis_client) or {}).get("value") == "new", what="new output")
    # Dozens of ticks have passed; only the two distinct inputs were processed.
    assert output(redis_client)["calls"] == 2
    assert redis_client.xlen("out:history") == 2


def test_runtime_interval_policy_calls_every_tick(valkey, redis_client, start) -> None:
    redis_client.set("metrics", json.dumps({"value": "same"}))
    start(counter_env(valkey, TRIGGER="poll", INTERVAL="0.05", INVOKE_ON="interval"))
    wait_for(lambda: (output(redis_client) or {}).get("calls", 0) >= 5, what="5 calls")


@pytest.mark.parametrize("trigger", ["auto", "notify", "poll"])
def test_runtime_interval_policy_calls_once_per_tick_whatever_the_trigger(
    valkey, redis_client, start, trigger: str
) -> None:
    # The course cadence: keyspace events add no calls. Each round writes a burst of inputs
    # right after a tick's output (ticks are 2 s apart, a burst takes milliseconds), so the next
    # tick alone sees them: one call per round, with the latest input.
    redis_client.set("metrics", json.dumps({"value": "start"}))
    proc = start(counter_env(valkey, TRIGGER=trigger, INTERVAL="2", INVOKE_ON="interval"))
    wait_for(lambda: output(redis_client), what="first output")
    assert output(redis_client) == {"calls": 1, "value": "start"}
    for round_ in range(1, 4):
        for n in range(5):
            redis_client.set("metrics", json.dumps({"value": f"round {round_} write {n}"}))
        latest = {"calls": round_ + 1, "value": f"round {round_} write 4"}
        wait_for(partial(_equals, redis_client, latest), what=f"round {round_}", timeout=30)
    # No write at all: the next tick still calls, with the current (unchanged) input.
    wait_for(lambda: output(redis_client)["calls"] == 5, what="an unchanged tick", timeout=30)
    assert output(redis_client) == {"calls": 5, "value": "round 3 write 4"}
    assert redis_client.xlen("out:history") == 5
    assert proc.alive


@pytest.mark.parametrize(
    ("raw", "kind", "message"),
    [
        ("not json {", "invalid-input", "is not JSON"),
        ("[1, 2, 3]", "invalid-input", "is a JSON list, expected an object"),
        (json.dumps({"fail": "raise"}), "handler-error", "RuntimeError: asked to fail"),
        (json.dumps({"fail": "unserializable"}), "invalid-output", "not JSON"),
        (json.dumps({"fail": "nan"}), "invalid-output", "the result['value'][1] is not a JSON"),
        (json.dumps({"fail": "env-list"}), "invalid-output", "context.env was replaced by a list"),
    ],
)
def test_runtime_failure_is_recorded_and_loop_goes_on(
    valkey, redis_client, start, raw: str, kind: str, message: str
) -> None:
    proc = start(counter_env(valkey, TRIGGER="poll", INTERVAL="0.05"))
    redis_client.set("metrics", json.dumps({"value": "good"}))
    wait_for(lambda: output(redis_client), what="good output")
    redis_client.set("metrics", raw)
    record = wait_for(lambda: error(redis_client), what="error record")
    assert record["kind"] == kind
    assert message in record["message"]
    # A traceback only where the function's code raised (its frames); the other rows' messages
    # say all there is, the runtime's frames would be noise.
    raised = kind == "handler-error"
    assert ("Traceback" in record["traceback"]) is raised
    assert record["at"].endswith("+00:00")
    assert output(redis_client) == {"calls": 1, "value": "good"}  # last good output stays
    assert ("Traceback" in proc.output()) is raised
    redis_client.set("metrics", json.dumps({"value": "after"}))
    after = wait_for(lambda: (output(redis_client) or {}).get("value") == "after", what="recovery")
    assert after
    # The failed call's change to context.env was rolled back: this is the 2nd counted call.
    assert output(redis_client)["calls"] == 2
    assert proc.alive


def test_runtime_missing_input_key_waits_without_error(valkey, redis_client, start) -> None:
    proc = start(counter_env(valkey, TRIGGER="poll", INTERVAL="0.05"))
    wait_for(lambda: "waiting for input key 'metrics'" in proc.output(), what="waiting log")
    assert error(redis_client) is None
    redis_client.set("metrics", json.dumps({"value": 1}))
    wait_for(lambda: output(redis_client), what="output once the key exists")


def test_runtime_broken_function_is_reported_and_process_stays_up(
    valkey, redis_client, start, tmp_path: Path
) -> None:
    function = tmp_path / "usermodule.py"
    function.write_text("import missing_dependency_xyz\n")
    proc = start(runtime_env(valkey.port, "out", FUNCTION_PATH=str(function), INTERVAL="0.05"))
    record = wait_for(lambda: error(redis_client), what="load error")
    assert record["kind"] == "dependency-missing"
    assert str(function) in record["message"]
    assert "missing_dependency_xyz" in record["message"]
    assert proc.alive


def test_runtime_annotation_naming_an_unimported_type_is_a_load_error(
    valkey, redis_client, start, tmp_path: Path
) -> None:
    # As under a plain import: the runtime's own future imports do not reach the function.
    function = tmp_path / "usermodule.py"
    annotated = "def handler(input: dict, context: Context) -> dict:\n    return {'ok': 1}\n"
    function.write_text(annotated)
    proc = start(runtime_env(valkey.port, "out", FUNCTION_PATH=str(function), INTERVAL="0.05"))
    redis_client.set("metrics", json.dumps({"value": "a"}))
    record = wait_for(lambda: error(redis_client), what="load error")
    assert record["kind"] == "import-error"
    assert record["message"] == (
        f"{function} raised while being imported: NameError: name 'Context' is not defined"
    )
    assert output(redis_client) is None
    # The same file with its own `from __future__ import annotations` loads and runs.
    function.write_text("from __future__ import annotations\n\n" + annotated)
    assert wait_for(lambda: output(redis_client), what="output") == {"ok": 1}
    assert proc.alive


def test_runtime_resumes_after_redis_restart(own_valkey, start) -> None:
    client = own_valkey.client()
    client.set("metrics", json.dumps({"value": 1}))
    proc = start(counter_env(own_valkey, TRIGGER="notify", INTERVAL="0.2"))
    wait_for(lambda: output(client), what="first output")
    own_valkey.stop()
    wait_for(lambda: "Redis unreachable" in proc.output(), what="outage noticed")
    assert proc.alive
    own_valkey.start()  # same port, empty data: no persistence
    client = own_valkey.client()
    client.set("metrics", json.dumps({"value": 2}))
    wait_for(lambda: (output(client) or {}).get("value") == 2, timeout=30, what="resumed")
    assert "Redis reachable again" in proc.output()


def test_runtime_waits_for_redis_at_start(tmp_path: Path, start) -> None:
    server = ValkeyProcess(tmp_path / "late")
    proc = start(counter_env(server, TRIGGER="notify", INTERVAL="0.2"))
    wait_for(lambda: "Redis unreachable" in proc.output(), what="unreachable at start")
    server.start()
    try:
        client = server.client()
        client.set("metrics", json.dumps({"value": 1}))
        wait_for(lambda: output(client), timeout=30, what="output after Redis came up")
    finally:
        server.stop()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_runtime_stops_cleanly_on_signal(valkey, redis_client, start, signum: int) -> None:
    proc = start(counter_env(valkey, TRIGGER="notify", INTERVAL="30"))
    redis_client.set("metrics", json.dumps({"value": 1}))
    wait_for(lambda: output(redis_client), what="output")
    proc.signal(signum)
    assert proc.wait(timeout=10) == 0
    assert "stopped" in proc.output()


def test_runtime_finishes_call_in_flight_before_stopping(
    valkey, redis_client, start, tmp_path: Path
) -> None:
    function = tmp_path / "usermodule.py"
    function.write_text(
        "import pathlib, time\n\n"
        "def handler(input, context):\n"
        "    pathlib.Path(input['marker']).touch()\n"
        "    time.sleep(1.0)\n"
        "    return {'done': input['n']}\n"
    )
    marker = tmp_path / "called"
    proc = start(runtime_env(valkey.port, "out", FUNCTION_PATH=str(function), TRIGGER="notify"))
    redis_client.set("metrics", json.dumps({"n": 7, "marker": str(marker)}))
    wait_for(marker.exists, what="the handler to start")
    proc.signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    assert output(redis_client) == {"done": 7}
