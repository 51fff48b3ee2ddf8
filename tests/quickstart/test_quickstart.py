"""The README's Quickstart and "Developing a function", run as written on a fresh clone: each
command of their `sh` blocks.

`make run` runs in the background while the commands after it run beside it, as in a second
terminal; `make test` is the suite this test belongs to, so it is only checked to be there.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.support.processes import Process, wait_for
from tests.support.valkey import free_port

pytestmark = pytest.mark.slow


def section_commands(readme: str, title: str) -> list[str]:
    """The command lines of the `sh` blocks of the README's section TITLE, comments cut."""
    section = readme.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```sh\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)
    lines = [line.split("  #", 1)[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line]


def _wait_until_served(stack: Process) -> None:
    # Its first run makes .venv and the functions' venvs (uv, from its cache or the index).
    wait_for(
        lambda: "  dashboard    http://" in stack.output(),
        timeout=600,
        what="`make run` serving the dashboard",
    )


def _follow_a_while(command: str, env: dict[str, str], cwd: Path, log: Path) -> None:
    """A command that follows until Ctrl-C: its first lines, then Ctrl-C ends it cleanly."""
    name = re.search(r"FUNCTION=(\S+)", command)
    follower = Process(shlex.split(command), env, log, cwd=cwd)
    try:
        wait_for(lambda: name is not None and f"[{name[1]}] " in follower.output(), timeout=60)
        os.killpg(follower.proc.pid, signal.SIGINT)
        assert follower.wait(timeout=30) in (0, 2, -signal.SIGINT), follower.output()
    finally:
        follower.close()


def test_the_quickstart_names_the_developer_loop() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    commands = section_commands(readme, "Quickstart")
    assert commands[0] == "make run"
    assert "make test" in commands
    assert any(c.startswith("make invoke") and "LIVE=1" in c for c in commands)
    assert any(c.startswith("make logs") for c in commands)
    developing = section_commands(readme, "Developing a function")
    assert developing[0].startswith("make new NAME=")
    assert "make run" in developing


def _terminal(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment of a user's terminal: without the make variables of the `make test` this
    suite may run under (a sub-make prints "Entering directory" lines around its output)."""
    return {k: v for k, v in environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}


# A fresh clone makes .venv and each function's venv on its first commands (uv, from its cache).
@pytest.mark.timeout(900)
@pytest.mark.parametrize("title", ["Quickstart", "Developing a function"])
def test_every_command_works_on_a_fresh_clone(tmp_path: Path, title: str) -> None:
    clone = tmp_path / "clone"
    # What a user clones: the committed tree (`git clone` of this repository).
    subprocess.run(["git", "clone", "--quiet", str(REPO_ROOT), str(clone)], check=True)
    commands = section_commands((clone / "README.md").read_text(), title)
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", str(tmp_path)),
        # Free ports instead of the defaults, which a stack of the user's may hold.
        "DEV_REDIS_PORT": str(free_port()),
        "DEV_DASHBOARD_PORT": str(free_port()),
        "DEV_RUNTIME_HTTP_PORT": str(free_port()),
        **{k: v for k, v in os.environ.items() if k.startswith(("SSL_CERT_", "UV_", "XDG_"))},
    }
    stack: Process | None = None
    try:
        for command in commands:
            if command == "make test":
                continue  # this very suite
            if command == "make run":
                stack = Process(shlex.split(command), env, tmp_path / "run.log", cwd=clone)
                _wait_until_served(stack)
                continue
            if "FOLLOW=1" in command:
                _follow_a_while(command, env, clone, tmp_path / "follow.log")
                continue
            done = subprocess.run(
                shlex.split(command),
                cwd=clone,
                env={**_terminal(os.environ), **env},
                capture_output=True,
                text=True,
                check=False,
                timeout=300,
            )
            assert done.returncode == 0, (command, done.stdout, done.stderr)
            if command.startswith("make invoke"):
                output = json.loads(done.stdout[done.stdout.index("{") :])
                example = json.loads((clone / "examples" / "metrics.json").read_text())
                assert output, command
                assert output.get("timestamp", example["timestamp"]) == example["timestamp"]
            if command.startswith("make logs"):
                name = re.search(r"FUNCTION=(\S+)", command)
                assert name and f"[{name[1]}] " in done.stdout, done.stdout
            if command.startswith("make collect"):
                out = re.search(r"OUT=(\S+)", command)
                assert out and "timestamp" in json.loads((clone / out[1]).read_text())
        assert stack is not None, "the section starts the stack"
        os.killpg(stack.proc.pid, signal.SIGINT)
        stack.wait(timeout=60)
        assert "Stopped." in stack.output()
        assert "could not release" not in stack.output()
    finally:
        if stack is not None:
            stack.close()
