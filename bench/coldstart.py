"""4. Cold start (exec → first output) and steady RSS, vs a minimal poll-and-call script.

The input is in Redis before each start. Variants run in turn within each repetition, so a
busy moment of the machine hits all of them. Next to the wall time, the CPU time the process
used until its first output (from /proc, 10 ms ticks) shows the work apart from waiting.
RSS is VmRSS after the process has handled a series of recorded snapshots (and, with HTTP on,
answered each endpoint once).
"""

from __future__ import annotations

import compileall
import json
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import redis

from bench import stats
from bench.env import BASELINES, FUNCTION_FILE, Bench, runtime_argv
from bench.inputs import recorded
from bench.procs import Child, KeyWatcher, enable_key_events
from bench.report import Row, megabytes, seconds
from tests.support.valkey import free_port

INPUT_KEY = "coldstart:in"
START_BUDGET = 1.0
RSS_BUDGET = 1.2
# The minimal loop polls: this often, so that feeding it inputs does not take long.
MINIMAL_INTERVAL = 0.01
SETTLE = 0.5


@dataclass(frozen=True)
class _Variant:
    name: str
    argv: list[str]
    env: Callable[[str], dict[str, str]]
    http: bool = False


def run(bench: Bench) -> list[Row]:
    """Median of repeated starts per variant, and the RSS of one longer run of each."""
    _compile_runtime()
    function = bench.function_copy(FUNCTION_FILE)
    variants = _variants(bench, function)
    client = bench.client()
    enable_key_events(client)
    client.set(INPUT_KEY, json.dumps(recorded()[0]))
    starts: dict[str, list[float]] = {variant.name: [] for variant in variants}
    cpu: dict[str, list[float]] = {variant.name: [] for variant in variants}
    try:
        for attempt in range(bench.size(10, 2)):
            for variant in variants:
                wall, used = _cold_start(bench, client, variant, attempt)
                starts[variant.name].append(wall)
                cpu[variant.name].append(used)
        rss = {variant.name: _steady_rss(bench, client, variant) for variant in variants}
    finally:
        client.close()
    base = variants[-1].name
    rows = []
    for variant in variants[:-1]:
        figure, baseline = stats.median(starts[variant.name]), stats.median(starts[base])
        ratio = figure / baseline
        rows.append(
            Row(
                f"cold start, exec → 1st output, {variant.name}",
                f"{len(starts[variant.name])} each",
                f"{seconds(figure)} (CPU {seconds(stats.median(cpu[variant.name]))})",
                f"{seconds(baseline)} (CPU {seconds(stats.median(cpu[base]))})",
                ratio,
                f"≤ {START_BUDGET}x minimal loop",
                ratio <= START_BUDGET,
            )
        )
    for variant in variants[:-1]:
        ratio = rss[variant.name] / rss[base]
        rows.append(
            Row(
                f"steady RSS, {variant.name}",
                "1 each",
                megabytes(rss[variant.name]),
                megabytes(rss[base]),
                ratio,
                f"≤ {RSS_BUDGET}x minimal loop",
                ratio <= RSS_BUDGET,
            )
        )
    return rows


def _compile_runtime() -> None:
    """Bytecode for the runtime's modules, as its image has (pip compiles what it installs): an
    editable install edited since, under PYTHONDONTWRITEBYTECODE=1, would compile them at every
    start and measure the compiler."""
    import serverless_runtime

    compileall.compile_dir(Path(serverless_runtime.__file__).parent, quiet=1)


def _variants(bench: Bench, function: Path) -> list[_Variant]:
    def runtime_env(http: bool) -> Callable[[str], dict[str, str]]:
        def env(output_key: str) -> dict[str, str]:
            return {
                "REDIS_URL": bench.valkey.url,
                "REDIS_INPUT_KEY": INPUT_KEY,
                "REDIS_OUTPUT_KEY": output_key,
                "FUNCTION_PATH": str(function),
                "HTTP_PORT": str(free_port()) if http else "0",
                "HTTP_HOST": "127.0.0.1",
                "LOG_LEVEL": "WARNING",
            }

        return env

    def minimal_env(output_key: str) -> dict[str, str]:
        return {
            "REDIS_HOST": "127.0.0.1",
            "REDIS_PORT": str(bench.valkey.port),
            "REDIS_INPUT_KEY": INPUT_KEY,
            "REDIS_OUTPUT_KEY": output_key,
            "FUNCTION_PATH": str(function),
            "INTERVAL": str(MINIMAL_INTERVAL),
        }

    minimal = [sys.executable, str(BASELINES / "minimal_loop.py")]
    return [
        _Variant("runtime, HTTP_PORT=0", runtime_argv(), runtime_env(False)),
        _Variant("runtime, HTTP on", runtime_argv(), runtime_env(True), http=True),
        _Variant("minimal loop", minimal, minimal_env),
    ]


def _slug(name: str) -> str:
    return "".join(char if char.isalnum() else "-" for char in name)


def _cold_start(
    bench: Bench, client: redis.Redis, variant: _Variant, attempt: int
) -> tuple[float, float]:
    """Seconds from exec to the first write of a fresh output key, and the CPU time used."""
    output_key = f"coldstart:{_slug(variant.name)}:{attempt}"
    watcher = KeyWatcher(client, output_key)
    log = bench.workdir / f"coldstart-{_slug(variant.name)}.log"
    try:
        env = variant.env(output_key)
        started = time.perf_counter()
        with Child(variant.argv, env, log) as child:
            try:
                wall = watcher.wait(timeout=60) - started
            except TimeoutError:
                child.check()
                raise
            # Wall time swings with the machine's load; CPU time shows the work itself.
            return wall, child.cpu_seconds()
    finally:
        watcher.close()


def _steady_rss(bench: Bench, client: redis.Redis, variant: _Variant) -> int:
    """VmRSS after the process has handled a series of recorded snapshots."""
    output_key = f"coldstart:{_slug(variant.name)}:steady"
    watcher = KeyWatcher(client, output_key)
    log = bench.workdir / f"rss-{_slug(variant.name)}.log"
    env = variant.env(output_key)
    try:
        with Child(variant.argv, env, log) as child:
            watcher.wait(timeout=60)
            # The runtime subscribes to notifications only after its first call; a change
            # written in between would wait for the next reconciliation (INTERVAL).
            time.sleep(SETTLE)
            start = datetime.now()
            snapshots = recorded()[: bench.size(len(recorded()), 5)]
            for index, snapshot in enumerate(snapshots):
                stamp = str(start + timedelta(seconds=5 * index))
                client.set(INPUT_KEY, json.dumps({**snapshot, "timestamp": stamp}))
                _wait_for_output(client, watcher, output_key, stamp, child)
            if variant.http:
                base = f"http://127.0.0.1:{env['HTTP_PORT']}"
                for path in ("/healthz", "/readyz", "/metrics"):
                    with urllib.request.urlopen(base + path, timeout=10) as reply:
                        reply.read()
            time.sleep(SETTLE)
            return child.rss_bytes()
    finally:
        watcher.close()
        client.set(INPUT_KEY, json.dumps(recorded()[0]))


def _wait_for_output(
    client: redis.Redis, watcher: KeyWatcher, output_key: str, stamp: str, child: Child
) -> None:
    while True:
        try:
            watcher.wait(timeout=30)
        except TimeoutError:
            child.check()
            raise
        output = client.get(output_key)
        if output is not None and json.loads(output).get("timestamp") == stamp:
            return
