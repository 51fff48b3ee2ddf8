"""9. Takeover: two runtime processes on one lease; the leader gets SIGTERM or SIGKILL.

A leader and a standby run the `counter` function (it keeps every input's number in
`context.env` and outputs it with its pid), TRIGGER=notify, a short INTERVAL. The leader handles a
few inputs; then it is signalled and an input is written right away; the figure is the time from
the signal until the first output the standby commits (when the old leader still committed that
input, the next one is written at once). A new standby is started and the next trial signals
the new leader, alternating SIGTERM (rolling update: the lease is released) and SIGKILL (node
loss: the lease has to lapse). At the end, the last output's `seen` list and the journal's
sequence number tell whether any input was lost from the state or processed twice.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis

from bench import stats
from bench.env import Bench, runtime_argv
from bench.procs import Child, KeyWatcher, enable_key_events
from bench.report import Row, seconds

INTERVAL = 0.5
LEASE_TTL = 2 * INTERVAL  # the runtime's default
COUNTER_FILE = Path(__file__).resolve().parent / "functions" / "counter.py"
INPUT_KEY, OUTPUT_KEY = "takeover:in", "takeover:out"
BEFORE = 3  # inputs the leader handles before each signal
WAIT = 10.0  # seconds an output may take before the trial fails


@dataclass
class _Run:
    bench: Bench
    function: Path
    client: redis.Redis
    watcher: KeyWatcher
    sent: int = 0
    outputs: list[dict[str, object]] = field(default_factory=list)
    names: int = 0

    def start(self) -> Child:
        """A new runtime process; returns once it has logged that it is watching."""
        self.names += 1
        name = f"replica{self.names}"
        env = {
            "REDIS_URL": self.bench.valkey.url,
            "REDIS_INPUT_KEY": INPUT_KEY,
            "REDIS_OUTPUT_KEY": OUTPUT_KEY,
            "FUNCTION_PATH": str(self.function),
            "TRIGGER": "notify",
            "INTERVAL": str(INTERVAL),
            "STREAM_CONSUMER": name,
            "HTTP_PORT": "0",
            "LOG_LEVEL": "INFO",
        }
        child = Child(runtime_argv(), env, self.bench.workdir / f"takeover-{name}.log")
        deadline = time.monotonic() + WAIT
        while "watching" not in child.log_path.read_text(errors="replace"):
            child.check()
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start")
            time.sleep(0.02)
        return child

    def holder_pid(self) -> int | None:
        """The pid in the lease's value (`<name>/<pid>:<token>`), if it is held."""
        value = self.client.get(f"{OUTPUT_KEY}:lease")
        if value is None:
            return None
        text = value.decode() if isinstance(value, bytes) else str(value)
        return int(text.split("/")[1].split(":")[0])

    def feed(self) -> tuple[float, dict[str, object]]:
        """Write the next input; perf_counter() when its output was written, and the output."""
        number = self.sent
        self.sent += 1
        self.client.set(INPUT_KEY, json.dumps({"n": number, "timestamp": str(time.time())}))
        deadline = time.monotonic() + WAIT
        while True:
            seen = self.watcher.wait(timeout=max(0.01, deadline - time.monotonic()))
            output = json.loads(self.client.get(OUTPUT_KEY) or b"{}")
            if output.get("n") == number:
                self.outputs.append(output)
                return seen, output


def run(bench: Bench) -> list[Row]:
    """Rows: takeover after SIGTERM, after SIGKILL, and what the state says was lost or doubled."""
    function = bench.function_copy(COUNTER_FILE)
    trials = bench.size(5, 1)
    client = bench.client()
    enable_key_events(client)
    watcher = KeyWatcher(client, OUTPUT_KEY)
    state = _Run(bench, function, client, watcher)
    times: dict[signal.Signals, list[float]] = {signal.SIGTERM: [], signal.SIGKILL: []}
    children: list[Child] = []
    try:
        leader = state.start()
        children.append(leader)
        _wait(lambda: state.holder_pid() == leader.pid, "the first replica to lead")
        for trial in range(2 * trials):
            standby = state.start()
            children.append(standby)
            time.sleep(2 * INTERVAL)  # subscribed and polling the lease
            for _ in range(BEFORE):
                _, output = state.feed()
                if output["pid"] != leader.pid:
                    raise RuntimeError(f"an input was handled by {output['pid']}, not the leader")
            sig = signal.SIGTERM if trial % 2 == 0 else signal.SIGKILL
            leader.proc.send_signal(sig)
            signalled = time.perf_counter()
            while True:
                seen, output = state.feed()
                if output["pid"] == standby.pid:
                    break
            times[sig].append(seen - signalled)
            leader.stop()
            leader = standby
        for _ in range(BEFORE):
            state.feed()
        seq = int(client.get(f"{OUTPUT_KEY}:state:seq") or 0)
    finally:
        for child in children:
            child.stop()
        watcher.close()
        client.close()
    seen_numbers = list(state.outputs[-1]["seen"])  # type: ignore[call-overload]
    lost = len(set(range(state.sent)) - set(seen_numbers))
    twice = len(seen_numbers) - len(set(seen_numbers)) + max(0, seq - state.sent)
    lost += max(0, state.sent - seq)
    goals = {signal.SIGTERM: INTERVAL, signal.SIGKILL: LEASE_TTL + INTERVAL}
    rows = []
    for sig, goal in goals.items():
        worst = max(times[sig])
        what = "released" if sig is signal.SIGTERM else "lapsed"
        rows.append(
            Row(
                f"takeover after {sig.name} (lease {what})",
                f"{len(times[sig])}",
                f"{seconds(stats.median(times[sig]))} (max {seconds(worst)})",
                f"goal {seconds(goal)}",
                worst / goal,
                f"max ≤ {seconds(goal)}",
                worst <= goal,
            )
        )
    rows.append(
        Row(
            "takeover: inputs lost / processed twice",
            f"{state.sent} inputs",
            f"{lost} lost, {twice} twice",
            f"journal seq {seq}",
            None,
            "0 lost, 0 twice",
            lost == 0 and twice == 0,
        )
    )
    return rows


def _wait(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.02)
