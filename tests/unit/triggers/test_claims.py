"""claims.py: a long call keeps its stream entry from being claimed, and only while it runs.

On a real Valkey: the keeper renews from its own thread, and the idle times are the server's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from serverless_runtime.config import Settings
from serverless_runtime.storage.store import Entry, Store
from serverless_runtime.triggers.claims import ClaimKeeper

from tests.support.valkey import ValkeyProcess

CLAIM_IDLE = 0.3  # seconds: the keeper renews every 0.1 s


@pytest.fixture
def stores(valkey: ValkeyProcess, settings) -> Iterator[Callable[[str], Store]]:
    """Stores of consumers `a`, `b`, ... on one stream and consumer group."""
    client = redis.Redis(port=valkey.port)
    client.flushall()
    config: Settings = settings(TRIGGER="stream", REDIS_INPUT_KEY="in", STATE_KEY="")

    def make(consumer: str) -> Store:
        store = Store(client, config, None, consumer)
        store.ensure_group()
        return store

    yield make
    client.close()


def read_one(store: Store) -> Entry:
    store.client.xadd("in", {"data": b'{"n": 1}'})
    [entry] = store.read_entries(pending=False, block=1)
    return entry


def owner(store: Store, entry: Entry) -> tuple[str, int]:
    """The consumer the entry is pending for, and how many times it was delivered."""
    reply: Any = store.client.xpending_range("in", store.group, entry.entry_id, entry.entry_id, 1)
    [pending] = reply
    return pending["consumer"].decode(), int(pending["times_delivered"])


def claimed_within(store: Store, seconds: float) -> list[Entry]:
    """What `store`'s consumer claims (idle for CLAIM_IDLE) by trying for `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        entries = store.claim_stale(CLAIM_IDLE)
        if entries:
            return entries
        time.sleep(CLAIM_IDLE / 10)
    return []


def test_a_held_entry_stays_this_consumers_while_its_call_runs(stores) -> None:
    a, b = stores("a"), stores("b")
    entry = read_one(a)
    keeper = ClaimKeeper(a, CLAIM_IDLE)
    keeper.hold(entry.entry_id)
    assert claimed_within(b, 6 * CLAIM_IDLE) == []
    assert owner(a, entry) == ("a", 1), "renewed without counting a new delivery"
    keeper.hold(None)


def test_an_entry_is_released_when_its_call_ends(stores) -> None:
    a, b = stores("a"), stores("b")
    entry = read_one(a)
    keeper = ClaimKeeper(a, CLAIM_IDLE)
    keeper.hold(entry.entry_id)
    keeper.hold(None)  # told the call's outcome, but not acknowledged (the commit failed)
    assert claimed_within(b, 30) == [entry]
    assert owner(b, entry) == ("b", 2)


def test_nothing_held_nothing_renewed(stores) -> None:
    a, b = stores("a"), stores("b")
    entry = read_one(a)
    ClaimKeeper(a, CLAIM_IDLE).hold(None)
    assert claimed_within(b, 30) == [entry]


def test_an_entry_claimed_meanwhile_is_not_taken_back(stores) -> None:
    a, b = stores("a"), stores("b")
    entry = read_one(a)
    keeper = ClaimKeeper(a, CLAIM_IDLE)
    keeper.hold(entry.entry_id)
    b.client.xclaim("in", b.group, "b", 0, [entry.entry_id])  # as if `a` had stalled
    time.sleep(3 * CLAIM_IDLE)  # several of the keeper's renewals
    assert owner(b, entry) == ("b", 2)
    keeper.hold(None)
