"""What a function cannot do to the runtime, tried on a real process and a real Valkey.

It cannot outlast HANDLER_TIMEOUT in C code holding the GIL with signals blocked, switch off the
graceful stop, fill Redis and the log with one huge exception, or flood the log through the
runtime's logging set-up.
"""

from __future__ import annotations

import json
import signal
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.support.processes import Process, runtime_env, wait_for

pytestmark = pytest.mark.slow

# ctypes.PyDLL keeps the GIL for the whole C call: no Python thread (the watchdog, the probes,
# a signal handler) runs until it returns. Blocking every signal first keeps SIGALRM from cutting
# the sleep short.
HOLDS_THE_GIL = """
import ctypes, pathlib

libc = ctypes.PyDLL(None)

def handler(input, context):
    if input.get("c"):
        pathlib.Path(input["marker"]).touch()
        mask = ctypes.create_string_buffer(128)
        libc.sigfillset(mask)
        libc.pthread_sigmask(0, mask, None)  # SIG_BLOCK
        libc.sleep(3600)
    return {"echo": input.get("n")}
"""

IGNORES_SIGTERM = """
import signal

def handler(input, context):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, lambda *_: None)
    return {"echo": input.get("n")}
"""

HUGE_MESSAGE = """
def handler(input, context):
    if input.get("huge"):
        raise ValueError("x" * (50 << 20))
    return {"echo": input.get("n")}
"""

UNPRINTABLE = """
class Unprintable(Exception):
    def __str__(self):
        raise RuntimeError("no text for this one")

def handler(input, context):
    if input.get("raise"):
        raise Unprintable()
    return {"echo": input.get("n")}
"""

USER_LOGGING = """
import logging

def handler(input, context):
    logging.info("a bad format %d", "not a number")
    logging.warning("user warning %s", input.get("n"))
    print("user print", input.get("n"))
    return {"echo": input.get("n")}
"""


def function(tmp_path: Path, source: str) -> str:
    path = tmp_path / "usermodule.py"
    path.write_text(source)
    return str(path)


def echoed(client: redis.Redis) -> Any:
    return json.loads(client.get("out") or "{}").get("echo")


def error(client: redis.Redis) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(client.get("out:error") or "{}")
    return record


def echoed_is(client: redis.Redis, n: int) -> bool:
    return bool(echoed(client) == n)


def test_c_call_holding_the_gil_with_signals_blocked_ends_the_process(
    valkey, redis_client, start, tmp_path: Path
) -> None:
    marker = tmp_path / "in-c"
    env = runtime_env(
        valkey.port, "out", FUNCTION_PATH=function(tmp_path, HOLDS_THE_GIL),
        HANDLER_TIMEOUT="0.5", INTERVAL="0.2", MAX_DEATHS="1",
    )  # fmt: skip
    proc: Process = start(env)
    redis_client.set("metrics", json.dumps({"n": 1}))
    wait_for(lambda: echoed(redis_client) == 1, what="a first call")
    redis_client.set("metrics", json.dumps({"c": True, "marker": str(marker)}))
    wait_for(marker.exists, what="the call to enter C")
    # Neither SIGALRM nor the watchdog thread can run: only a timer in C ends the process.
    assert proc.wait(timeout=60) == 1
    log = proc.output()
    assert "Timeout (" in log, "the C timer says why, with every thread's stack"
    assert "usermodule.py" in log
    # The input was marked in flight before the call: the restarted process counts the death.
    again: Process = start(env, name="restarted")
    wait_for(lambda: error(redis_client).get("kind") == "poison-input", what="the poison record")
    redis_client.set("metrics", json.dumps({"n": 2}))
    wait_for(lambda: echoed(redis_client) == 2, what="the next input processed")
    assert again.alive


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_function_replacing_stop_handlers_does_not_switch_off_the_graceful_stop(
    valkey, redis_client, start, tmp_path: Path, stop: signal.Signals
) -> None:
    # The function ignores SIGTERM and replaces SIGINT's handler on every call.
    env = runtime_env(
        valkey.port, "out", FUNCTION_PATH=function(tmp_path, IGNORES_SIGTERM), TRIGGER="notify",
    )  # fmt: skip
    proc: Process = start(env)
    redis_client.set("metrics", json.dumps({"n": 1}))
    wait_for(lambda: echoed(redis_client) == 1, what="the call that replaces the stop handlers")
    wait_for(lambda: redis_client.get("out:lease"), what="the lease")
    proc.signal(stop)
    assert proc.wait(timeout=20) == 0
    assert "stopped" in proc.output()
    assert redis_client.get("out:lease") is None, "the lease is released at once"


def test_huge_exception_message_gives_a_small_error_record(
    valkey, redis_client, start, tmp_path: Path
) -> None:
    env = runtime_env(
        valkey.port, "out", FUNCTION_PATH=function(tmp_path, HUGE_MESSAGE), TRIGGER="notify",
    )  # fmt: skip
    proc: Process = start(env)
    redis_client.set("metrics", json.dumps({"huge": True}))
    raw = wait_for(lambda: redis_client.get("out:error"), timeout=60, what="the error record")
    assert len(raw) < 32 << 10
    record = json.loads(raw)
    assert record["kind"] == "handler-error"
    assert record["message"].startswith("handler raised ValueError: xxxx")
    assert record["message_bytes"] > 50 << 20, "the record says how large the message was"
    assert record["traceback_bytes"] > 50 << 20
    assert "ValueError" in record["traceback"]
    redis_client.set("metrics", json.dumps({"n": 2}))
    wait_for(lambda: echoed(redis_client) == 2, what="the next input processed")
    assert proc.log_path.stat().st_size < 1 << 20, "the log line is bounded too"


def test_exception_whose_text_raises_is_recorded_and_the_loop_goes_on(
    valkey, redis_client, start, tmp_path: Path
) -> None:
    env = runtime_env(
        valkey.port, "out", FUNCTION_PATH=function(tmp_path, UNPRINTABLE), TRIGGER="notify",
    )  # fmt: skip
    proc: Process = start(env)
    redis_client.set("metrics", json.dumps({"raise": True}))
    wait_for(lambda: error(redis_client).get("kind") == "handler-error", what="the record")
    assert "Unprintable" in error(redis_client)["message"]
    redis_client.set("metrics", json.dumps({"n": 2}))
    wait_for(lambda: echoed(redis_client) == 2, what="the next input processed")
    assert proc.alive


def test_user_logging_is_left_to_the_function(valkey, redis_client, start, tmp_path: Path) -> None:
    env = runtime_env(
        valkey.port, "out", FUNCTION_PATH=function(tmp_path, USER_LOGGING), TRIGGER="notify",
    )  # fmt: skip
    proc: Process = start(env)
    for n in (1, 2, 3):
        redis_client.set("metrics", json.dumps({"n": n}))
        wait_for(partial(echoed_is, redis_client, n), what=f"call {n}")
    wait_for(lambda: "user print 3" in proc.output(), what="the function's print")
    log = proc.output()
    assert "Logging error" not in log, "an INFO line the function formats badly is not emitted"
    assert "user warning 3" in log, "the function's warnings still reach the pod log"
    assert "watching 'metrics' -> 'out'" in log, "the runtime's own lines are still there"


def test_user_logging_leaves_the_runtime_json_lines_json(
    valkey, redis_client, start, tmp_path: Path
) -> None:
    env = runtime_env(
        valkey.port, "out", FUNCTION_PATH=function(tmp_path, USER_LOGGING), TRIGGER="notify",
        LOG_FORMAT="json",
    )  # fmt: skip
    proc: Process = start(env)
    redis_client.set("metrics", json.dumps({"n": 1}))
    wait_for(lambda: "user print 1" in proc.output(), what="the call")
    runtime_lines = [line for line in proc.output().splitlines() if "serverless_runtime" in line]
    assert runtime_lines
    assert all(
        json.loads(line)["logger"].startswith("serverless_runtime") for line in runtime_lines
    )
    assert "Logging error" not in proc.output()
