"""Scale: what N functions cost one Redis server, and how many it carries before latency suffers.

Every function is a real runtime loop (its own client, lease, registry entry, history, state
journal and keyspace subscription, wired as `serverless-runtime run` wires them, without the
HTTP server and the watchdog thread, which never talk to Redis). The loops run as threads in a few
host processes (`python -m bench.scale SPEC`), one process per step of N, because a few hundred
separate processes would not fit this machine. The figures come from the server's own counters
(`INFO stats`, `INFO commandstats`, `INFO cpu`), minus a window with no runtime measured in the
same run.

- idle: no input changes; commands/s and bytes/s per function for N = 1, 10, 100, 500;
- load: every function's input written once per cadence (1 s, 5 s), the writes spread across the
  period; input→output p99 at each N, against N = 1 in the same run, stepping N up until the p99
  doubles.

`measure(bench, target)` takes a `Target` (the runtime's Redis settings and client factories):
the benchmark's one server, then a 3-master Valkey Cluster started for the purpose
(tests/support/valkey_cluster.py, no replicas), whose counters are summed over the masters.
"""

from __future__ import annotations

import functools
import json
import math
import os
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.crc import key_slot

from bench import stats
from bench.env import REPO_ROOT, TRIVIAL_FILE, Bench
from bench.procs import Child, enable_key_events
from bench.report import Row, seconds
from tests.support.valkey_cluster import HOST, ValkeyCluster

IDLE_SIZES = (1, 10, 100, 500)
LOAD_STEPS = (1, 10, 50, 100, 200, 500, 1000)
CADENCES = (1.0, 5.0)
DOUBLING = 2.0  # a step holds while its p99 stays within this many times the N = 1 p99
# Samples per load step: enough rounds for about this many, within a cap per cadence.
MIN_SAMPLES = 100
MAX_ROUNDS = {1.0: 60, 5.0: 12}
READY_TIMEOUT = 180.0
KEY_PREFIX = "scale"


@dataclass(frozen=True)
class Target:
    """Where the functions run.

    `redis_env`: the variables each runtime gets to reach Redis (REDIS_URL for one server);
    `client`: a client for the load generator; `nodes`: one client per master, whose counters
    are summed and whose keyspace notifications are watched.
    """

    name: str
    redis_env: Mapping[str, str]
    client: Callable[[], redis.Redis]
    nodes: Callable[[], list[redis.Redis]]


def single_server(bench: Bench) -> Target:
    """The benchmark's one Valkey server."""
    return Target(
        "one server", {"REDIS_URL": bench.valkey.url}, bench.client, lambda: [bench.client()]
    )


CLUSTER_MASTERS = 3


@contextmanager
def cluster(bench: Bench) -> Iterator[Target]:
    """A 3-master Valkey Cluster (no replicas) on 127.0.0.1, stopped on leaving.

    Each function gets every node in REDIS_CLUSTER_NODES; its input and output keys hash to
    slots spread over the three masters (the keys it derives follow its output's slot).
    """
    valkey = ValkeyCluster(bench.workdir / "cluster", masters=CLUSTER_MASTERS)
    valkey.start()
    ports = [node.port for node in valkey.masters_at_start]
    sys.stderr.write(f"bench: scale cluster: {_spread(valkey, max(LOAD_STEPS))}\n")

    def client() -> redis.Redis:
        made = RedisCluster(
            startup_nodes=[ClusterNode(HOST, port) for port in ports], socket_timeout=30
        )
        return cast(redis.Redis, made)  # the commands the load generator uses are the same

    try:
        yield Target(
            f"{CLUSTER_MASTERS}-master cluster",
            {"REDIS_CLUSTER_NODES": ",".join(f"{HOST}:{port}" for port in ports)},
            client,
            lambda: [redis.Redis(HOST, port, socket_timeout=30) for port in ports],
        )
    finally:
        valkey.stop()


def _spread(valkey: ValkeyCluster, size: int) -> str:
    """How functions 0 … size-1 spread their input and output keys over the masters."""
    views = valkey.masters_at_start[0].view()
    owners = {
        slot: valkey.by_id(node_id).port
        for node_id, line in views.items()
        if line.is_master
        for first, last in line.slots
        for slot in range(first, last + 1)
    }
    inputs = Counter(owners[key_slot(input_key(index).encode())] for index in range(size))
    outputs = Counter(owners[key_slot(output_key(index).encode())] for index in range(size))
    apart = sum(
        owners[key_slot(input_key(index).encode())] != owners[key_slot(output_key(index).encode())]
        for index in range(size)
    )
    return (
        f"inputs per master {dict(inputs)}, outputs per master {dict(outputs)}, "
        f"input and output on different masters for {apart} of {size} functions"
    )


def run(bench: Bench) -> list[Row]:
    """The scale rows on the benchmark's server, then on a 3-master cluster."""
    rows = measure(bench, single_server(bench))
    with cluster(bench) as target:
        rows += measure(bench, target)
    return rows


# -- counters ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Counters:
    """The server counters a window is measured with, summed over the nodes."""

    at: float
    commands: int
    bytes_in: int
    bytes_out: int
    cpu: float  # seconds of server CPU, user + system
    per_command: Counter[str]

    @classmethod
    def read(cls, nodes: Sequence[redis.Redis], stats_last: bool) -> Counters:
        """Read INFO stats last at a window's start and first at its end, so that the other
        INFO replies fall outside the window's byte counts."""
        commands = bytes_in = bytes_out = 0
        cpu = 0.0
        per_command: Counter[str] = Counter()
        for node in nodes:
            if not stats_last:
                info = node.info("stats")
            usage = node.info("cpu")
            cpu += float(usage["used_cpu_user"]) + float(usage["used_cpu_sys"])
            for name, values in node.info("commandstats").items():
                per_command[name.removeprefix("cmdstat_").upper()] += int(values["calls"])
            if stats_last:
                info = node.info("stats")
            commands += int(info["total_commands_processed"])
            bytes_in += int(info["total_net_input_bytes"])
            bytes_out += int(info["total_net_output_bytes"])
        return cls(time.monotonic(), commands, bytes_in, bytes_out, cpu, per_command)


@dataclass(frozen=True)
class Rates:
    """Per-second rates over one window."""

    commands: float
    bytes_in: float
    bytes_out: float
    cpu: float  # fraction of one core
    per_command: dict[str, float]

    @classmethod
    def between(cls, start: Counters, end: Counters) -> Rates:
        span = end.at - start.at
        per_command = {
            name: (end.per_command[name] - start.per_command.get(name, 0)) / span
            for name in end.per_command
        }
        return cls(
            (end.commands - start.commands) / span,
            (end.bytes_in - start.bytes_in) / span,
            (end.bytes_out - start.bytes_out) / span,
            (end.cpu - start.cpu) / span,
            {name: value for name, value in per_command.items() if value > 0},
        )

    def minus(self, floor: Rates) -> Rates:
        """What is left above the floor (another window's rates), never below zero."""
        names = set(self.per_command) | set(floor.per_command)
        return Rates(
            max(0.0, self.commands - floor.commands),
            max(0.0, self.bytes_in - floor.bytes_in),
            max(0.0, self.bytes_out - floor.bytes_out),
            max(0.0, self.cpu - floor.cpu),
            {
                name: self.per_command.get(name, 0.0) - floor.per_command.get(name, 0.0)
                for name in names
                if self.per_command.get(name, 0.0) - floor.per_command.get(name, 0.0) > 0.005
            },
        )

    def per(self, count: int) -> Rates:
        """The same rates divided by `count` (per function)."""
        return Rates(
            self.commands / count,
            self.bytes_in / count,
            self.bytes_out / count,
            self.cpu / count,
            {name: value / count for name, value in self.per_command.items()},
        )


def window(target: Target, length: float) -> Rates:
    """The server's rates over `length` seconds of whatever runs now."""
    nodes = target.nodes()
    try:
        start = Counters.read(nodes, stats_last=True)
        time.sleep(length)
        return Rates.between(start, Counters.read(nodes, stats_last=False))
    finally:
        for node in nodes:
            node.close()


# -- the functions under measurement ----------------------------------------------------------


def input_key(index: int) -> str:
    return f"{KEY_PREFIX}:{index}:in"


def output_key(index: int) -> str:
    return f"{KEY_PREFIX}:{index}:out"


def function_env(target: Target, index: int, function: Path) -> dict[str, str]:
    """One function's settings: its own input and output keys, everything else the default."""
    return {
        **target.redis_env,
        "REDIS_INPUT_KEY": input_key(index),
        "REDIS_OUTPUT_KEY": output_key(index),
        "FUNCTION_PATH": str(function),
        "TRIGGER": "notify",
        "HTTP_PORT": "0",
        "LOG_LEVEL": "WARNING",
        "STREAM_CONSUMER": f"scale-{index}",
    }


@dataclass
class Fleet:
    """The host processes running functions 0 … size-1."""

    bench: Bench
    target: Target
    function: Path
    hosts: list[Child] = field(default_factory=list)
    size: int = 0

    def grow(self, size: int) -> None:
        """Start a host process running the functions from the current size up; wait for each."""
        if size <= self.size:
            return
        spec = {
            "functions": [
                function_env(self.target, index, self.function) for index in range(self.size, size)
            ]
        }
        name = f"scale-{self.target.name.replace(' ', '-')}-host-{len(self.hosts)}"
        path = self.bench.workdir / f"{name}.json"
        path.write_text(json.dumps(spec))
        log = self.bench.workdir / f"{name}.log"
        env = {"PYTHONPATH": str(REPO_ROOT)}
        self.hosts.append(Child([sys.executable, "-m", "bench.scale", str(path)], env, log))
        self._wait_ready(range(self.size, size))
        self.size = size

    def _wait_ready(self, indexes: range) -> None:
        """Write each new function's input once; ready when every output carries it."""
        client = self.target.client()
        try:
            for index in indexes:
                client.set(input_key(index), json.dumps({"n": 0, "timestamp": "ready"}))
            pending = list(indexes)
            deadline = time.monotonic() + READY_TIMEOUT
            while pending:
                for host in self.hosts:
                    host.check()
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{len(pending)} functions never answered: {pending[:5]}…")
                time.sleep(0.2)
                pipe = client.pipeline(transaction=False)
                for index in pending:
                    pipe.get(output_key(index))
                outputs = pipe.execute()
                pending = [
                    index
                    for index, raw in zip(pending, outputs, strict=True)
                    if raw is None or json.loads(raw).get("timestamp") != "ready"
                ]
        finally:
            client.close()

    def stop(self) -> None:
        for host in self.hosts:
            host.stop()


# -- input → output latency under load --------------------------------------------------------


class OutputWatcher:
    """Notes when each function's output is written: keyspace notifications on every node."""

    def __init__(self, nodes: list[redis.Redis]) -> None:
        self.seen: dict[int, list[float]] = {}
        self._stop = threading.Event()
        self._threads = []
        self._nodes = nodes  # a client closes its connections when it is collected
        for node in nodes:
            enable_key_events(node)
            pubsub = node.pubsub()
            pubsub.psubscribe(f"__keyspace@0__:{KEY_PREFIX}:*:out")
            message = pubsub.get_message(timeout=5)  # the subscription is in force
            if message is None or message["type"] != "psubscribe":
                raise RuntimeError("could not subscribe to the outputs' keyspace events")
            thread = threading.Thread(target=self._watch, args=(pubsub,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _watch(self, pubsub: redis.client.PubSub) -> None:
        try:
            while not self._stop.is_set():
                message = pubsub.get_message(timeout=0.2)
                if message is not None and message["type"] == "pmessage":
                    when = time.perf_counter()
                    index = int(message["channel"].split(b":")[-2])
                    self.seen.setdefault(index, []).append(when)
        finally:
            pubsub.close()

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()
        for node in self._nodes:
            node.close()


@dataclass(frozen=True)
class Step:
    """One load step: N functions, each input written once per cadence."""

    size: int
    cadence: float
    latencies: list[float]
    missed: int  # writes no output followed before the end
    rates: Rates
    repeated: bool = False

    @property
    def p99(self) -> float:
        return math.inf if self.missed else stats.p99(self.latencies)


def load_step(target: Target, size: int, cadence: float, rounds: int, seq: int) -> Step:
    """Write every input `rounds` times, `cadence` apart, spread across the period."""
    watcher = OutputWatcher(target.nodes())
    client = target.client()
    writes: dict[int, list[float]] = {index: [] for index in range(size)}
    nodes = target.nodes()
    try:
        start_counters = Counters.read(nodes, stats_last=True)
        begin = time.perf_counter() + 0.2
        for turn in range(rounds):
            for index in range(size):
                due = begin + turn * cadence + index * cadence / size
                delay = due - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                value = {"n": seq + turn, "timestamp": f"{seq + turn}"}
                writes[index].append(time.perf_counter())
                client.set(input_key(index), json.dumps(value))
        time.sleep(min(cadence, 2.0) + 1.0)  # the last outputs
        rates = Rates.between(start_counters, Counters.read(nodes, stats_last=False))
    finally:
        watcher.close()
        client.close()
        for node in nodes:
            node.close()
    latencies, missed = _match(writes, watcher.seen)
    return Step(size, cadence, latencies, missed, rates)


def _match(writes: dict[int, list[float]], seen: dict[int, list[float]]) -> tuple[list[float], int]:
    """Each write's latency: until the first output written after it."""
    latencies: list[float] = []
    missed = 0
    for index, times in writes.items():
        outputs = sorted(seen.get(index, []))
        for written in times:
            after = next((at for at in outputs if at > written), None)
            if after is None:
                missed += 1
            else:
                latencies.append(after - written)
    return latencies, missed


# -- the measurement --------------------------------------------------------------------------


def measure(bench: Bench, target: Target) -> list[Row]:
    """Idle cost and load steps on `target`; the rows, plus a per-command breakdown on stderr."""
    idle_sizes = (1, 3) if bench.quick else IDLE_SIZES
    load_steps = (1, 3) if bench.quick else LOAD_STEPS
    # Whole ticks of the default 5 s INTERVAL: each function renews its lease once per tick.
    idle_length = bench.size(15, 5)
    function = bench.function_copy(TRIVIAL_FILE)
    floor = window(target, idle_length)  # the same length: INFO replies cost the same
    fleet = Fleet(bench, target, function)
    idle: dict[int, Rates] = {}
    steps: dict[float, list[Step]] = {cadence: [] for cadence in CADENCES}
    failed: set[float] = set()
    seq = 1
    try:
        for size in sorted(set(idle_sizes) | set(load_steps)):
            if size not in idle_sizes and failed == set(CADENCES):
                continue
            fleet.grow(size)
            if size in idle_sizes:
                time.sleep(bench.size(5, 1))  # past the ready inputs
                idle[size] = window(target, idle_length).minus(floor)
                sys.stderr.write(
                    f"bench: scale idle N={size}: {_breakdown(idle[size].per(size))}\n"
                )
            for cadence in CADENCES:
                if size not in load_steps or cadence in failed:
                    continue
                rounds = _rounds(bench, size, cadence)
                step = load_step(target, size, cadence, rounds, seq)
                seq += rounds
                first = steps[cadence][0] if steps[cadence] else step
                if step.p99 > DOUBLING * first.p99:
                    # A shared machine's hiccup can spoil one step's tail: a step fails only
                    # when its repetition fails too (the better of the two is kept).
                    again = load_step(target, size, cadence, rounds, seq)
                    seq += rounds
                    step = replace(min(step, again, key=lambda done: done.p99), repeated=True)
                    if step.p99 > DOUBLING * first.p99:
                        failed.add(cadence)
                steps[cadence].append(step)
    finally:
        fleet.stop()
    return [*_idle_rows(target, floor, idle, idle_length), *_load_rows(target, steps, floor)]


def _rounds(bench: Bench, size: int, cadence: float) -> int:
    if bench.quick:
        return 1
    return max(3, min(MAX_ROUNDS[cadence], math.ceil(MIN_SAMPLES / size)))


def _breakdown(rates: Rates) -> str:
    top = sorted(rates.per_command.items(), key=lambda item: -item[1])
    return ", ".join(f"{name} {value:.3g}/s" for name, value in top) or "nothing"


def _ratio(figure: float, baseline: float) -> float | None:
    return figure / baseline if baseline > 0 else None


def _idle_rows(target: Target, floor: Rates, idle: dict[int, Rates], length: float) -> list[Row]:
    rows = []
    one = idle[min(idle)].per(min(idle))
    for size, rates in idle.items():
        each = rates.per(size)
        label = f"idle per function, N={size}, {target.name}"
        first = size == min(idle)
        rows.append(
            Row(
                f"{label}: commands/s",
                f"{length:.0f} s",
                f"{each.commands:.3g}/s (server CPU {100 * rates.cpu:.2g}%)",
                f"{floor.commands:.2g}/s no runtime" if first else f"{one.commands:.3g}/s at N=1",
                None if first else _ratio(each.commands, one.commands),
                "— (flat: 1x)",
                None,
            )
        )
        rows.append(
            Row(
                f"{label}: bytes/s in + out",
                f"{length:.0f} s",
                f"{each.bytes_in:.0f} + {each.bytes_out:.0f} B/s",
                f"{floor.bytes_in + floor.bytes_out:.0f} B/s no runtime"
                if first
                else f"{one.bytes_in + one.bytes_out:.0f} B/s at N=1",
                None
                if first
                else _ratio(each.bytes_in + each.bytes_out, one.bytes_in + one.bytes_out),
                "— (flat: 1x)",
                None,
            )
        )
    return rows


def _load_rows(target: Target, steps: dict[float, list[Step]], floor: Rates) -> list[Row]:
    rows = []
    for cadence, done in steps.items():
        first = done[0]
        held = [step.size for step in done if step.p99 <= DOUBLING * first.p99]
        for step in done:
            ratio = step.p99 / first.p99
            missed = f", {step.missed} missed" if step.missed else ""
            missed += ", best of 2" if step.repeated else ""
            rows.append(
                Row(
                    f"input→output p99, {cadence:g} s cadence, N={step.size}, {target.name}",
                    f"{len(step.latencies)}{missed}",
                    f"{seconds(step.p99)} (p50 {seconds(stats.median(step.latencies))}, "
                    f"CPU {100 * step.rates.cpu:.2g}%)",
                    f"{seconds(first.p99)} at N=1",
                    ratio,
                    f"≤ {DOUBLING:g}x N=1",
                    ratio <= DOUBLING,
                )
            )
        last = done[-1]
        # Server CPU is measured at every step: the largest gives the steadiest figure.
        biggest = max(done, key=lambda step: step.size)
        # The inputs' writes count: a collector would write them. The no-runtime floor does not.
        cpu = biggest.rates.minus(floor).cpu
        per_function = cpu / biggest.size
        rows.append(
            Row(
                f"functions per server core, {cadence:g} s cadence, {target.name}",
                f"N={biggest.size}",
                f"≈ {1 / per_function:,.0f}" if per_function > 0 else "—",
                f"server CPU {100 * cpu:.2g}% at N={biggest.size}",
                None,
                "— (linear extrapolation)",
                None,
            )
        )
        rows.append(
            Row(
                f"largest N before p99 doubles, {cadence:g} s cadence, {target.name}",
                f"{len(done)} steps",
                f"N={max(held)}" + ("" if last.size in held else f" (N={last.size} did not)"),
                f"p99 {seconds(first.p99)} at N=1",
                None,
                "—",
                None,
            )
        )
    return rows


# -- the host process -------------------------------------------------------------------------


def host(functions: Sequence[Mapping[str, str]]) -> None:
    """Run one runtime loop per settings mapping, each on its own thread, until SIGTERM."""
    from serverless_runtime.cli import _function_source, _registration
    from serverless_runtime.config import Settings
    from serverless_runtime.loop import Runner
    from serverless_runtime.ops.telemetry import Telemetry
    from serverless_runtime.storage.lease import Lease
    from serverless_runtime.storage.store import Store, connect
    from serverless_runtime.triggers import TRIGGERS

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
    threads = []
    clients = []
    for environ in functions:
        settings = Settings.from_env(environ)
        client = connect(settings.redis)
        clients.append(client)
        lease = None
        if settings.keys.lease:
            lease = Lease(client, settings.keys.lease, settings.stream_consumer, settings.lease_ttl)
        runner = Runner(
            settings,
            Store(client, settings, lease, settings.stream_consumer),
            _function_source(settings),
            functools.partial(TRIGGERS[settings.trigger].waiter, client, settings, stop),
            stop,
            Telemetry(stale_after=max(3 * settings.interval, 10.0)),
            None,
            _registration(settings, client),
        )
        thread = threading.Thread(target=runner.run, daemon=True)
        thread.start()
        threads.append(thread)
    stop.wait()
    for thread in threads:
        thread.join(timeout=10)
    for client in clients:
        client.close()
    sys.stdout.flush()
    os._exit(0)


def _main(argv: Sequence[str]) -> None:
    spec: dict[str, Any] = json.loads(Path(argv[0]).read_text())
    host(spec["functions"])


if __name__ == "__main__":
    _main(sys.argv[1:])
