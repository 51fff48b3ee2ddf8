"""The running local stack's directory (.run/devstack, or DEV_RUN_DIR) and the commands reading it.

`make run` holds a lock there while it runs, writes stack.json (where Redis is, each function's
keys) and one log file per process, each line as the process wrote it. `make logs` prints those
lines and each function's recorded error (`<out>:error`), prefixed by the function; `make invoke
LIVE=1` writes an input to the running stack's input key and prints what the function makes of it.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

import redis

REPO = Path(__file__).resolve().parent.parent
STACK_FILE = "stack.json"
STREAM_FIELD = "data"  # the field of a stream entry the runtime reads (store.py)
LOCK_FILE = "lock"


class NoStack(Exception):
    """No stack runs from this run directory: the message says how to start one."""


def run_dir(environ: Mapping[str, str]) -> Path:
    """Where the stack keeps its lock, stack.json and logs (DEV_RUN_DIR, else .run/devstack)."""
    return Path(environ.get("DEV_RUN_DIR") or REPO / ".run" / "devstack")


@dataclass(frozen=True)
class FunctionKeys:
    """What a client of the running stack needs to know of one function."""

    input: str
    output: str
    history: str | None
    error: str | None
    stream: bool = False  # TRIGGER=stream: the input is a stream, one entry per call


@dataclass(frozen=True)
class StackInfo:
    """stack.json: the supervisor's pid, Redis, and each running function's keys."""

    pid: int
    redis_url: str
    functions: dict[str, FunctionKeys]

    def write(self, folder: Path) -> None:
        path = folder / STACK_FILE
        path.with_suffix(".tmp").write_text(json.dumps(asdict(self), indent=2))
        path.with_suffix(".tmp").replace(path)

    @classmethod
    def read(cls, folder: Path) -> StackInfo:
        """The running stack's info; NoStack when none runs from FOLDER."""
        try:
            raw = json.loads((folder / STACK_FILE).read_text())
        except (OSError, ValueError):
            raise NoStack("no local stack is running: start one with `make run`") from None
        info = cls(
            raw["pid"],
            raw["redis_url"],
            {name: FunctionKeys(**keys) for name, keys in raw["functions"].items()},
        )
        if not _alive(info.pid):
            raise NoStack("the local stack has stopped: start it again with `make run`")
        return info

    def keys(self, name: str) -> FunctionKeys:
        if name not in self.functions:
            running = ", ".join(sorted(self.functions)) or "none"
            raise NoStack(f"{name!r} does not run in the local stack (running: {running})")
        return self.functions[name]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Prefixer:
    """Copies one process's output, line by line, to the terminal as `[name] line` and a log."""

    _terminal = threading.Lock()

    def __init__(self, name: str, source: IO[bytes], log: Path, out: IO[str]) -> None:
        self.name = name
        self._source = source
        self._log = log
        self._out = out
        self._thread = threading.Thread(target=self._copy, name=f"log-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _copy(self) -> None:
        with self._log.open("ab") as log:
            for raw in iter(self._source.readline, b""):
                log.write(raw)
                log.flush()
                line = raw.decode("utf-8", errors="replace").rstrip("\n")
                with self._terminal:
                    self._out.write(f"[{self.name}] {line}\n")
                    self._out.flush()


def _error_line(client: redis.Redis, key: str | None) -> str | None:
    """The function's recorded error as one line, or None."""
    if key is None:
        return None
    raw = client.get(key)
    if raw is None:
        return None
    try:
        record: Any = json.loads(raw)
    except ValueError:
        return str(raw)
    if not isinstance(record, dict):
        return str(record)
    parts = [str(record.get(k)) for k in ("at", "kind", "message") if record.get(k) is not None]
    return " ".join(parts) or str(raw)


def _follow(path: Path, position: int) -> tuple[list[str], int]:
    """Whole lines added to PATH since POSITION, and the new position."""
    try:
        with path.open("rb") as file:
            if file.seek(0, os.SEEK_END) < position:
                position = 0  # a new stack started the log afresh
            file.seek(position)
            data = file.read()
    except FileNotFoundError:
        return [], position
    end = data.rfind(b"\n") + 1
    lines = data[:end].decode("utf-8", errors="replace").splitlines()
    return lines, position + end


def logs(folder: Path, name: str | None, follow: bool, out: IO[str] = sys.stdout) -> int:
    """Print the log lines and recorded errors of NAME (or every function), prefixed; -f follows."""
    info = StackInfo.read(folder)
    names = [name] if name else sorted(info.functions)
    for each in names:
        info.keys(each)
    client = redis.Redis.from_url(info.redis_url, decode_responses=True, socket_timeout=5)
    positions = dict.fromkeys(names, 0)
    errors: dict[str, str | None] = dict.fromkeys(names)
    try:
        while True:
            stopped = not _alive(info.pid)  # asked first: the lines it wrote before are read next
            for each in names:
                lines, positions[each] = _follow(folder / f"{each}.log", positions[each])
                for line in lines:
                    out.write(f"[{each}] {line}\n")
                try:
                    error = _error_line(client, info.functions[each].error)
                except redis.RedisError:
                    if not follow:
                        raise
                    # The stack is stopping (Valkey stops last) or Redis is away: lines go on.
                    error = errors[each]
                if error != errors[each]:
                    errors[each] = error
                    if error is not None:
                        out.write(f"[{each}] recorded error: {error}\n")
            out.flush()
            if not follow:
                return 0
            if stopped:
                out.write("the local stack has stopped\n")
                return 0
            time.sleep(0.2)
    except KeyboardInterrupt:
        return 0
    except redis.RedisError as exc:
        out.flush()
        sys.stderr.write(f"logs: Redis at {info.redis_url} does not answer: {exc}\n")
        return 1
    finally:
        client.close()


def _marks(client: redis.Redis, keys: FunctionKeys) -> Iterator[object]:
    """What changes when the function has been called: its history, output and error."""
    if keys.history:
        yield client.xrevrange(keys.history, count=1)
    yield client.get(keys.output)
    if keys.error:
        yield client.get(keys.error)


def invoke_live(folder: Path, name: str, value: str, timeout: float, out: IO[str]) -> int:
    """Write VALUE to NAME's input key in the running stack; print its next output or error."""
    info = StackInfo.read(folder)
    keys = info.keys(name)
    client = redis.Redis.from_url(info.redis_url, decode_responses=True, socket_timeout=5)
    try:
        before = list(_marks(client, keys))
        if keys.stream:
            client.xadd(keys.input, {STREAM_FIELD: value})
        else:
            client.set(keys.input, value)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            after = list(_marks(client, keys))
            if after != before:
                error = client.get(keys.error) if keys.error else None
                if keys.error and error is not None and after[-1] != before[-1]:
                    sys.stderr.write(f"{name} failed: {_error_line(client, keys.error)}\n")
                    return 1
                output = client.get(keys.output)
                shown = json.dumps(json.loads(output), indent=2) if output else "null"
                out.write(shown + "\n")
                return 0
            time.sleep(0.05)
    finally:
        client.close()
    why = "a falsy result writes nothing"
    why += "; " if keys.stream else ", an input equal to the last one is not called again; "
    sys.stderr.write(
        f"no output from {name} within {timeout:g} s after writing {keys.input!r} "
        f"({why}see `make logs FUNCTION={name}`)\n"
    )
    return 1
