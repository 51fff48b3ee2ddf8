"""Errors that point at the user's code: the function's frames in the log and `<out>:error`, the
runtime's only with LOG_LEVEL=DEBUG; a version that fails to load while the previous one runs is
said by /readyz and the function registry, and cleared when a version loads."""

from __future__ import annotations

import functools
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support.http import get
from tests.support.processes import RUNTIME, Process, runtime_env, wait_for
from tests.support.valkey import free_port

pytestmark = pytest.mark.slow

GOOD = """
def handler(input, context):
    return {"version": VERSION, "i": input["i"]}

VERSION = 1
"""
SYNTAX_ERROR = """
def handler(input, context):
    return {"i": input["i"],,}
"""
NAME_ERROR = """
import json

LIMIT = undefined_limit * 2


def handler(input, context):
    return {"i": input["i"]}
"""
NESTED = """
def parse(value):
    return int(value["n"])


def total(values):
    return sum(parse(v) for v in values)


def handler(input, context):
    return {"total": total(input["values"]), "i": input["i"]}
"""
MTIME = 1_900_000_000  # 2030-03-17 17:46:40 UTC


def publish(path: Path, text: str, mtime: float) -> None:
    path.write_text(text)
    os.utime(path, (mtime, mtime))


def error(client: Any) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(client.get("out:error") or "{}")
    return value


def registered(client: Any) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(client.hget("serverless:functions", "out") or "{}")
    return value


def start(valkey: Any, path: Path, log: Path, **extra: str) -> tuple[Process, int]:
    port = free_port()
    env = runtime_env(
        valkey.port, "out", FUNCTION_PATH=str(path), INTERVAL="0.2", HTTP_PORT=str(port), **extra
    )
    return Process([RUNTIME], env, log), port


def logged(proc: Process, word: str) -> str:
    """The process's output once it holds word, else ""."""
    text = proc.output()
    return text if word in text else ""


def feed(client: Any, i: int) -> dict[str, Any]:
    client.set("metrics", json.dumps({"i": i}))
    value: dict[str, Any] = wait_for(
        lambda: (
            json.loads(client.get("out") or "{}").get("i") == i and json.loads(client.get("out"))
        ),
        what=f"the output of input {i}",
    )
    return value


def test_hot_reload_to_a_syntax_error_shows_the_user_line_and_is_said_until_a_version_loads(
    valkey, redis_client, tmp_path: Path
) -> None:
    path = tmp_path / "usermodule.py"
    publish(path, GOOD, MTIME - 100)
    proc, port = start(valkey, path, tmp_path / "runtime.log")
    try:
        feed(redis_client, 1)
        assert registered(redis_client).get("load_failure") is None
        publish(path, SYNTAX_ERROR, MTIME)
        wait_for(lambda: error(redis_client).get("kind") == "syntax-error", what="load error")
        record = error(redis_client)
        tb = record["traceback"]
        assert f'File "{path}", line 3' in tb
        assert 'return {"i": input["i"],,}' in tb
        assert "^" in tb
        assert "serverless_runtime/" not in tb
        log = wait_for(lambda: logged(proc, "syntax-error"), what="the log line")
        assert 'return {"i": input["i"],,}' in log
        assert "serverless_runtime/" not in log, "none of the runtime's frames in the log"

        # The previous version runs, and both /readyz and the registry say the newest failed.
        assert feed(redis_client, 2)["version"] == 1
        status, body = get(port, "/readyz")
        assert status == 200
        assert "2030-03-17 17:46:40 UTC failed to load" in body
        assert "syntax error" in body and "running the previous version" in body
        failure = wait_for(lambda: registered(redis_client).get("load_failure"))
        assert failure["mtime"] == datetime.fromtimestamp(MTIME, UTC).isoformat()
        assert failure["kind"] == "syntax-error"
        assert f"syntax error in {path} at line 3" in failure["message"]
        assert len(failure["digest"]) == 32
        assert failure["running"] is True

        publish(path, GOOD.replace("VERSION = 1", "VERSION = 2"), MTIME + 100)
        wait_for(lambda: registered(redis_client).get("load_failure") is None, what="cleared")
        assert get(port, "/readyz") == (200, "ok\n")
        assert feed(redis_client, 3)["version"] == 2
    finally:
        proc.close()


def test_hot_reload_to_a_name_error_at_import_shows_the_user_frame_and_runtime_frames_in_debug(
    valkey, redis_client, tmp_path: Path
) -> None:
    for level, runtime_frames in (("INFO", False), ("DEBUG", True)):
        redis_client.flushdb()
        path = tmp_path / level / "usermodule.py"
        path.parent.mkdir()
        publish(path, GOOD, MTIME - 100)
        proc, _ = start(valkey, path, tmp_path / f"{level}.log", LOG_LEVEL=level)
        try:
            feed(redis_client, 1)
            publish(path, NAME_ERROR, MTIME)
            wait_for(lambda: error(redis_client).get("kind") == "import-error", what="load error")
            tb = error(redis_client)["traceback"]
            assert f'File "{path}", line 4, in <module>' in tb
            assert "LIMIT = undefined_limit * 2" in tb
            assert "NameError: name 'undefined_limit' is not defined" in tb
            log = wait_for(functools.partial(logged, proc, "import-error"), what="the log line")
            assert "LIMIT = undefined_limit * 2" in log
            assert ("serverless_runtime/function/loader.py" in tb) is runtime_frames
            assert ("serverless_runtime/function/loader.py" in log) is runtime_frames
        finally:
            proc.close()


def test_raising_handler_shows_its_nested_frames_and_is_no_state_problem(
    valkey, redis_client, tmp_path: Path
) -> None:
    path = tmp_path / "usermodule.py"
    publish(path, NESTED, MTIME)
    proc, port = start(valkey, path, tmp_path / "runtime.log")
    try:
        redis_client.set("metrics", json.dumps({"i": 1, "values": [{"n": "1"}, {"n": "x"}]}))
        wait_for(lambda: error(redis_client).get("kind") == "handler-error", what="handler error")
        tb = error(redis_client)["traceback"]
        lines = tb.splitlines()
        assert lines[0] == "Traceback (most recent call last):"
        assert lines[1].strip() == f'File "{path}", line 11, in handler'
        assert f'File "{path}", line 7, in total' in tb
        assert f'File "{path}", line 3, in parse' in tb
        assert lines[-1] == "ValueError: invalid literal for int() with base 10: 'x'"
        assert "serverless_runtime/" not in tb
        log = wait_for(lambda: logged(proc, "handler-error"), what="the log line")
        assert f'File "{path}", line 3, in parse' in log
        assert "serverless_runtime/" not in log
        # A raising handler is the function's fault: still ready, the state untouched.
        assert get(port, "/readyz") == (200, "ok\n")
        redis_client.set("metrics", json.dumps({"i": 2, "values": [{"n": "4"}]}))
        wait_for(lambda: json.loads(redis_client.get("out") or "{}").get("total") == 4)
    finally:
        proc.close()
