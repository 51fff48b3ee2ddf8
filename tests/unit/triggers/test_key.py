"""The trigger table, and the key step: what it hands out, and what the outcome changes."""

from __future__ import annotations

import json
import threading

import pytest
from serverless_runtime.config import Trigger
from serverless_runtime.failures import FailureKind
from serverless_runtime.function.context import Context
from serverless_runtime.function.loader import digest
from serverless_runtime.state.durable import DurableState
from serverless_runtime.storage.store import Journaled, Store
from serverless_runtime.triggers import TRIGGERS
from serverless_runtime.triggers.key import KeyStep
from serverless_runtime.triggers.step import Input, Told
from serverless_runtime.triggers.stream import StreamStep
from serverless_runtime.triggers.waiters import PollWaiter


def test_every_trigger_has_a_waiter_and_a_step(client, settings) -> None:
    assert set(TRIGGERS) == set(Trigger)
    assert TRIGGERS[Trigger.STREAM].step is StreamStep
    assert {TRIGGERS[name].step for name in Trigger if name is not Trigger.STREAM} == {KeyStep}
    poll = TRIGGERS[Trigger.POLL].waiter(client, settings(), threading.Event())
    assert isinstance(poll, PollWaiter)


@pytest.fixture
def step(client, settings):
    def make(**env: str) -> tuple[KeyStep, list[tuple[FailureKind, str]]]:
        config = settings(LEASE_KEY="", STATE_KEY="", **env)
        store = Store(client, config, None, "pod")
        context = Context("localhost", 6379, "metrics", "out", "")

        def replay(entry: Journaled) -> None:
            raise AssertionError("nothing to replay")

        state = DurableState(context, store, replay, lambda *_: None, persistent=False)
        recorded: list[tuple[FailureKind, str]] = []
        key = KeyStep(config, store, state, lambda kind, message: recorded.append((kind, message)))
        key.start(None)
        return key, recorded

    return make


def test_an_input_is_handed_out_once_it_was_done(step, client) -> None:
    key, _ = step()
    assert key.inputs() == []  # no input yet
    raw = json.dumps({"n": 1}).encode()
    client.set("metrics", raw)
    [item] = key.inputs()
    assert item == Input(raw, digest(raw))
    key.told(item, Told.DONE)
    assert key.inputs() == []  # tried: not again until it changes


def test_an_input_not_committed_is_handed_out_again(step, client) -> None:
    key, _ = step()
    client.set("metrics", b'{"n": 1}')
    [item] = key.inputs()
    key.told(item, Told.AGAIN)
    assert key.inputs() == [item]


def test_a_poison_input_is_never_handed_out_again(step, client) -> None:
    key, _ = step(INVOKE_ON="interval")  # otherwise called again on every tick
    client.set("metrics", b'{"n": 1}')
    [item] = key.inputs()
    assert key.inputs() == [item]
    key.told(item, Told.POISON)
    assert key.inputs() == []


def test_an_input_that_hung_before_start_is_not_handed_out(step, client) -> None:
    key, _ = step(INVOKE_ON="interval")
    client.set("metrics", b'{"n": 1}')
    key.start(digest(b'{"n": 1}'))
    assert key.inputs() == []


def test_an_unusable_input_key_is_recorded_once(step, client) -> None:
    key, recorded = step()
    client.hset("metrics", "a", "b")
    assert key.inputs() == key.inputs() == []
    [(kind, message)] = recorded
    assert kind is FailureKind.INVALID_INPUT and "'metrics'" in message
