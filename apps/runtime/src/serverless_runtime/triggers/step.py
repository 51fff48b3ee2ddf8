"""What a trigger's step hands to `invoke`, and what it is told back."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from enum import Enum
from typing import TYPE_CHECKING, NamedTuple, Protocol

from serverless_runtime.failures import FailureKind

if TYPE_CHECKING:
    from serverless_runtime.config import Settings
    from serverless_runtime.state.durable import DurableState
    from serverless_runtime.storage.store import Store


class Input(NamedTuple):
    """One input to call the handler on."""

    raw: bytes | None
    digest: str | None = None  # key mode: what decides whether it was processed
    entry_id: str | None = None  # stream mode: the entry the commit acknowledges


class Told(Enum):
    """What became of an input handed to `invoke`."""

    DONE = "done"  # committed, or failed and recorded: not tried again
    AGAIN = "again"  # not committed (Redis away, fenced, stale, claimed): judge it again
    POISON = "poison"  # it ended the process MAX_DEATHS times: never called again


Record = Callable[[FailureKind, str], None]  # a failure that is not a call's


class Step(Protocol):
    """One pass over the trigger's input."""

    leader: bool  # this replica calls the handler (the lease, in key mode)
    blocks: bool  # its read waits for input by itself: the loop does not wait after it
    seen: str | None  # the digest of the input last handed out (the watchdog blames it)

    def start(self, poisoned: str | None) -> None:
        """Once Redis answers: `poisoned` is the input that hung the process before."""

    def inputs(self) -> Iterable[Input]:
        """The inputs to call the handler on now, in order."""

    def told(self, item: Input, outcome: Told) -> None:
        """The call on `item` ended so (also when `invoke` raised: AGAIN)."""


class Wired:
    """What the trigger table builds every step from."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        state: DurableState,
        record: Record,
        stop: threading.Event | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.state = state
        self._record = record
        self._stop = stop or threading.Event()
