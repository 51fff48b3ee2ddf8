"""Poll and notify mode: read the input key under the lease and decide whether to call."""

from __future__ import annotations

import logging

from serverless_runtime.config import InvokeOn
from serverless_runtime.failures import FailureKind
from serverless_runtime.function import loader
from serverless_runtime.storage.store import Reading
from serverless_runtime.triggers.step import Input, Told, Wired

log = logging.getLogger(__name__)


class KeyStep(Wired):
    """One pass over the input key: hand out its input when it holds one not yet processed. Two
    digests decide: `state.digest` is the last *committed* input's (it follows the other replicas'
    commits too); `seen` is the last input *tried* here, committed or failed, so that an input that
    fails is not retried on every tick."""

    blocks = False
    seen: str | None = None
    poisoned: str | None = None  # the digest of an input that hung the process before
    leader = False
    _waiting = False

    def start(self, poisoned: str | None) -> None:
        self.poisoned = poisoned

    def inputs(self) -> list[Input]:
        if self.state.blocked is not None:
            self._stand_aside()
            return []
        reading = self.store.read_input()
        item = None
        try:
            item = self._judge(reading)
        finally:
            if item is None:
                # The read marked the input in flight but it is not called (committed by
                # another replica, failed before, poison): the mark says its call ended.
                self.store.call_ended()
        return [] if item is None else [item]

    def told(self, item: Input, outcome: Told) -> None:
        if outcome is Told.AGAIN:
            self.seen = None  # not committed: judged again at the next read
        elif outcome is Told.POISON:
            self.poisoned = item.digest

    def _judge(self, reading: Reading) -> Input | None:
        self.leader = reading.leader
        if not reading.leader:
            self.state.watch(reading.head)  # Redis reset: a newer state here is written back
            return None
        # State follows the lease: before its first call as leader (again), and whenever another
        # replica committed since, this one brings its state up to the last commit.
        before = self.state.seq
        self.state.sync(reading.head)
        if self.state.seq < before:
            # Redis lost commits (a failover): an input tried here is judged again against them.
            self.seen = None
        if self.state.blocked is not None or self.state.waiting:
            # This version cannot rebuild the committed state (reported), or Redis lost the
            # state and a replica holding it may write it back: no call.
            return None
        if reading.unusable is not None:
            self._unusable(reading.unusable)
            return None
        if reading.raw is None:
            if not self._waiting:
                log.info("waiting for input key %r", self.settings.keys.input)
                self._waiting = True
            return None
        self._waiting = False
        digest = loader.digest(reading.raw)
        if self.settings.invoke_on is InvokeOn.CHANGE and digest in (self.state.digest, self.seen):
            return None
        if digest == self.poisoned:
            return None  # it hung the process before (recorded then)
        self.seen = digest
        return Input(reading.raw, digest)

    def _stand_aside(self) -> None:
        """This version cannot rebuild the state: let a replica whose version can lead."""
        lease = self.store.lease
        if lease is not None and lease.leader:
            lease.release(self.store.client)
        self.leader = False

    def _unusable(self, why: str) -> None:
        """An input key of the wrong type or size: recorded once, until it changes."""
        self._waiting = False
        if self.seen == why:
            return
        self.seen = why
        key = self.settings.keys.input
        message = f"input {key!r} {why}, expected a JSON object as a string"
        self._record(FailureKind.INVALID_INPUT, message)
