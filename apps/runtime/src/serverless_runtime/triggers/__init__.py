"""What wakes the loop, and what it hands to `invoke`: one entry per TRIGGER value.

A step returns the inputs to call the handler on (`inputs`) and is told each one's outcome
(`told`); the loop never reads the input or writes a step's fields. Adding a trigger: a module
with its step (and waiter, if new), a `Trigger` member in config.py, and an entry in TRIGGERS.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import NamedTuple

import redis

from serverless_runtime.config import Settings, Trigger
from serverless_runtime.state.durable import DurableState
from serverless_runtime.storage.store import Store
from serverless_runtime.triggers.key import KeyStep
from serverless_runtime.triggers.step import Record, Step
from serverless_runtime.triggers.stream import StreamStep
from serverless_runtime.triggers.waiters import PollWaiter, Waiter, notify_waiter

MakeWaiter = Callable[[redis.Redis, Settings, threading.Event], Waiter]
MakeStep = Callable[[Settings, Store, DurableState, Record, threading.Event], Step]


class Wiring(NamedTuple):
    waiter: MakeWaiter
    step: MakeStep


def _poll(_client: redis.Redis, _settings: Settings, stop: threading.Event) -> Waiter:
    return PollWaiter(stop)


TRIGGERS: dict[Trigger, Wiring] = {
    Trigger.AUTO: Wiring(notify_waiter, KeyStep),
    Trigger.NOTIFY: Wiring(notify_waiter, KeyStep),
    Trigger.POLL: Wiring(_poll, KeyStep),
    Trigger.STREAM: Wiring(_poll, StreamStep),  # its reads block on the stream
}
