"""Several replicas: the lease lets exactly one invoke; a standby takes over; fencing holds."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import RUNTIME, Process, runtime_env, wait_for

FUNCTIONS = Path(__file__).parent / "functions"
pytestmark = pytest.mark.slow
INTERVAL = 1.0


@pytest.fixture
def replicas(valkey, tmp_path: Path) -> Iterator[dict[str, Process]]:
    started: dict[str, Process] = {}

    def start(name: str, **extra: str) -> Process:
        env = runtime_env(
            valkey.port, "out", FUNCTION_PATH=str(FUNCTIONS / "recorder.py"),
            TRIGGER="notify", INTERVAL=str(INTERVAL), STREAM_CONSUMER=name, **extra,
        )  # fmt: skip
        started[name] = Process([RUNTIME], env, tmp_path / f"{name}.log")
        return started[name]

    started["start"] = start  # type: ignore[assignment]
    yield started
    for _name, proc in started.items():
        if isinstance(proc, Process):
            proc.close()


def holder(client) -> str | None:
    value = client.get("out:lease")
    return None if value is None else value.split("/")[0]


def calls(client) -> list[tuple[int, int]]:
    return [tuple(json.loads(item)) for item in client.lrange("calls", 0, -1)]


def feed(client, n: int) -> None:
    client.set("metrics", json.dumps({"n": n}))
    wait_for(lambda: json.loads(client.get("out") or "{}").get("n") == n, what=f"output {n}")


def test_standby_takes_over_when_leader_dies(replicas, redis_client) -> None:
    a = replicas["start"]("a")
    wait_for(lambda: holder(redis_client) == "a", what="a to lead")
    b = replicas["start"]("b")
    wait_for(lambda: "watching" in b.output(), what="b to start")
    for n in range(3):
        feed(redis_client, n)
    assert {pid for pid, _ in calls(redis_client)} == {a.proc.pid}

    a.kill()  # SIGKILL: the lease is not released, it has to lapse
    killed = time.monotonic()
    redis_client.set("metrics", json.dumps({"n": 3}))
    wait_for(lambda: holder(redis_client) == "b", timeout=10 * INTERVAL, what="b to take over")
    took = time.monotonic() - killed
    wait_for(lambda: json.loads(redis_client.get("out") or "{}").get("n") == 3, what="output 3")
    for n in range(4, 6):
        feed(redis_client, n)
    seen = [n for _, n in calls(redis_client)]
    assert sorted(seen) == list(range(6)), "every input invoked exactly once"
    assert calls(redis_client)[-1][0] == b.proc.pid
    print(
        f"takeover after SIGKILL: {took:.2f} s (INTERVAL={INTERVAL}, 3 x INTERVAL={3 * INTERVAL})"
    )


def test_rolling_update_overlap_has_one_writer_at_a_time(replicas, redis_client) -> None:
    old = replicas["start"]("old")
    wait_for(lambda: holder(redis_client) == "old", what="old to lead")
    feed(redis_client, 0)
    new = replicas["start"]("new")  # the new pod starts before the old one stops
    wait_for(lambda: "watching" in new.output(), what="new to start")
    feed(redis_client, 1)
    feed(redis_client, 2)
    old.signal(signal.SIGTERM)
    assert old.wait() == 0
    assert "released lease" in old.output()
    for n in range(3, 6):
        feed(redis_client, n)
    writers = [pid for pid, _ in calls(redis_client)]
    assert [n for _, n in calls(redis_client)] == list(range(6))
    # All of the old pod's calls come before all of the new pod's: never both at once.
    switch = writers.index(new.proc.pid)
    assert set(writers[:switch]) == {old.proc.pid}
    assert set(writers[switch:]) == {new.proc.pid}


def test_fencing_discards_result_of_leader_that_lost_its_lease(replicas, redis_client) -> None:
    slow = replicas["start"]("slow", LEASE_TTL="1.5")
    wait_for(lambda: holder(redis_client) == "slow", what="slow to lead")
    fast = replicas["start"]("fast", LEASE_TTL="1.5")
    wait_for(lambda: "watching" in fast.output(), what="fast to start")
    # The call outlives the lease (no renewal during a call), so the standby takes over.
    redis_client.set("metrics", json.dumps({"n": 1, "sleep": 4, "only_first": True}))
    wait_for(lambda: "was taken over" in slow.output(), timeout=20, what="slow to be fenced")
    out = json.loads(wait_for(lambda: redis_client.get("out"), what="an output"))
    assert out["pid"] == fast.proc.pid, "only the lease holder's result is written"
    assert [pid for pid, _ in calls(redis_client)] == [slow.proc.pid, fast.proc.pid]
    assert slow.alive and fast.alive
