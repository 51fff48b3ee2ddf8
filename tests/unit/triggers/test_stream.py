"""Stream mode's step: entries in order, each once, dead letters, the consumer group recreated."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
import redis
from serverless_runtime.config import Settings
from serverless_runtime.failures import FailureKind
from serverless_runtime.function.context import Context
from serverless_runtime.state.durable import DurableState
from serverless_runtime.storage.store import Journaled, Store
from serverless_runtime.triggers.step import Input, Told
from serverless_runtime.triggers.stream import StreamStep

from tests.support.valkey import ValkeyProcess

Recorded = list[tuple[FailureKind, str]]
MakeStep = Callable[..., tuple[StreamStep, Store, Recorded]]


def stepper(client: redis.Redis, settings: Callable[..., Settings]) -> MakeStep:
    """Builds a started stream step for a consumer, as a (re)started process does."""

    def make(consumer: str = "a", **env: str) -> tuple[StreamStep, Store, Recorded]:
        base = {"TRIGGER": "stream", "REDIS_INPUT_KEY": "in", "STATE_KEY": "", "INTERVAL": "0.05"}
        config = settings(**{**base, **env})
        store = Store(client, config, None, consumer)
        context = Context("localhost", 6379, "in", "out", "")

        def replay(entry: Journaled) -> None:
            raise AssertionError("nothing to replay")

        state = DurableState(context, store, replay, lambda *_: None, persistent=False)
        recorded: Recorded = []
        stream = StreamStep(
            config, store, state, lambda *failure: recorded.append(failure), threading.Event()
        )
        stream.start(None)
        return stream, store, recorded

    return make


@pytest.fixture
def step(client, settings) -> MakeStep:
    return stepper(client, settings)


@pytest.fixture
def valkey_step(valkey: ValkeyProcess, settings) -> Iterator[tuple[MakeStep, redis.Redis]]:
    """Steps on a real Valkey: fakeredis words a read on a deleted stream differently."""
    client = redis.Redis(port=valkey.port)
    client.flushall()
    yield stepper(client, settings), client
    client.close()


def handled(stream: StreamStep, store: Store, passes: int = 3) -> list[bytes | None]:
    """What `passes` passes of the loop call the handler on, each call committed."""
    raws = []
    for _ in range(passes):
        for item in stream.inputs():
            raws.append(item.raw)
            store.commit(b"{}", item.digest, item.entry_id)
            stream.told(item, Told.DONE)
    return raws


def taken(stream: StreamStep) -> list[Input]:
    """One pass whose calls never end: the process dies holding what it took."""
    return list(stream.inputs())


def test_entries_are_handed_out_in_order(step, client) -> None:
    stream, store, _ = step()
    for n in range(3):
        client.xadd("in", {"data": f'{{"n": {n}}}'})
    assert handled(stream, store, passes=4) == [b'{"n": 0}', b'{"n": 1}', b'{"n": 2}']


def test_a_committed_entry_is_not_handed_out_again_after_a_restart(step, client) -> None:
    stream, store, _ = step()
    client.xadd("in", {"data": b'{"n": 1}'})
    assert handled(stream, store) == [b'{"n": 1}']
    restarted, store, _ = step()
    assert handled(restarted, store) == []


def test_an_entry_left_unacknowledged_comes_first_after_a_restart(step, client) -> None:
    stream, _, _ = step()
    client.xadd("in", {"data": b'{"n": 1}'})
    assert [item.raw for item in taken(stream)] == [b'{"n": 1}']
    client.xadd("in", {"data": b'{"n": 2}'})
    restarted, store, _ = step()
    assert handled(restarted, store) == [b'{"n": 1}', b'{"n": 2}']
    assert handled(restarted, store) == []


def test_an_entry_that_keeps_ending_the_process_goes_to_the_dead_letters(step, client) -> None:
    client.xadd("in", {"data": b'{"n": 1}'})
    for _ in range(2):  # delivered twice: within STREAM_MAX_DELIVERIES
        stream, _, recorded = step(STREAM_MAX_DELIVERIES="2")
        [item] = taken(stream)
        assert item.raw == b'{"n": 1}' and recorded == []
    stream, store, recorded = step(STREAM_MAX_DELIVERIES="2")
    assert handled(stream, store) == []
    [(kind, message)] = recorded
    assert kind is FailureKind.POISON_INPUT and item.entry_id in message
    [(_id, fields)] = client.xrange(store.dead_key)
    assert fields[b"entry"].decode() == item.entry_id and fields[b"data"] == b'{"n": 1}'
    assert fields[b"deliveries"] == b"3"
    restarted, store, _ = step(STREAM_MAX_DELIVERIES="2")
    assert handled(restarted, store) == [], "acknowledged: not delivered again"


def test_a_lost_consumer_group_is_created_again(valkey_step) -> None:
    step, client = valkey_step
    stream, store, _ = step()
    client.delete("in")  # the stream deleted: its consumer group with it
    assert handled(stream, store, passes=1) == []
    client.xadd("in", {"data": b'{"n": 1}'})
    assert handled(stream, store) == [b'{"n": 1}']


def test_consumers_share_the_entries_each_handled_by_one(step, client) -> None:
    a, store_a, _ = step("a")
    b, store_b, _ = step("b")
    assert a.leader and b.leader, "every consumer calls the handler"
    for n in range(4):
        client.xadd("in", {"data": f'{{"n": {n}}}'})
    first, second = handled(a, store_a, passes=2), handled(b, store_b, passes=2)
    assert first and second
    assert sorted(raw or b"" for raw in first + second) == [
        f'{{"n": {n}}}'.encode() for n in range(4)
    ]
