"""Host metrics (`collect`): the sample's schema, and writing it to a real Valkey on schedule."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

import psutil
import redis
from serverless_runtime.commands import collect

from tests.conftest import FUNCTION_FILE
from tests.support.processes import VENV_BIN

RECORDING = Path(__file__).resolve().parents[2] / "fixtures" / "metrics-5s.jsonl"
CPU_STATS = ["ctx_switches", "interrupts", "soft_interrupts", "syscalls"]
MEMORY = [
    "total",
    "available",
    "percent",
    "used",
    "free",
    "active",
    "inactive",
    "buffers",
    "cached",
    "shared",
    "slab",
]
NET = [
    "bytes_sent",
    "bytes_recv",
    "packets_sent",
    "packets_recv",
    "errin",
    "errout",
    "dropin",
    "dropout",
]
# Generous bound for a thread to notice `stop`; the collector waits on the event, not a sleep.
JOIN_SECONDS = 10.0


def design_types(interface: str) -> dict[str, type]:
    """The DESIGN §3 keys for one interface and their JSON types (float, int or str)."""
    types: dict[str, type] = {"timestamp": str, "cpu_freq_current": float, "n_pids": int}
    if not has_cpu_frequency():
        del types["cpu_freq_current"]  # left out, not faked, where the platform has none
    types.update({f"cpu_stats-{name}": int for name in CPU_STATS})
    types.update({f"virtual_memory-{name}": int for name in MEMORY})
    types["virtual_memory-percent"] = float
    types.update({f"net_io_counters_{interface}-{name}": int for name in NET})
    types.update({f"cpu_percent-{cpu}": float for cpu in range(psutil.cpu_count() or 1)})
    return types


def has_cpu_frequency() -> bool:
    """Whether psutil can read a CPU frequency here (some VMs and ARM hosts cannot)."""
    try:
        return psutil.cpu_freq() is not None
    except NotImplementedError:
        return False


def existing_interface() -> str:
    """An interface this host has (lo always exists on Linux)."""
    return "eth0" if "eth0" in psutil.net_io_counters(pernic=True) else "lo"


@contextmanager
def running(client: redis.Redis, key: str, period: float) -> Iterator[threading.Event]:
    """The collector in a thread; stopped and joined on exit."""
    stop = threading.Event()
    thread = threading.Thread(
        target=collect.run, args=(client, key, period, existing_interface(), stop), daemon=True
    )
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(JOIN_SECONDS)
    assert not thread.is_alive()


def wait_for(condition: Any, timeout: float = 30.0) -> None:
    """Poll until condition() is true; fail after `timeout` seconds (a hang guard, not a timing)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_sample_has_every_design_key_with_its_type():
    interface = existing_interface()
    snapshot = collect.sample(interface)
    expected = design_types(interface)
    assert set(snapshot) == set(expected)
    for key, kind in expected.items():
        assert type(snapshot[key]) is kind, key
    datetime.fromisoformat(cast(str, snapshot["timestamp"]))
    assert all(0.0 <= cast(float, snapshot[f"cpu_percent-{cpu}"]) <= 100.0 for cpu in range(2))


def test_sample_keys_match_the_course_recording():
    recorded = json.loads(RECORDING.read_text().splitlines()[0])
    snapshot = collect.sample("eth0")
    recorded_keys = {key for key in recorded if not key.startswith(("net_io", "cpu_percent-"))}
    assert recorded_keys <= set(snapshot)
    if "eth0" in psutil.net_io_counters(pernic=True):
        assert {key for key in recorded if key.startswith("net_io")} <= set(snapshot)


def test_sample_unknown_interface_writes_every_interface_but_lo():
    snapshot = collect.sample("no-such-interface0")
    written = {
        # Interface names may hold a '-' (cni-podman0); the counter's name never does.
        key.rsplit("-", 1)[0].removeprefix("net_io_counters_")
        for key in snapshot
        if key.startswith("net_io")
    }
    assert written == set(psutil.net_io_counters(pernic=True)) - {"lo"}


def test_sample_named_interface_writes_only_that_one():
    snapshot = collect.sample("lo")
    net_keys = {key for key in snapshot if key.startswith("net_io_counters_")}
    assert net_keys == {f"net_io_counters_lo-{name}" for name in NET}


def test_sample_is_json_serializable_with_the_timestamp_format_of_the_course():
    snapshot = collect.sample()
    assert json.loads(json.dumps(snapshot, allow_nan=False)) == snapshot
    at = datetime.fromisoformat(cast(str, snapshot["timestamp"]))
    assert at.tzinfo is None
    assert str(at) == snapshot["timestamp"]


def test_run_writes_parseable_values_at_the_period(redis_client):
    period = 0.2
    started = datetime.now()
    seen: list[datetime] = []

    def four_values() -> bool:
        raw = redis_client.get("metrics")
        if raw is not None:
            value = json.loads(raw)
            assert set(value) == set(design_types(existing_interface()))
            at = datetime.fromisoformat(value["timestamp"])
            if not seen or at != seen[-1]:
                seen.append(at)
        return len(seen) >= 4

    with running(redis_client, "metrics", period):
        wait_for(four_values)
    # The n-th write is due n periods after the start, never earlier (no burst, no early tick).
    for number, at in enumerate(seen, start=1):
        assert at - started >= timedelta(seconds=number * period) - timedelta(milliseconds=5)
    assert seen == sorted(seen)


def test_run_stops_promptly_when_stop_is_set(redis_client):
    stop = threading.Event()
    thread = threading.Thread(
        target=collect.run, args=(redis_client, "metrics", 3600.0, "lo", stop), daemon=True
    )
    thread.start()
    stop.set()
    # With a one-hour period, only waiting on the event can return this soon.
    thread.join(JOIN_SECONDS)
    assert not thread.is_alive()
    assert redis_client.get("metrics") is None


def test_run_keeps_going_while_redis_is_down(own_valkey, caplog):
    client = redis.Redis(port=own_valkey.port, socket_timeout=1, socket_connect_timeout=1)
    caplog.set_level(logging.WARNING, logger=collect.__name__)
    try:
        with running(client, "metrics", 0.1):
            wait_for(lambda: client.get("metrics") is not None)
            own_valkey.stop()
            wait_for(lambda: any("could not write" in r.getMessage() for r in caplog.records))
            own_valkey.start()
            # A restarted server without persistence starts empty: a new value must appear.
            wait_for(lambda: client.get("metrics") is not None)
            json.loads(cast(bytes, client.get("metrics")))
    finally:
        client.close()
    failures = [r for r in caplog.records if "could not write" in r.getMessage()]
    assert failures
    # One line per failure, no traceback.
    assert all(r.exc_info is None and "\n" not in r.getMessage() for r in failures)


class FakeClock:
    """A monotonic clock that moves only when the collector waits or writes."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class ClockedStop(threading.Event):
    """A stop event whose wait() advances the fake clock instead of sleeping."""

    def __init__(self, clock: FakeClock, ticks: int, counter: list[float]) -> None:
        super().__init__()
        self.clock, self.ticks, self.writes = clock, ticks, counter

    def wait(self, timeout: float | None = None) -> bool:
        self.clock.now += timeout or 0.0
        return len(self.writes) >= self.ticks


class SlowWriter:
    """Records when each write starts; each write takes `delays[i]` seconds of fake time."""

    def __init__(self, clock: FakeClock, delays: list[float]) -> None:
        self.clock, self.delays = clock, delays
        self.writes: list[float] = []

    def set(self, key: str, value: str) -> None:
        self.writes.append(self.clock.now)
        json.loads(value)
        self.clock.now += self.delays[len(self.writes) - 1]


def test_run_schedule_does_not_drift_with_slow_writes():
    clock = FakeClock()
    writer = SlowWriter(clock, [1.5] * 10)  # each write eats 30 % of the period
    stop = ClockedStop(clock, 10, writer.writes)
    collect.run(cast(redis.Redis, writer), "metrics", 5.0, "lo", stop, clock=clock)
    assert writer.writes == [1000.0 + 5.0 * tick for tick in range(1, 11)]


def test_run_skips_ticks_missed_during_a_hung_write_instead_of_bursting():
    clock = FakeClock()
    writer = SlowWriter(clock, [1.0, 12.0, 1.0, 1.0, 1.0])  # the 2nd write hangs 12 s
    stop = ClockedStop(clock, 5, writer.writes)
    collect.run(cast(redis.Redis, writer), "metrics", 5.0, "lo", stop, clock=clock)
    assert writer.writes == [1005.0, 1010.0, 1025.0, 1030.0, 1035.0]


def test_collect_once_writes_one_snapshot_an_input_for_invoke(tmp_path: Path) -> None:
    # No Redis anywhere: a file (or stdout) holding this machine's snapshot.
    out = tmp_path / "snapshot.json"
    done = subprocess.run(
        [VENV_BIN / "serverless-runtime", "collect", "--once", "--output", str(out)],
        env={"PATH": os.environ["PATH"], "REDIS_URL": "redis://127.0.0.1:1/0"},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    snapshot = json.loads(out.read_text())
    recorded = json.loads(RECORDING.read_text().splitlines()[0])
    assert {k for k in recorded if not k.startswith(("net_io", "cpu_percent-"))} <= set(snapshot)
    assert f"cpu_percent-{len(psutil.cpu_percent(percpu=True)) - 1}" in snapshot
    printed = subprocess.run(
        [VENV_BIN / "serverless-runtime", "collect", "--once"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert set(json.loads(printed.stdout)) == set(snapshot)
    # The snapshot is what a function takes: resource-monitor's output for it.
    called = subprocess.run(
        [VENV_BIN / "serverless-runtime", "invoke", "--function", str(FUNCTION_FILE),
         "--input", str(out)],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    assert json.loads(called.stdout)["timestamp"] == snapshot["timestamp"]
