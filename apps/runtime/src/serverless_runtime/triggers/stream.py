"""Stream mode: read entries through the consumer group; claim, dead-letter, recreate the group."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Iterator

import redis

from serverless_runtime.failures import FailureKind
from serverless_runtime.storage.store import Entry
from serverless_runtime.triggers.claims import ClaimKeeper
from serverless_runtime.triggers.step import Input, Told, Wired

log = logging.getLogger(__name__)


class StreamStep(Wired):
    """One pass over the stream: this consumer's pending entries first, then claims, then new."""

    blocks = True
    leader = True  # every consumer calls the handler
    seen: str | None = None  # an entry that hung the process is counted by its deliveries

    _read_pending = True  # entries read before a restart come first
    _next_claim = 0.0

    @functools.cached_property
    def _keeper(self) -> ClaimKeeper:
        return ClaimKeeper(self.store, self.settings.stream_claim_idle)

    def start(self, poisoned: str | None) -> None:
        self.store.ensure_group()

    def inputs(self) -> Iterator[Input]:
        self.state.ensure_loaded()  # each consumer has its own state; synced again when stale
        if self.state.blocked is not None:
            return  # this version cannot rebuild the committed state (reported): no call on it
        try:
            entries = self._entries()
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            log.warning("the consumer group is gone (stream deleted?); creating it again")
            self.store.ensure_group()
            return
        for entry in entries:
            if self._stop.is_set():
                return  # unacknowledged entries stay pending and are read again
            self._keeper.hold(entry.entry_id)  # until told its outcome
            yield Input(entry.raw, None, entry.entry_id)

    def told(self, item: Input, outcome: Told) -> None:
        self._keeper.hold(None)

    def _entries(self) -> list[Entry]:
        entries: list[Entry] = []
        if self._read_pending:
            entries = self._without_poison(self.store.read_entries(pending=True, block=0))
            self._read_pending = False
        elif time.monotonic() >= self._next_claim:
            entries = self.store.claim_stale(self.settings.stream_claim_idle)
            if entries:
                log.info("claimed %d entries left pending by another consumer", len(entries))
            entries = self._without_poison(entries)
            self._next_claim = time.monotonic() + self.settings.interval
        return entries or self.store.read_entries(pending=False, block=self.settings.interval)

    def _without_poison(self, entries: list[Entry]) -> list[Entry]:
        """Entries delivered again; those past STREAM_MAX_DELIVERIES go to the dead letters. A
        failing call is recorded and acknowledged at once, so an entry comes back only when a
        process ended while handling it (a crash, a watchdog exit, the kernel's OOM killer)."""
        counts = self.store.deliveries(entries)
        kept = []
        for entry in entries:
            count = counts.get(entry.entry_id, 0)
            if count <= self.settings.stream_max_deliveries:
                kept.append(entry)
                continue
            self.store.dead_letter(entry, count)
            self._record(
                FailureKind.POISON_INPUT,
                f"stream entry {entry.entry_id} was delivered {count} times and never "
                f"acknowledged (the process ended while handling it): moved to "
                f"{self.store.dead_key!r}",
            )
        return kept
