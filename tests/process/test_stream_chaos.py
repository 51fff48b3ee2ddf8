"""Stream mode under chaos: 3,000 entries, three consumers SIGKILLed, restarted, SIGSTOPped and
resumed at random, some calls outlasting STREAM_CLAIM_IDLE: each entry's effect is in exactly
one consumer's committed state, once (real Valkey, real processes)."""

from __future__ import annotations

import json
import random
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.process.functions import ledger
from tests.support.processes import RUNTIME, Process, runtime_env, wait_for
from tests.support.state import committed_env

FUNCTIONS = Path(__file__).parent / "functions"
pytestmark = pytest.mark.slow
ENTRIES = 3000
CONSUMERS = ("a", "b", "c")
GROUP = "serverless-runtime"


class Consumers:
    """Three consumer processes, each restarted under its own name after a kill."""

    def __init__(self, valkey: Any, tmp_path: Path) -> None:
        self.valkey, self.tmp_path = valkey, tmp_path
        self.procs = {name: self._start(name) for name in CONSUMERS}
        self.stopped: dict[str, float] = {}  # name -> when to resume it
        self.kills = self.stops = 0

    def _start(self, name: str) -> Process:
        env = runtime_env(
            self.valkey.port, "out", FUNCTION_PATH=str(FUNCTIONS / "ledger.py"),
            TRIGGER="stream", STREAM_CONSUMER=name, STREAM_CLAIM_IDLE="1", INTERVAL="0.2",
            STREAM_MAX_DELIVERIES="1000", HISTORY_LENGTH="10000",
        )  # fmt: skip
        return Process([RUNTIME], env, self.tmp_path / f"{name}.log")

    def chaos(self, rng: random.Random) -> None:
        """One random blow: a SIGKILL and restart, or a SIGSTOP for up to 2.5 s."""
        now = time.monotonic()
        for name, until in list(self.stopped.items()):
            if now >= until:
                self.procs[name].signal(signal.SIGCONT)
                del self.stopped[name]
        name = rng.choice(CONSUMERS)
        if name in self.stopped:
            return
        if rng.random() < 0.5:
            self.procs[name].close()
            self.procs[name] = self._start(name)
            self.kills += 1
        else:
            self.procs[name].signal(signal.SIGSTOP)
            self.stopped[name] = now + rng.uniform(0.3, 2.5)
            self.stops += 1

    def resume_all(self) -> None:
        for name in list(self.stopped):
            self.procs[name].signal(signal.SIGCONT)
        self.stopped.clear()

    def close(self) -> None:
        self.resume_all()
        for proc in self.procs.values():
            proc.close()


def drained(client: redis.Redis) -> bool:
    group: Any = next(g for g in client.xinfo_groups("metrics") if g["name"] == GROUP)
    return bool(group["entries-read"] == ENTRIES and group["pending"] == 0)


def test_stream_entries_take_effect_exactly_once_under_chaos(
    valkey, redis_client, tmp_path: Path
) -> None:
    rng = random.Random(20261206)
    pipe = redis_client.pipeline(transaction=False)
    for n in range(ENTRIES):
        entry: dict[str, Any] = {"n": n}
        if n % 300 == 150:
            entry["slow"] = 2.5  # outlasts STREAM_CLAIM_IDLE=1: must keep its claim
        pipe.xadd("metrics", {"data": json.dumps(entry)})
    pipe.execute()
    redis_client.xgroup_create("metrics", GROUP, id="0")
    consumers = Consumers(valkey, tmp_path)
    try:
        deadline = time.monotonic() + 120
        while not drained(redis_client) and consumers.kills + consumers.stops < 40:
            assert time.monotonic() < deadline, "no progress under chaos"
            time.sleep(rng.uniform(0.2, 0.6))
            consumers.chaos(rng)
        consumers.resume_all()
        wait_for(lambda: drained(redis_client), timeout=120, what="every entry acknowledged")
    finally:
        consumers.close()

    states = {
        name: committed_env(redis_client, f"out:state:{name}", ledger.handler).get("seen", [])
        for name in CONSUMERS
    }
    applied = Counter(n for seen in states.values() for n in seen)
    twice = sorted(n for n, count in applied.items() if count > 1)
    missing = sorted(set(range(ENTRIES)) - set(applied))
    assert (twice, missing) == ([], []), f"{consumers.kills} kills, {consumers.stops} stops"
    assert redis_client.xlen("out:dead") == 0
