"""The runtime never crash-loops: each row of the fault matrix against a real Valkey and process.

Poison inputs, hostile functions and Redis faults are recorded (at `<out>:error`, or in the log
when Redis itself refuses the write) and the loop goes on; SIGTERM always ends the process.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.support.http import get
from tests.support.processes import RUNTIME, Process, runtime_env, wait_for
from tests.support.valkey import ValkeyProcess, free_port

FUNCTIONS = Path(__file__).parent / "functions"
pytestmark = pytest.mark.slow

ECHO = "def handler(input, context):\n    return {'echo': input.get('n')}\n"

Start = Callable[..., Process]


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Start]:
    """Start a runtime on a function's source text; every one is killed at the end."""
    started: list[Process] = []

    def run(port: int, source: str = ECHO, name: str = "runtime", **env: str) -> Process:
        function = tmp_path / f"{name}.py"
        if not function.exists():
            function.write_text(source)
        settings = {"FUNCTION_PATH": str(function), "INTERVAL": "0.1", **env}
        proc = Process([RUNTIME], runtime_env(port, "out", **settings), tmp_path / f"{name}.log")
        started.append(proc)
        return proc

    yield run
    for proc in started:
        proc.close()


def error(client: redis.Redis) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(client.get("out:error") or "{}")
    return value


def echoed(client: redis.Redis) -> Any:
    return json.loads(client.get("out") or "{}").get("echo")


def not_json(constant: str) -> None:
    raise AssertionError(f"{constant} written to Redis")


def wait_error(client: redis.Redis, kind: str, text: str = "") -> dict[str, Any]:
    def seen() -> dict[str, Any] | None:
        record = error(client)
        return record if record.get("kind") == kind and text in record["message"] else None

    return wait_for(seen, what=f"a {kind} record saying {text!r}")


def goes_on(client: redis.Redis, proc: Process, n: int = 99) -> None:
    """A good input after the fault is processed by the same process."""
    client.set("metrics", json.dumps({"n": n}))
    wait_for(lambda: echoed(client) == n, what="the next good input processed")
    assert proc.alive


# -- poison inputs ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["hash", "list", "stream"])
def test_input_key_of_the_wrong_type_is_invalid_input(valkey, redis_client, start, kind) -> None:
    write = {
        "hash": lambda: redis_client.hset("metrics", "n", 1),
        "list": lambda: redis_client.rpush("metrics", 1),
        "stream": lambda: redis_client.xadd("metrics", {"n": 1}),
    }
    write[kind]()
    proc = start(valkey.port)
    record = wait_error(redis_client, "invalid-input", f"holds a {kind}")
    assert "expected a JSON object as a string" in record["message"]
    redis_client.delete("metrics")
    goes_on(redis_client, proc)
    assert proc.output().count(f"holds a {kind}") == 1, "recorded once, not every tick"


def test_input_nested_a_thousand_levels_is_invalid_input(valkey, redis_client, start) -> None:
    redis_client.set("metrics", '{"a":' * 1000 + "1" + "}" * 1000)
    proc = start(valkey.port)
    wait_error(redis_client, "invalid-input", "nested deeper than 500 levels")
    goes_on(redis_client, proc)


def test_input_over_max_input_bytes_is_refused_unread(valkey, redis_client, start) -> None:
    redis_client.set("metrics", json.dumps({"n": 1, "pad": "x" * 5000}))
    proc = start(valkey.port, MAX_INPUT_BYTES="4096")
    wait_error(redis_client, "invalid-input", "over MAX_INPUT_BYTES=4096")
    goes_on(redis_client, proc)


# -- hostile functions ------------------------------------------------------------------------

HOSTILE = """
import signal, sys, threading, time

class Falsy:
    def __bool__(self):
        raise RuntimeError("no truth here")

def handler(input, context):
    how = input.get("how")
    print("calling", how, flush=True)
    if how == "exit":
        sys.exit(3)
    if how == "system-exit":
        raise SystemExit("bye")
    if how == "interrupt":
        raise KeyboardInterrupt
    if how == "deep-result":
        deep = []
        for _ in range(1000):
            deep = [deep]
        return {"deep": deep}
    if how == "deep-state":
        deep = []
        for _ in range(1000):
            deep = [deep]
        context.env["deep"] = deep
        return {"echo": "deep-state"}
    if how in ("deep-tuple-result", "deep-tuple-state"):
        chain = ()
        for _ in range(20000):  # orjson, not guarded, crashed the process on this
            chain = (chain,)
        if how == "deep-tuple-result":
            return {"deep": chain}
        context.env["deep"] = chain
        return {"echo": how}
    if how == "nan-state":
        context.env["avg"] = [1.0, float("nan")]
        return {"echo": "nan-state"}
    if how == "truth":
        return Falsy()
    if how == "big-output":
        return {"pad": "x" * 5000}
    if how == "big-state":
        context.env["pad"] = "x" * 50000
        return {"echo": "big-state"}
    if how == "swallow-timeout":
        try:
            time.sleep(5)
        except BaseException:
            pass
        return {"echo": "swallowed"}
    if how == "ignore-alarm":
        signal.signal(signal.SIGALRM, signal.SIG_IGN)
        time.sleep(60)
    if how == "thread":
        threading.Thread(target=time.sleep, args=(3600,)).start()
    if how == "spin":
        while True:
            pass
    return {"echo": input.get("n")}
"""


@pytest.mark.parametrize(
    ("how", "kind", "text"),
    [
        ("exit", "handler-error", "SystemExit: 3"),
        ("system-exit", "handler-error", "SystemExit: bye"),
        ("interrupt", "handler-error", "KeyboardInterrupt"),
        ("deep-result", "invalid-output", "the result is nested too deeply"),
        ("deep-tuple-result", "invalid-output", "the result is nested too deeply"),
        ("truth", "invalid-output", "RuntimeError: no truth here"),
        ("big-output", "invalid-output", "over MAX_OUTPUT_BYTES=4096"),
    ],
)
def test_hostile_function_is_recorded_and_the_loop_goes_on(
    valkey, redis_client, start, how, kind, text
) -> None:
    proc = start(valkey.port, HOSTILE, MAX_OUTPUT_BYTES="4096", MAX_STATE_BYTES="10000")
    goes_on(redis_client, proc, 1)
    redis_client.set("metrics", json.dumps({"how": how}))
    wait_error(redis_client, kind, text)
    assert echoed(redis_client) == 1, "the last good output stays"
    goes_on(redis_client, proc, 2)


@pytest.mark.parametrize(
    ("how", "text"),
    [
        ("deep-state", "context.env is nested too deeply"),
        ("deep-tuple-state", "context.env is nested too deeply"),
        ("big-state", "over MAX_STATE_BYTES=10000"),
    ],
)
def test_state_that_is_not_strict_json_is_reported_and_kept_in_memory(
    valkey, redis_client, start, how, text
) -> None:
    proc = start(valkey.port, HOSTILE, MAX_STATE_BYTES="10000")
    redis_client.set("metrics", json.dumps({"how": how}))
    record = wait_error(redis_client, "invalid-state", text)  # said before the commit
    assert "kept in memory only" in record["message"]
    raw = wait_for(lambda: redis_client.get("out:state"), what="the commit")
    snapshot = json.loads(raw, parse_constant=not_json)
    assert snapshot["env"] is None, "strict JSON in Redis: the state is not written"
    goes_on(redis_client, proc)


def test_nan_in_state_is_written_as_strict_json_and_comes_back(valkey, redis_client, start) -> None:
    proc = start(valkey.port, HOSTILE)
    redis_client.set("metrics", json.dumps({"how": "nan-state"}))
    raw = wait_for(lambda: redis_client.get("out:state"), what="the commit")
    snapshot = json.loads(raw, parse_constant=not_json)  # strict JSON: NaN is a tagged value
    assert snapshot["env"]["avg"] == [1.0, {"$t": "float", "v": "nan"}]
    assert not error(redis_client), "nothing to report"
    goes_on(redis_client, proc)


def test_timeout_caught_by_the_handler_still_counts(valkey, redis_client, start) -> None:
    proc = start(valkey.port, HOSTILE, HANDLER_TIMEOUT="0.5")
    goes_on(redis_client, proc, 1)
    redis_client.set("metrics", json.dumps({"how": "swallow-timeout"}))
    wait_error(redis_client, "timeout", "it caught the timeout")
    assert echoed(redis_client) == 1, "the late result is not taken"
    goes_on(redis_client, proc, 2)


def test_handler_ignoring_the_alarm_ends_the_process_once(valkey, redis_client, start) -> None:
    redis_client.set("metrics", json.dumps({"how": "ignore-alarm"}))
    first = start(valkey.port, HOSTILE, HANDLER_TIMEOUT="0.5")
    assert first.wait(timeout=20) == 3, "the watchdog ends the process; Kubernetes restarts it"
    record = error(redis_client)
    assert record["kind"] == "timeout"
    assert "this input is not processed again" in record["message"]
    second = start(valkey.port, HOSTILE, HANDLER_TIMEOUT="0.5")  # the restarted pod
    wait_for(lambda: "not trying again what hung before" in second.output(), what="restart")
    goes_on(redis_client, second)


def test_import_that_never_ends_on_hot_reload_ends_the_process(
    valkey, redis_client, start, tmp_path: Path
) -> None:
    proc = start(valkey.port, ECHO, LOAD_TIMEOUT="1")
    goes_on(redis_client, proc, 1)
    (tmp_path / "runtime.py").write_text("while True:\n    pass\n" + ECHO)
    assert proc.wait(timeout=20) == 3
    assert "loading the function" in error(redis_client)["message"]
    again = start(valkey.port, ECHO, LOAD_TIMEOUT="1")  # restarted: that version is refused
    wait_for(lambda: "not trying again what hung before" in again.output(), what="restart")
    assert again.alive
    (tmp_path / "runtime.py").write_text(ECHO)  # a fixed version loads again
    goes_on(redis_client, again, 2)


@pytest.mark.parametrize(
    ("how", "code"),
    [("thread", 0), ("spin", 3)],  # 3: the call did not end within SHUTDOWN_TIMEOUT
)
def test_sigterm_always_ends_the_process(valkey, redis_client, start, how, code) -> None:
    proc = start(valkey.port, HOSTILE, SHUTDOWN_TIMEOUT="2")
    goes_on(redis_client, proc, 1)
    redis_client.set("metrics", json.dumps({"how": how}))
    wait_for(lambda: f"calling {how}" in proc.output(), what="the call to start")
    if how == "thread":  # the call returned, leaving a thread that sleeps for an hour
        wait_for(lambda: redis_client.get("out") == '{"echo":null}', what="the call's output")
    proc.signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == code


# -- Redis faults -----------------------------------------------------------------------------


def test_half_way_commit_is_impossible_and_not_retried(valkey, redis_client, start) -> None:
    redis_client.set("out:history", "not a stream")
    proc = start(valkey.port, (FUNCTIONS / "recorder.py").read_text(), TRIGGER="notify")
    redis_client.set("metrics", json.dumps({"n": 1}))
    wait_error(redis_client, "redis-error", "key out:history holds a string, not a stream")
    assert redis_client.get("out") is None, "nothing written"
    assert redis_client.get("out:state:seq") is None
    redis_client.set("metrics", json.dumps({"n": 2}))
    wait_for(lambda: redis_client.llen("calls") == 2, what="the second input's call")
    wait_error(redis_client, "redis-error", "nothing was committed")
    assert [json.loads(c)[1] for c in redis_client.lrange("calls", 0, -1)] == [1, 2], "once each"
    redis_client.delete("out:history")  # fixed: the next input commits
    redis_client.set("metrics", json.dumps({"n": 3}))
    wait_for(lambda: json.loads(redis_client.get("out") or "{}").get("n") == 3, what="commit")
    assert proc.alive


def test_redis_out_of_memory_is_ridden_out(valkey, redis_client, start) -> None:
    proc = start(valkey.port)
    goes_on(redis_client, proc, 1)
    redis_client.config_set("maxmemory-policy", "noeviction")
    full = redis_client.pipeline(transaction=True)  # the input lands, then nothing more can
    full.set("metrics", json.dumps({"n": 2}))
    full.config_set("maxmemory", "1")
    try:
        full.execute()
        wait_for(lambda: "maxmemory" in proc.output(), what="the OOM error said")
        assert proc.alive
    finally:
        redis_client.config_set("maxmemory", "0")
    wait_for(lambda: echoed(redis_client) == 2, what="the input committed once Redis has room")
    goes_on(redis_client, proc, 3)


def test_read_only_replica_is_ridden_out(own_valkey, start) -> None:
    client = own_valkey.client()
    proc = start(own_valkey.port)
    goes_on(client, proc, 1)
    client.replicaof("127.0.0.1", free_port())  # a replica of nothing: reads work, writes fail
    try:
        wait_for(lambda: "read only replica" in proc.output(), what="the READONLY error said")
        assert proc.alive
    finally:
        client.replicaof("NO", "ONE")
    goes_on(client, proc, 2)


def test_lease_key_of_the_wrong_type_is_ridden_out(valkey, redis_client, start) -> None:
    redis_client.hset("out:lease", "holder", "someone")
    proc = start(valkey.port)
    redis_client.set("metrics", json.dumps({"n": 1}))
    wait_error(redis_client, "redis-error", "WRONGTYPE")
    redis_client.delete("out:lease")
    goes_on(redis_client, proc)


def test_deleted_stream_gets_its_group_back(valkey, redis_client, start) -> None:
    proc = start(valkey.port, TRIGGER="stream")
    redis_client.xadd("metrics", {"data": json.dumps({"n": 1})})
    wait_for(lambda: echoed(redis_client) == 1, what="the first entry")
    redis_client.delete("metrics")
    wait_for(lambda: "creating it again" in proc.output(), what="the group re-created")
    redis_client.xadd("metrics", {"data": json.dumps({"n": 2})})
    wait_for(lambda: echoed(redis_client) == 2, what="entries flow again")


def test_database_out_of_range_is_said_once_and_sigterm_honoured(own_valkey, start) -> None:
    proc = start(own_valkey.port, REDIS_URL=f"redis://127.0.0.1:{own_valkey.port}/20")
    said = "Redis answered with an error: ResponseError: DB index is out of range"
    wait_for(lambda: said in proc.output(), what="the error said")
    time.sleep(2)  # several retries with backoff
    proc.signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    assert proc.output().count(said) == 1


def test_stream_poison_entry_goes_to_the_dead_letters(valkey, redis_client, start) -> None:
    source = (
        "import os, signal\n\ndef handler(input, context):\n"
        "    if input.get('poison'):\n        os.kill(os.getpid(), signal.SIGKILL)\n"
        "    return {'echo': input.get('n')}\n"
    )
    redis_client.xadd("metrics", {"data": json.dumps({"poison": True})})
    redis_client.xadd("metrics", {"data": json.dumps({"n": 2})})
    settings = {"TRIGGER": "stream", "STREAM_MAX_DELIVERIES": "2", "STREAM_CONSUMER": "pod"}
    for _restart in range(4):  # as Kubernetes restarts a crashed container
        proc = start(valkey.port, source, **settings)
        wait_for(partial(ended_or_echoed, proc, redis_client, 2), what="a crash or progress")
        if echoed(redis_client) == 2:
            break
    assert echoed(redis_client) == 2, "later entries flow"
    dead = redis_client.xrange("out:dead")
    assert len(dead) == 1
    assert json.loads(dead[0][1]["data"]) == {"poison": True}
    assert int(dead[0][1]["deliveries"]) == 3
    assert error(redis_client)["kind"] == "poison-input"
    assert redis_client.xpending("metrics", "serverless-runtime")["pending"] == 0


def ended_or_echoed(proc: Process, client: redis.Redis, n: int) -> bool:
    return not proc.alive or echoed(client) == n


def test_frozen_redis_keeps_liveness_drops_readiness_and_sigterm_works(
    own_valkey: ValkeyProcess, start
) -> None:
    port = free_port()
    client = own_valkey.client()
    proc = start(own_valkey.port, HTTP_PORT=str(port), INTERVAL="1")
    goes_on(client, proc, 1)
    wait_for(lambda: get(port, "/readyz")[0] == 200, what="ready")
    own_valkey.signal(signal.SIGSTOP)
    try:
        wait_for(lambda: get(port, "/readyz")[0] == 503, what="not ready")
        # Longer than the 10 s after which a stuck loop counts as dead: still alive.
        wait_for(lambda: proc.output().count("Redis unreachable") >= 1, what="the warning")
        for _ in range(7):
            assert get(port, "/healthz")[0] == 200
            time.sleep(2)
        proc.signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert proc.output().count("Redis unreachable") == 1, "one warning"
    finally:
        own_valkey.signal(signal.SIGCONT)


def test_notifications_are_enabled_again_after_a_redis_restart(own_valkey, start) -> None:
    client = own_valkey.client()
    proc = start(own_valkey.port, TRIGGER="notify", INTERVAL="60")
    goes_on(client, proc, 1)
    own_valkey.stop()
    own_valkey.start()  # a restart forgets CONFIG SET notify-keyspace-events
    client = own_valkey.client()
    wait_for(
        lambda: "K" in client.config_get("notify-keyspace-events")["notify-keyspace-events"],
        timeout=30,
        what="notifications enabled again",
    )
    client.set("metrics", json.dumps({"n": 2}))  # seen by notification, not by the 60 s tick
    wait_for(lambda: echoed(client) == 2, timeout=30, what="the change noticed")
