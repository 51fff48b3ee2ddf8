"""`python -m bench` / `make bench`: start Valkey, run the benchmarks, print one row each."""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from bench import (
    coldstart,
    dashboard,
    latency,
    monitor_cost,
    overhead,
    recovery,
    replicas,
    scale,
    state_cost,
    takeover,
    throughput,
    timeout_cost,
)
from bench.env import Bench
from bench.report import Row, Table
from tests.support.valkey import ValkeyProcess

BENCHMARKS: dict[str, Callable[[Bench], list[Row]]] = {
    "latency": latency.run,
    "overhead": overhead.run,
    "replicas": replicas.run,
    "timeout": timeout_cost.run,
    "state": state_cost.run,
    "recovery": recovery.run,
    "takeover": takeover.run,
    "throughput": throughput.run,
    "coldstart": coldstart.run,
    "function": monitor_cost.run,
    "dashboard": dashboard.run,
    "scale": scale.run,
}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options; BENCH_QUICK=1 in the environment means --quick."""
    parser = argparse.ArgumentParser(prog="bench", description=__doc__)
    parser.add_argument(
        "--quick",
        action="store_true",
        default=os.environ.get("BENCH_QUICK", "") not in ("", "0"),
        help="tiny sizes: checks that every benchmark runs; the figures mean little",
    )
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument(
        "--only",
        default=",".join(BENCHMARKS),
        help=f"comma-separated subset of {','.join(BENCHMARKS)}",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the random phases and data")
    args = parser.parse_args(argv)
    args.only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(args.only) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen benchmarks against one Valkey server and print the table."""
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        workdir = Path(tmp)
        valkey = ValkeyProcess(workdir / "valkey")
        valkey.start()
        try:
            bench = Bench(args.quick, valkey, workdir, random.Random(args.seed))
            _describe(bench, args.markdown)
            table = Table(args.markdown)
            table.header()
            for name in args.only:
                bench.reset()
                started = time.monotonic()
                sys.stderr.write(f"bench: {name} ...\n")
                for row in BENCHMARKS[name](bench):
                    table.add(row)
                sys.stderr.write(f"bench: {name} took {time.monotonic() - started:.0f} s\n")
        finally:
            valkey.stop()
    return 0


def _describe(bench: Bench, markdown: bool) -> None:
    """The machine and versions the figures belong to."""
    import redis

    lines = [
        f"date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}"
        + ("  (quick mode: tiny sizes)" if bench.quick else ""),
        f"machine: {_cpu_model()}, {os.cpu_count()} CPUs, {_memory()}, "
        f"load average {os.getloadavg()[0]:.1f} at start",
        f"software: {platform.system()} {platform.release()}, Python {platform.python_version()}, "
        f"redis-py {redis.__version__}, {bench.valkey_version()}",
    ]
    prefix = "- " if markdown else "# "
    for line in lines:
        sys.stdout.write(prefix + line + "\n")
    sys.stdout.write("\n")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB RAM"
    except OSError:
        pass
    return "unknown RAM"
