"""2. Per-call overhead of the runtime loop with a trivial handler, vs a bare redis-py floor.

Both sides are timed in this process around the same work for one new input: read it (one
round trip), parse it, call the handler, encode the result and write it (one round trip). The
runtime's step also checks the function file, renews the lease along with the read when due and
commits output, history, digest and the input's journal entry (with a snapshot of the state now
and then) atomically with the fencing check; that is its overhead. A second floor, the
equal-durability one, makes the same writes as the commit script (output, history entry, journal
entry, head, digest, lease TTL, in-flight mark) pipelined in one round trip, without the script
and its checks: the runtime's ratio to it is what it costs beyond the writes themselves.
Writing each input is not timed. The trigger's wake-up is measured in `latency`.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from serverless_runtime.config import Settings
from serverless_runtime.function.loader import load_file

from bench import stats
from bench.env import TRIVIAL_FILE, Bench
from bench.inprocess import Runtime
from bench.inputs import now_snapshot
from bench.report import Row, seconds

BUDGET = 1.5
# Against a loop that makes the same writes as the commit, pipelined, without script or checks.
DURABLE_BUDGET = 1.3
SCRAPES_PER_SECOND = 10

# Polls the probes and metrics like an eager kubelet and Prometheus together.
_SCRAPER = """
import sys, time, urllib.request
base, period = sys.argv[1], float(sys.argv[2])
while True:
    for path in ("/healthz", "/readyz", "/metrics"):
        with urllib.request.urlopen(base + path, timeout=5) as reply:
            reply.read()
    time.sleep(period)
"""


def run(bench: Bench) -> list[Row]:
    """Runtime step vs floors, with the HTTP server off, then on and scraped."""
    function = bench.function_copy(TRIVIAL_FILE)
    calls = bench.size(3000, 40)
    rows = []
    for http in (False, True):
        times = _compare(bench, function, calls, http)
        runtime, floor, durable = times["runtime"], times["floor"], times["durable"]
        label = "HTTP on + 10 scrapes/s" if http else "HTTP_PORT=0"
        ratio = stats.median(runtime) / stats.median(floor)
        rows.append(
            Row(
                f"per-call overhead, trivial, {label}",
                f"{len(runtime)} each",
                _summary(runtime),
                _summary(floor),
                ratio,
                f"≤ {BUDGET}x floor",
                ratio <= BUDGET,
            )
        )
        ratio = stats.median(runtime) / stats.median(durable)
        rows.append(
            Row(
                f"per-call, equal-durability floor, trivial, {label}",
                f"{len(runtime)} each",
                _summary(runtime),
                _summary(durable),
                ratio,
                f"≤ {DURABLE_BUDGET}x floor",
                ratio <= DURABLE_BUDGET,
            )
        )
    return rows


def _summary(values: list[float]) -> str:
    return f"{seconds(stats.median(values))} (p99 {seconds(stats.p99(values))})"


def _compare(bench: Bench, function: Path, calls: int, http: bool) -> dict[str, list[float]]:
    """Interleave runtime steps and floor calls input by input, so drift hits all alike."""
    name = "http" if http else "plain"
    settings = Settings.from_env(
        {
            "REDIS_URL": bench.valkey.url,
            "REDIS_INPUT_KEY": f"overhead:{name}:in",
            "REDIS_OUTPUT_KEY": f"overhead:{name}:out",
            "FUNCTION_PATH": str(function),
            "TRIGGER": "poll",
            "HTTP_PORT": "0",
            "LOG_LEVEL": "WARNING",
        }
    )
    runtime = _RuntimeStep(settings)
    floors = {
        "floor": _Floor(bench, function, f"overhead:{name}:floor"),
        "durable": _DurableFloor(bench, function, f"overhead:{name}:durable"),
    }
    writer = bench.client()
    scraper = runtime.serve_probes() if http else None
    times: dict[str, list[float]] = {"runtime": [], "floor": [], "durable": []}
    try:
        runtime.step()  # first step: restore state, load the function; nothing to do yet
        for sequence in range(calls):
            raw = _input(bench, sequence)
            writer.set(settings.keys.input, raw)
            times["runtime"].append(_timed(runtime.step))
            for key, floor in floors.items():
                writer.set(floor.input_key, raw)
                times[key].append(_timed(floor.call))
        runtime.check(len(times["runtime"]))
    finally:
        if scraper is not None:
            scraper.terminate()
            scraper.wait()
        runtime.close()
        for floor in floors.values():
            floor.close()
        writer.close()
    return times


def _input(bench: Bench, sequence: int) -> bytes:
    value = now_snapshot(bench.rng)
    value["n"] = sequence
    return json.dumps(value).encode()


def _timed(call: Callable[[], None]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


class _RuntimeStep(Runtime):
    """The runtime's loop body (bench/inprocess.py), and its HTTP server on demand."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._probes: Any = None

    def serve_probes(self) -> subprocess.Popen[bytes]:
        """Start the HTTP server in this process, and a scraper process polling it."""
        from serverless_runtime.ops import probes

        self._probes = probes.start("127.0.0.1", 0, self.telemetry, self._ping)
        base = f"http://127.0.0.1:{self._probes.port}"
        return subprocess.Popen(
            [sys.executable, "-c", _SCRAPER, base, str(1 / SCRAPES_PER_SECOND)],
            stdout=subprocess.DEVNULL,
        )

    def _ping(self) -> bool:
        return bool(self.client.ping())

    def close(self) -> None:
        """Stop the HTTP server and close the client."""
        if self._probes is not None:
            self._probes.close()
        super().close()


class _Floor:
    """The least a loop can do per input: GET, call, then SET + XADD in one pipelined trip."""

    def __init__(self, bench: Bench, function: Path, key: str) -> None:
        self.client = bench.client()
        self.input_key = f"{key}:in"
        self.output_key = f"{key}:out"
        self.history_key = f"{key}:out:history"
        self.handler = load_file(function).handler
        self.context = _Context()

    def call(self) -> None:
        """Process the current input once."""
        raw = self.client.get(self.input_key)
        assert raw is not None
        result = self.handler(json.loads(raw), self.context)
        output = json.dumps(result)
        pipe = self.client.pipeline(transaction=False)
        pipe.set(self.output_key, output)
        pipe.xadd(self.history_key, {"output": output}, maxlen=1000, approximate=True)
        pipe.execute()

    def close(self) -> None:
        """Close the client."""
        self.client.close()


class _DurableFloor(_Floor):
    """The writes of the runtime's commit script — output, history entry (trimmed), the input's
    journal entry, the head (sequence number), the input's digest, the lease's new TTL and the
    end of the input's in-flight mark — pipelined in one round trip after the GET, without the
    script, its checks (fencing token, head, key types) and the read's lease and mark."""

    def __init__(self, bench: Bench, function: Path, key: str) -> None:
        super().__init__(bench, function, key)
        self.journal_key = f"{key}:out:state:journal"
        self.head_key = f"{key}:out:state:seq"
        self.digest_key = f"{key}:out:input-digest"
        self.lease_key = f"{key}:out:lease"
        self.in_flight_key = f"{key}:out:in-flight"
        self.client.set(self.lease_key, "floor:1")
        self.seq = 0

    def call(self) -> None:
        """Process the current input once, durably."""
        raw = self.client.get(self.input_key)
        assert isinstance(raw, bytes)
        result = self.handler(json.loads(raw), self.context)
        output = json.dumps(result)
        digest = hashlib.blake2b(raw, digest_size=16).hexdigest()
        self.seq += 1
        pipe = self.client.pipeline(transaction=False)
        pipe.set(self.output_key, output)
        pipe.xadd(self.history_key, {"output": output}, maxlen=1000, approximate=True)
        at = datetime.now().isoformat()
        pipe.xadd(self.journal_key, {"input": raw, "at": at}, id=f"{self.seq}-0")
        pipe.set(self.head_key, self.seq)
        pipe.pexpire(self.lease_key, 10_000)
        pipe.set(self.digest_key, digest)
        pipe.hset(self.in_flight_key, mapping={"owner": "", "deaths": 0})
        pipe.execute()


class _Context:
    env: dict[str, Any]

    def __init__(self) -> None:
        self.env = {}
