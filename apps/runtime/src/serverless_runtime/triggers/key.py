"""Poll and notify mode: read the input key under the lease and decide whether to call."""

from __future__ import annotations

import hashlib
import logging
from typing import Protocol

from serverless_runtime.config import InvokeOn, Settings
from serverless_runtime.failures import FailureKind
from serverless_runtime.state.durable import DurableState
from serverless_runtime.storage.store import Reading, Store

log = logging.getLogger(__name__)


def input_digest(raw: bytes) -> str:
    """Content digest that decides whether an input was already processed."""
    return hashlib.blake2b(raw, digest_size=16).hexdigest()


class Invoker(Protocol):
    """What a step hands its inputs to: the Runner."""

    def invoke(self, raw: bytes | None, digest: str | None, entry_id: str | None = None) -> None:
        """Call the handler on one input and commit, or record the failure."""

    def fail(self, kind: FailureKind, message: str) -> None:
        """Record a failure that is not a call's."""

    def stopping(self) -> bool:
        """True once a stop was asked for."""


class KeyStep:
    """One pass over the input key: call the handler when it holds an input not yet processed.

    Two digests decide: `state.digest` is the last *committed* input's (it follows the other
    replicas' commits too); `seen` is the last input *tried* here, committed or failed, so that an
    input that fails is not retried on every tick.
    """

    def __init__(self, settings: Settings, store: Store, state: DurableState) -> None:
        self.settings = settings
        self.store = store
        self.state = state
        self.seen: str | None = None
        self.poisoned: str | None = None  # the digest of an input that hung the process before
        self.leader = False
        self._waiting = False
        self._called = False

    def __call__(self, runner: Invoker) -> None:
        if self.state.blocked is not None:
            self._stand_aside()
            return
        reading = self.store.read_input()
        self._called = False
        try:
            self._judge(reading, runner)
        finally:
            if not self._called:
                # The read marked the input in flight but it was not called (committed by
                # another replica, failed before, poison): the mark says its call ended.
                self.store.call_ended()

    def _judge(self, reading: Reading, runner: Invoker) -> None:
        self.leader = reading.leader
        if not reading.leader:
            self.state.watch(reading.head)  # Redis reset: a newer state here is written back
            return
        # State follows the lease: before its first call as leader (again), and whenever another
        # replica committed since, this one brings its state up to the last commit.
        before = self.state.seq
        self.state.sync(reading.head)
        if self.state.seq < before:
            # Redis lost commits (a failover): an input tried here is judged again against them.
            self.seen = None
        if self.state.blocked is not None:
            return  # this version cannot rebuild the committed state (reported): no call on it
        if self.state.waiting:
            return  # Redis lost the state: a replica holding it may write it back
        if reading.unusable is not None:
            self._unusable(runner, reading.unusable)
            return
        if reading.raw is None:
            if not self._waiting:
                log.info("waiting for input key %r", self.settings.keys.input)
                self._waiting = True
            return
        self._waiting = False
        digest = input_digest(reading.raw)
        if self.settings.invoke_on is InvokeOn.CHANGE and digest in (self.state.digest, self.seen):
            return
        if digest == self.poisoned:
            return  # it hung the process before (recorded then)
        self.seen = digest
        self._called = True
        runner.invoke(reading.raw, digest)

    def _stand_aside(self) -> None:
        """This version cannot rebuild the state: let a replica whose version can lead."""
        lease = self.store.lease
        if lease is not None and lease.leader:
            lease.release(self.store.client)
        self.leader = False

    def _unusable(self, runner: Invoker, why: str) -> None:
        """An input key of the wrong type or size: recorded once, until it changes."""
        self._waiting = False
        if self.seen == why:
            return
        self.seen = why
        key = self.settings.keys.input
        runner.fail(
            FailureKind.INVALID_INPUT, f"input {key!r} {why}, expected a JSON object as a string"
        )
