"""Command line: `run` (the container entrypoint), `invoke` (one local call), `collect`, `new`."""

from __future__ import annotations

import errno
import io
import json
import logging
import math
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from serverless_runtime.config import MAX_SECONDS, ConfigError, Settings, log_settings, redis_config
from serverless_runtime.function.context import Context
from serverless_runtime.function.handler_ref import HandlerRef
from serverless_runtime.function.loader import FunctionLoadError, FunctionSource, load_file
from serverless_runtime.registry import FunctionRecord, Registration
from serverless_runtime.state import codec, tagged

if TYPE_CHECKING:
    import argparse

    import redis

    from serverless_runtime.function.new_requirements import Requirements
    from serverless_runtime.ops.probes import ProbeServer
    from serverless_runtime.ops.telemetry import Telemetry

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        if argv in ([], ["run"]):  # the container's start: no argument parser to import
            return run_command(os.environ)
        args = _parser().parse_args(argv)
        if args.command == "invoke":
            return invoke_command(args.function, args.input, args.state, args.handler)
        if args.command == "collect" and args.once:
            return snapshot_command(args.output, args.interface)
        if args.command == "collect":
            return collect_command(os.environ, args.key, args.period, args.interface)
        if args.command == "new":
            return new_command(args.name, args.dir, args.keda)
        return run_command(os.environ)
    except ConfigError as exc:
        sys.stderr.write(f"serverless-runtime: {exc}\n")
        return EXIT_CONFIG


def _parser() -> argparse.ArgumentParser:
    import argparse  # only when there are arguments to parse: `run` starts faster

    parser = argparse.ArgumentParser(
        prog="serverless-runtime",
        description="Run a Python handler(input, context) whenever a Redis key changes.",
    )
    commands = parser.add_subparsers(dest="command", metavar="{run,invoke,collect,new}")
    commands.add_parser("run", help="run the function on Redis input (default; settings from env)")
    invoke = commands.add_parser("invoke", help="call a function once on a JSON file, no Redis")
    invoke.add_argument("--function", required=True, type=Path, help="the function's .py file")
    invoke.add_argument("--input", required=True, help="input JSON file, or - for stdin")
    invoke.add_argument("--state", type=Path, help="JSON file holding context.env; updated")
    invoke.add_argument(
        "--handler", default="handler", type=_function_name, help="function name (default: handler)"
    )
    collect = commands.add_parser("collect", help="write host metrics to Redis periodically")
    collect.add_argument("--key", help="Redis key (default: $REDIS_INPUT_KEY or metrics)")
    collect.add_argument("--period", type=_positive, default=5.0, help="seconds (default: 5)")
    collect.add_argument("--interface", default="eth0", help="network interface (default: eth0)")
    collect.add_argument(
        "--once", action="store_true", help="one snapshot as JSON, no Redis (an input to invoke)"
    )
    collect.add_argument(
        "--output", "-o", type=Path, help="--once: the file to write (default: stdout)"
    )
    new = commands.add_parser("new", help="create a function folder with an example and its test")
    new.add_argument("name", help="the function's name: a DNS label, at most 40 characters")
    new.add_argument(
        "--dir",
        type=Path,
        default=Path("apps/functions"),
        help="the functions' folder (default: apps/functions); its index gets the new folder",
    )
    new.add_argument(
        "--keda", action="store_true", help="read a Redis Stream and scale with KEDA (keda/)"
    )
    return parser


def new_command(name: str, parent: Path, keda: bool) -> int:
    """Create the function folder parent/name; one line on stdout or stderr."""
    from serverless_runtime.commands.new import ScaffoldError, create

    try:
        folder = create(name, parent, keda=keda)
    except (ScaffoldError, OSError) as exc:
        sys.stderr.write(f"serverless-runtime new: {exc}\n")
        return EXIT_CONFIG
    sys.stdout.write(
        f"created {folder}: edit usermodule.py and function.env, then, from the repository root:\n"
        f"  make invoke FUNCTION={name} INPUT=examples/metrics.json   # one call, no Redis\n"
        f"  .venv/bin/python -m pytest {folder}   # its own test\n"
        "  make run     # the local stack, with it; then, in another terminal:\n"
        f"  make invoke FUNCTION={name} INPUT=examples/metrics.json LIVE=1\n"
        f"  make logs FUNCTION={name} FOLLOW=1\n"
        "and push: CI runs `make test`, and the merge deploys it to dev\n"
    )
    return EXIT_OK


def _positive(raw: str) -> float:
    import argparse

    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not 0 < value <= MAX_SECONDS:
        raise argparse.ArgumentTypeError(
            f"expected a number of seconds greater than 0 and at most {MAX_SECONDS:g}, not {raw}"
        )
    return value


def _function_name(raw: str) -> str:
    import argparse

    try:
        # `:name` as in FUNCTION_HANDLER, or the bare name; a file has no module to name.
        ref = HandlerRef.parse(raw if ":" in raw else f":{raw}")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if ref.module is not None:
        raise argparse.ArgumentTypeError(f"{raw!r}: a function file takes :function, no module")
    return ref.function


def _stop_on_signals() -> threading.Event:
    """SIGTERM and SIGINT ask the loop to finish the call in flight and exit."""
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s; stopping after the call in flight", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    return stop


def run_command(environ: Mapping[str, str]) -> int:
    from serverless_runtime.loop import Runner
    from serverless_runtime.ops import logs, watchdog
    from serverless_runtime.ops.telemetry import Telemetry
    from serverless_runtime.storage.lease import Lease
    from serverless_runtime.storage.store import Store
    from serverless_runtime.triggers import TRIGGERS

    settings = Settings.from_env(environ)
    logs.configure(settings.log_format, settings.log_level)
    if isinstance(sys.stdout, io.TextIOWrapper):
        # Functions print(); each line should reach the pod's log at once, not at exit.
        sys.stdout.reconfigure(line_buffering=True)
    stop = _stop_on_signals()
    client = _connected(settings, stop)
    if client is None:  # stopped while no cluster node answered
        logging.shutdown()
        return EXIT_OK
    lease = None
    if settings.keys.lease and not settings.stream_mode:
        holder = f"{settings.stream_consumer}/{os.getpid()}"
        lease = Lease(client, settings.keys.lease, holder, settings.lease_ttl)
    store = Store(client, settings, lease, settings.stream_consumer)
    stale_after = max(3 * settings.interval, 10.0) + (settings.handler_timeout or 0.0)
    telemetry = Telemetry(stale_after=stale_after)
    runner = Runner(
        settings,
        store,
        _function_source(settings),
        lambda: TRIGGERS[settings.trigger].waiter(client, settings, stop),
        stop,
        telemetry,
        _new_requirements(settings),
        _registration(settings, client),
    )
    watchdog.Watchdog(
        telemetry,
        watchdog.call_limit(settings.handler_timeout),
        settings.load_timeout,
        settings.shutdown_timeout,
        stop,
        runner.record_stuck,
    ).start()
    server = _start_probes(settings, telemetry, stop) if settings.http_port else None
    log.info(
        "watching %r -> %r (trigger=%s, invoke_on=%s)",
        settings.keys.input,
        settings.keys.output,
        settings.trigger,
        settings.invoke_on,
    )
    runner.run()
    if server is not None:
        server.close()
    client.close()
    log.info("stopped")
    # Exit now: a thread the function left running must not keep the process alive.
    logging.shutdown()
    sys.stdout.flush()
    os._exit(EXIT_OK)


def _connected(
    settings: Settings, stop: threading.Event, timeout: float | None = None
) -> redis.Redis | None:
    """The Redis client; None when stopped before it could be made. A Redis Cluster's client asks
    its nodes for the slots at once: while none answers, it is tried again with backoff."""
    import redis

    from serverless_runtime.ops.backoff import Backoff
    from serverless_runtime.storage.store import SOCKET_TIMEOUT, connect

    backoff, said = Backoff(), None
    while not stop.is_set():
        try:
            return connect(settings.redis, timeout=timeout or SOCKET_TIMEOUT)
        except redis.ConnectionError as exc:
            if str(exc) != said:
                log.warning("Redis unreachable (%s); retrying with backoff", exc)
                said = str(exc)
            stop.wait(backoff.next_delay())
    return None


def _function_source(settings: Settings) -> FunctionSource:
    if settings.function_zip:
        from serverless_runtime.function import zip_loader

        workdir = Path(tempfile.gettempdir())  # an emptyDir under a read-only root filesystem
        return FunctionSource(
            Path(settings.function_zip),
            lambda path: zip_loader.load_zip(path, settings.function_handler, workdir),
        )
    # Settings refuse a module part without FUNCTION_ZIP: a file is always `usermodule`.
    function = settings.function_handler.function
    return FunctionSource(Path(settings.function_path), lambda path: load_file(path, function))


def _new_requirements(settings: Settings) -> Requirements | None:
    """NEW_REQUERIMENTS to pip-install before the function loads (the course's variable)."""
    if not settings.new_requirements:
        return None
    from serverless_runtime.function.new_requirements import DIR_NAME, Requirements

    target = settings.new_requirements_dir
    if not target:
        # An emptyDir under a read-only root filesystem, like the zip packages' directory. Without
        # one no temporary directory is usable: the install then fails, saying where it tried.
        try:
            temporary = tempfile.gettempdir()
        except OSError:
            temporary = "/tmp"  # noqa: S108 - only named in the error; nothing is written there
        target = str(Path(temporary) / DIR_NAME)
    return Requirements(settings.new_requirements, Path(target), settings.new_requirements_timeout)


def _registration(settings: Settings, client: redis.Redis) -> Registration | None:
    """This function's record in FUNCTIONS_KEY, written whenever Redis answers again."""
    if not settings.functions_key:
        return None
    return Registration(client, settings.functions_key, FunctionRecord.from_settings(settings))


def _start_probes(
    settings: Settings, telemetry: Telemetry, stop: threading.Event
) -> ProbeServer | None:
    """Serve /healthz, /readyz and /metrics; imported only when HTTP_PORT is set."""
    from serverless_runtime.ops import probes

    # Its own client with short timeouts: a probe must answer within the kubelet's deadline.
    ping_client = _connected(settings, stop, timeout=1.0)
    if ping_client is None:
        return None
    try:
        return probes.start(settings.http_host, settings.http_port, telemetry, ping_client.ping)
    except OSError as exc:
        ping_client.close()
        reason = exc.strerror or str(exc)
        if exc.errno in (errno.EADDRINUSE, errno.EACCES):
            expected = f"a port free to listen on at {settings.http_host} ({reason})"
            raise ConfigError("HTTP_PORT", str(settings.http_port), expected) from None
        expected = f"an address of this machine to listen on ({reason})"
        raise ConfigError("HTTP_HOST", settings.http_host, expected) from None


def invoke_command(function: Path, input_path: str, state: Path | None, attr: str) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        loaded = load_file(function, attr)
        text = sys.stdin.read() if input_path == "-" else Path(input_path).read_text()
        value = _parsed(json.loads, text, f"{input_path} is not valid JSON")
        env: Any = {}
        if state is not None and state.exists():
            env = _parsed(tagged.loads, state.read_bytes(), f"{state} is not a state file (JSON)")
    except (FunctionLoadError, OSError, ValueError) as exc:
        sys.stderr.write(f"serverless-runtime: {exc}\n")
        return EXIT_FAILED
    if not isinstance(env, dict):
        sys.stderr.write(f"serverless-runtime: state file {state} does not hold a JSON object\n")
        return EXIT_FAILED
    context = Context("localhost", 6379, "metrics", "output", loaded.mtime_text, env)
    result = loaded.handler(value, context)
    sys.stdout.write(json.dumps(result, indent=2) + "\n")
    if state is not None:
        try:  # as the runtime keeps it: int keys, tuples, datetimes… come back as they were
            state.write_bytes(tagged.dumps(context.env) + b"\n")
        except codec.NotJSON as exc:
            sys.stderr.write(f"serverless-runtime: state file {state} not written: {exc}\n")
            return EXIT_FAILED
    return EXIT_OK


def _parsed(loads: Callable[[Any], Any], data: str | bytes, what: str) -> Any:
    try:
        return loads(data)
    except ValueError as exc:
        raise ValueError(f"{what}: {exc}") from None


def collect_command(
    environ: Mapping[str, str], key: str | None, period: float, interface: str
) -> int:
    """Write host metrics to Redis every `period` seconds until SIGTERM/SIGINT."""
    from serverless_runtime.commands import collect
    from serverless_runtime.ops import logs
    from serverless_runtime.storage.store import connect

    config = redis_config(environ)
    logs.configure(*log_settings(environ))
    stop = _stop_on_signals()
    client = connect(config)
    target = key or environ.get("REDIS_INPUT_KEY") or "metrics"
    log.info("writing host metrics to %r every %ss", target, period)
    collect.run(client, target, period, interface, stop)
    client.close()
    return EXIT_OK


def snapshot_command(output: Path | None, interface: str) -> int:
    from serverless_runtime.commands import collect

    text = json.dumps(collect.snapshot(interface), indent=2) + "\n"
    if output is None:
        sys.stdout.write(text)
        return EXIT_OK
    try:
        output.write_text(text)
    except OSError as exc:
        sys.stderr.write(f"serverless-runtime: {output}: {exc.strerror or exc}\n")
        return EXIT_FAILED
    return EXIT_OK
