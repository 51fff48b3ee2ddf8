"""The runtime's loop body wired in this process, as `serverless-runtime run` wires it.

The handler can be wrapped in a `HandlerClock`, so that a step's time can be split into the
handler's own time and the runtime's overhead; the store counts the snapshots it commits.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from serverless_runtime.config import Settings
from serverless_runtime.function.loader import FunctionSource, LoadedFunction, load_file
from serverless_runtime.loop import Runner
from serverless_runtime.ops.telemetry import Telemetry
from serverless_runtime.storage.lease import Lease
from serverless_runtime.storage.store import Append, Outcome, Store, connect
from serverless_runtime.triggers.waiters import PollWaiter


class HandlerClock:
    """Wraps a handler; `last` is the duration of its latest call, `total` the sum of all."""

    def __init__(self) -> None:
        self.last = 0.0
        self.total = 0.0
        self.calls = 0

    def wrap(self, loaded: LoadedFunction) -> LoadedFunction:
        """The same function with its handler timed."""
        handler = loaded.handler
        clock = time.perf_counter

        def timed(value: Any, context: Any) -> Any:
            started = clock()
            try:
                return handler(value, context)
            finally:
                self.last = clock() - started
                self.total += self.last
                self.calls += 1

        return dataclasses.replace(loaded, handler=timed)


class CountingStore(Store):
    """A Store that counts the commits carrying a snapshot."""

    snapshots = 0

    def commit(
        self,
        output_json: bytes | None,
        input_digest: str | None,
        entry_id: str | None = None,
        append: Append | None = None,
    ) -> Outcome:
        """Commit as the runtime does; count a snapshot written with it."""
        outcome = super().commit(output_json, input_digest, entry_id, append)
        if outcome is Outcome.COMMITTED and append is not None and append.snapshot is not None:
            self.snapshots += 1
        return outcome


class Runtime:
    """One runtime instance in this process: `step()` is one pass of its loop."""

    def __init__(
        self, env: Mapping[str, str] | Settings, clock: HandlerClock | None = None
    ) -> None:
        self.settings = env if isinstance(env, Settings) else Settings.from_env(env)
        settings = self.settings
        self.client = connect(settings.redis)
        lease = None
        if settings.keys.lease:
            lease = Lease(self.client, settings.keys.lease, "bench/1", settings.lease_ttl)
        self.store = CountingStore(self.client, settings, lease, settings.stream_consumer)
        self.telemetry = Telemetry(stale_after=30.0)
        self.stop = threading.Event()

        def load(path: Path) -> LoadedFunction:
            loaded = load_file(path)
            return clock.wrap(loaded) if clock is not None else loaded

        self.runner = Runner(
            settings,
            self.store,
            FunctionSource(Path(settings.function_path), load),
            lambda: PollWaiter(self.stop),
            self.stop,
            self.telemetry,
        )

    def step(self) -> None:
        """One pass of the loop: reload check, read, call, commit."""
        self.runner.step()

    def check(self, expected: int) -> None:
        """Fail loudly unless exactly `expected` inputs were processed successfully."""
        done = self.telemetry.outcomes.get("success", 0)
        if done != expected:
            raise RuntimeError(f"runtime processed {done} of {expected} inputs: {self.telemetry}")

    def close(self) -> None:
        """Close the client."""
        self.client.close()
