"""The local stack as a supervisor, and the commands that talk to it: `make run`'s processes,
`make invoke LIVE=1` and `make logs`, run as real processes against the stack's real Valkey."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.stack.ports import stack_ports
from tests.support.processes import Process, wait_for

pytestmark = pytest.mark.slow

GOOD = """\
def handler(input, context):
    if "boom" in input:
        raise ValueError("no boom, please")
    print("called with", input["n"])
    return {"seen": input["n"]}
"""


def _function(root: Path, name: str, env: str, code: str) -> None:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "function.env").write_text(env)
    (folder / "usermodule.py").write_text(code)


def _ports(runtimes: int = 3) -> dict[str, str]:
    return stack_ports(runtimes)


@dataclass
class Stack:
    process: Process
    env: dict[str, str]
    functions: Path

    def command(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        """`python -m scripts.devstack ARGS` as `make` runs it, beside the stack."""
        return subprocess.run(
            [sys.executable, "-m", "scripts.devstack", *args],
            env={**os.environ, **self.env, **env},
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )

    def output(self) -> str:
        return self.process.output()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    functions = tmp_path / "functions"
    _function(functions, "good", "REDIS_INPUT_KEY=good-in\nREDIS_OUTPUT_KEY=good\n", GOOD)
    _function(functions, "typo", "REDIS_OUTPUT_KEY=typo\nHANDLER_TIMOUT=10\n", GOOD)
    _function(functions, "crash", "REDIS_OUTPUT_KEY=crash\n", "import os\nos._exit(3)\n")
    stream_env = "REDIS_INPUT_KEY=events\nREDIS_OUTPUT_KEY=streamed\nTRIGGER=stream\n"
    _function(functions, "streamed", stream_env, GOOD)
    env = {**_ports(), "DEV_RUN_DIR": str(tmp_path / "run")}
    # The user's TLS trust and uv settings: uv may fetch the runtime's packages for its venv.
    env |= {k: v for k, v in os.environ.items() if k.startswith(("SSL_CERT_", "UV_"))}
    process = Process(
        [sys.executable, "-m", "scripts.devstack", "run", "--functions", str(functions)],
        env,
        tmp_path / "stack.log",
        cwd=REPO_ROOT,
    )
    try:
        yield Stack(process, env, functions)
    finally:
        process.close()


def test_the_stack_prefixes_reports_and_stops_valkey_last(stack: Stack) -> None:
    dashboard = f"  dashboard    http://127.0.0.1:{stack.env['DEV_DASHBOARD_PORT']}/"
    wait_for(lambda: dashboard in stack.output(), timeout=120, what="the dashboard serving")
    wait_for(
        lambda: "devstack: crash exited with code 3" in stack.output(),
        timeout=60,
        what="the crashing function reported",
    )
    out = stack.output()
    # A function.env key the runtime does not know stops that function only, with a suggestion.
    assert "typo/function.env:2: HANDLER_TIMOUT is not a runtime setting " in out
    assert "(did you mean HANDLER_TIMEOUT?)" in out
    assert "the rest of the stack keeps running" in out
    # Every process's lines carry its name.
    assert "[collector] " in out
    assert "[good] " in out and "watching 'good-in' -> 'good'" in out
    assert "[dashboard] " in out
    assert stack.process.alive

    # invoke --live: through the running stack's Redis, the function's next output.
    called = stack.command("invoke", "good", "--input", "-", "--live", "--timeout", "30")
    assert called.returncode == 2, "--input - reads stdin: none given here"
    payload = stack.functions / "in.json"
    payload.write_text('{"n": 42}')
    called = stack.command("invoke", "good", "--input", str(payload), "--live")
    assert (called.returncode, json.loads(called.stdout)) == (0, {"seen": 42}), called.stderr
    # A stream function's input is an entry added to its stream.
    payload.write_text('{"n": 7}')
    streamed = stack.command("invoke", "streamed", "--input", str(payload), "--live")
    assert (streamed.returncode, json.loads(streamed.stdout)) == (0, {"seen": 7}), streamed.stderr
    payload.write_text('{"boom": 1}')
    failed = stack.command("invoke", "good", "--input", str(payload), "--live")
    assert failed.returncode == 1
    assert "good failed:" in failed.stderr and "no boom, please" in failed.stderr
    again = stack.command("invoke", "good", "--input", str(payload), "--live", "--timeout", "1")
    assert again.returncode == 1
    assert "no output from good within 1 s after writing 'good-in'" in again.stderr
    assert "an input equal to the last one is not called again" in again.stderr

    # logs: the function's own lines and its recorded error, each prefixed by the function.
    logs = stack.command("logs", "good")
    assert logs.returncode == 0, logs.stderr
    lines = logs.stdout.splitlines()
    assert lines and all(line.startswith("[good] ") for line in lines), lines
    assert "[good] called with 42" in lines
    assert any(line.startswith("[good] recorded error: ") and "no boom" in line for line in lines)
    every = stack.command("logs")
    assert "[good] called with 42" in every.stdout
    unknown = stack.command("logs", "typo")
    assert unknown.returncode == 2
    running = "(running: crash, good, streamed)"
    assert f"'typo' does not run in the local stack {running}" in unknown.stderr

    # A second stack is refused up front, in one line naming what to change.
    second = stack.command("run", "--functions", str(stack.functions))
    assert second.returncode == 2
    assert second.stderr.count("\n") == 1 and "already running" in second.stderr
    assert "DEV_RUN_DIR" in second.stderr
    other_dir = stack.command(
        "run", "--functions", str(stack.functions), DEV_RUN_DIR=str(stack.functions / "r2")
    )
    assert other_dir.returncode == 2
    assert f"port {stack.env['DEV_REDIS_PORT']} on 127.0.0.1 is in use" in other_dir.stderr
    assert "set DEV_REDIS_PORT" in other_dir.stderr

    # Ctrl-C reaches the supervisor; it stops the runtimes before Valkey.
    follower = Process(
        [sys.executable, "-m", "scripts.devstack", "logs", "good", "--follow"],
        stack.env,
        stack.functions / "follow.log",
        cwd=REPO_ROOT,
    )
    try:
        wait_for(lambda: "[good] called with 42" in follower.output(), what="logs --follow")
        os.killpg(stack.process.proc.pid, signal.SIGINT)
        assert stack.process.wait(timeout=60) == 0
        # The follower saw the runtime's last lines, then the stack stop.
        assert follower.wait(timeout=30) == 0
    finally:
        follower.close()
    followed = follower.output()
    assert "[good] " in followed.split("called with 42", 1)[1]
    assert followed.endswith("the local stack has stopped\n")
    out = stack.output()
    assert "Stopped." in out
    assert "could not release" not in out and "Connection refused" not in out, out
    gone = stack.command("logs")
    assert gone.returncode == 2 and "no local stack is running" in gone.stderr


def test_a_port_in_use_is_refused_before_anything_starts(tmp_path: Path) -> None:
    functions = tmp_path / "functions"
    _function(functions, "good", "REDIS_OUTPUT_KEY=good\n", GOOD)
    env = {**os.environ, **_ports(), "DEV_RUN_DIR": str(tmp_path / "run")}
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", int(env["DEV_DASHBOARD_PORT"])))
        busy.listen()
        refused = subprocess.run(
            [sys.executable, "-m", "scripts.devstack", "run", "--functions", str(functions)],
            env=env,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
    assert refused.returncode == 2
    assert refused.stdout == ""  # no banner, no URL: nothing started
    (line,) = refused.stderr.splitlines()
    port = env["DEV_DASHBOARD_PORT"]
    assert line.startswith(f"devstack: port {port} on 127.0.0.1 is in use: set DEV_DASHBOARD_PORT")


def _children(pid: int) -> list[int]:
    listing = subprocess.run(
        ["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True, check=True
    ).stdout
    return [
        int(p)
        for p, parent in (line.split() for line in listing.splitlines())
        if parent == str(pid)
    ]


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    state = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True)
    return state.stdout.strip().startswith("Z")  # ended, not yet reaped


def test_a_killed_supervisor_leaves_no_process_behind(tmp_path: Path) -> None:
    functions = tmp_path / "functions"
    _function(functions, "good", "REDIS_OUTPUT_KEY=good\n", GOOD)
    env = {**_ports(), "DEV_RUN_DIR": str(tmp_path / "run")}
    process = Process(
        [sys.executable, "-m", "scripts.devstack", "run", "--functions", str(functions)],
        env,
        tmp_path / "stack.log",
        cwd=REPO_ROOT,
    )
    try:
        wait_for(lambda: "  dashboard    http://" in process.output(), timeout=120, what="stack")
        children = _children(process.proc.pid)
        assert len(children) == 4, process.output()  # valkey, collector, good, dashboard
        process.kill()  # SIGKILL: no chance to stop anything itself
        wait_for(
            lambda: all(_gone(pid) for pid in children), timeout=60, what="the children ending"
        )
    finally:
        process.close()


def test_a_busy_runtime_port_names_the_dev_setting_not_http_port() -> None:
    from scripts.devstack import Ports, Refused

    ports = Ports.from_env(_ports())
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", ports.runtime_http + 1))  # the second function's
        busy.listen()
        ports.check_free(1)  # one function: its port is free
        with pytest.raises(Refused) as refused:
            ports.check_free(2)
    message = str(refused.value)
    assert message.startswith(f"port {ports.runtime_http + 1} on 127.0.0.1 is in use: ")
    assert "set DEV_RUNTIME_HTTP_PORT to another (the first of one port per function; " in message
    assert f"`DEV_RUNTIME_HTTP_PORT={ports.runtime_http + 100} make run`" in message
    with pytest.raises(Refused, match="DEV_REDIS_PORT='x': expected a port number"):
        Ports.from_env({"DEV_REDIS_PORT": "x"})
