"""Stream mode: read entries through the consumer group; claim, dead-letter, recreate the group."""

from __future__ import annotations

import logging
import time

import redis

from serverless_runtime.config import Settings
from serverless_runtime.failures import FailureKind
from serverless_runtime.state.durable import DurableState
from serverless_runtime.storage.store import Entry, Store
from serverless_runtime.triggers.claims import ClaimKeeper
from serverless_runtime.triggers.key import Invoker

log = logging.getLogger(__name__)


class StreamStep:
    """One pass over the stream: this consumer's pending entries first, then claims, then new."""

    def __init__(self, settings: Settings, store: Store, state: DurableState) -> None:
        self.settings = settings
        self.store = store
        self.state = state
        self._read_pending = True  # entries read before a restart come first
        self._next_claim = 0.0
        self._keeper = ClaimKeeper(store, settings.stream_claim_idle)

    def __call__(self, runner: Invoker) -> None:
        self.state.ensure_loaded()  # each consumer has its own state; synced again when stale
        if self.state.blocked is not None:
            return  # this version cannot rebuild the committed state (reported): no call on it
        try:
            entries = self._entries(runner)
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            log.warning("the consumer group is gone (stream deleted?); creating it again")
            self.store.ensure_group()
            return
        for entry in entries:
            if runner.stopping():
                return  # unacknowledged entries stay pending and are read again
            with self._keeper.holding(entry.entry_id):
                runner.invoke(entry.raw, None, entry.entry_id)

    def _entries(self, runner: Invoker) -> list[Entry]:
        entries: list[Entry] = []
        if self._read_pending:
            entries = self._without_poison(runner, self.store.read_entries(pending=True, block=0))
            self._read_pending = False
        elif time.monotonic() >= self._next_claim:
            entries = self.store.claim_stale(self.settings.stream_claim_idle)
            if entries:
                log.info("claimed %d entries left pending by another consumer", len(entries))
            entries = self._without_poison(runner, entries)
            self._next_claim = time.monotonic() + self.settings.interval
        return entries or self.store.read_entries(pending=False, block=self.settings.interval)

    def _without_poison(self, runner: Invoker, entries: list[Entry]) -> list[Entry]:
        """Entries delivered again; those past STREAM_MAX_DELIVERIES go to the dead letters.

        A failing call is recorded and acknowledged at once, so an entry comes back only when a
        process ended while handling it (a crash, a watchdog exit, the kernel's OOM killer).
        """
        counts = self.store.deliveries(entries)
        kept = []
        for entry in entries:
            count = counts.get(entry.entry_id, 0)
            if count <= self.settings.stream_max_deliveries:
                kept.append(entry)
                continue
            self.store.dead_letter(entry, count)
            runner.fail(
                FailureKind.POISON_INPUT,
                f"stream entry {entry.entry_id} was delivered {count} times and never "
                f"acknowledged (the process ended while handling it): moved to "
                f"{self.store.dead_key!r}",
            )
        return kept
