"""What the loop reports about itself: plain numbers, cheap to update, read by the probes."""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from dataclasses import dataclass, field

# Upper bounds (seconds) of the call-duration histogram buckets; +Inf is implied.
DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


@dataclass
class Telemetry:
    """Counters and gauges updated by the loop's thread and read by the HTTP thread."""

    # The loop counts as stuck when it has not beaten for this long (see probes.healthz).
    stale_after: float
    heartbeat_at: float = field(default_factory=time.monotonic)
    outcomes: dict[str, int] = field(default_factory=dict)
    duration_counts: list[int] = field(default_factory=lambda: [0] * (len(DURATION_BUCKETS) + 1))
    duration_sum: float = 0.0
    input_age: float | None = None
    last_success: float | None = None
    leader: bool = True
    reloads: dict[str, int] = field(default_factory=dict)
    load_failures: dict[str, int] = field(default_factory=dict)  # failed reloads by kind
    state_bytes: int = 0
    redis_ok: bool = False
    function_loaded: bool = False
    busy_since: float | None = None  # a call or an import of the function is running
    loading: bool = False  # ... and it is an import
    recovering: bool = False  # the state is being rebuilt (the journal replayed): not ready
    state_problem: str | None = None  # why the state cannot be rebuilt: not ready
    poison: str | None = None  # what `<out>:poison` holds, said by /readyz (still ready)
    # The newest version failed to load (registry.LoadFailure.describe), said by /readyz.
    load_failure: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def beat(self, pause: float = 0.0) -> None:
        """The loop is alive and not stuck (and will sleep `pause` seconds on purpose)."""
        self.heartbeat_at = time.monotonic() + pause

    def invoked(self, outcome: str, duration: float | None, input_age: float | None) -> None:
        """One invocation ended with `outcome` (`success` or a failure kind)."""
        with self.lock:
            self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
            if duration is not None:
                self.duration_counts[bisect_left(DURATION_BUCKETS, duration)] += 1
                self.duration_sum += duration
            if input_age is not None:
                self.input_age = input_age
            if outcome == "success":
                self.last_success = time.time()
        self.busy_since = None

    def reloaded(self, ok: bool, kind: str | None = None) -> None:
        key = "success" if ok else "failure"
        with self.lock:
            self.reloads[key] = self.reloads.get(key, 0) + 1
            if kind is not None:
                self.load_failures[kind] = self.load_failures.get(kind, 0) + 1

    def heartbeat_age(self) -> float:
        return max(0.0, time.monotonic() - self.heartbeat_at)
