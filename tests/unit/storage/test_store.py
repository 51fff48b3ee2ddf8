"""store.py: one read, one atomic commit, nothing half-written."""

from __future__ import annotations

import json
import re

import pytest
from serverless_runtime.storage import store as store_module
from serverless_runtime.storage.lease import Lease
from serverless_runtime.storage.store import Append, CommitRefused, Outcome, Store


@pytest.fixture
def store(client, settings) -> Store:
    return Store(client, settings(), None, "pod")


def append(seq: int, n: int, snapshot: bytes | None = None) -> Append:
    return Append(seq, json.dumps({"n": n}).encode(), "2026-12-01T10:00:00", snapshot)


def test_store_read_input_returns_the_value_and_the_head(store, client) -> None:
    client.set("metrics", b'{"n": 1}')
    client.set("out:state:seq", 7)
    client.set("out:input-digest", "abc")
    reading = store.read_input()
    assert (reading.leader, reading.raw, reading.unusable) == (True, b'{"n": 1}', None)
    assert (reading.head.seq, reading.head.digest) == (7, "abc")


@pytest.mark.parametrize(
    ("write", "why"),
    [
        (lambda c: c.hset("metrics", "n", 1), "holds a hash"),
        (lambda c: c.rpush("metrics", 1), "holds a list"),
        (lambda c: c.set("metrics", "x" * 2000), "is 2000 bytes, over MAX_INPUT_BYTES=1000"),
    ],
)
def test_store_read_input_says_why_an_input_is_unusable(client, settings, write, why) -> None:
    store = Store(client, settings(MAX_INPUT_BYTES="1000"), None, "pod")
    write(client)
    reading = store.read_input()
    assert (reading.raw, reading.unusable) == (None, why)


def test_store_commit_writes_everything_in_one_step(store, client) -> None:
    assert store.commit(b'{"x":1}', "d1", None, append(0, 1)) is Outcome.COMMITTED
    assert client.get("out") == b'{"x":1}'
    assert [f[b"output"] for _i, f in client.xrange("out:history")] == [b'{"x":1}']
    assert client.get("out:state:seq") == b"1"
    assert client.get("out:input-digest") == b"d1"
    assert [(i, f[b"input"]) for i, f in client.xrange("out:state:journal")] == [
        (b"1-0", b'{"n": 1}')
    ]


def test_store_commit_with_a_snapshot_trims_the_journal(store, client) -> None:
    store.commit(None, "d1", None, append(0, 1))
    store.commit(None, "d2", None, append(1, 2))
    assert store.commit(None, "d3", None, append(2, 3, b'{"format":2}')) is Outcome.COMMITTED
    assert client.get("out:state") == b'{"format":2}'
    assert client.xlen("out:state:journal") == 0, "the snapshot covers commits 1 to 3"
    assert client.get("out:state:seq") == b"3"


def test_store_commit_on_a_stale_state_writes_nothing(store, client) -> None:
    store.commit(b"1", "d1", None, append(0, 1))
    assert store.commit(b"2", "d2", None, append(0, 2)) is Outcome.STALE
    assert client.get("out") == b"1"
    assert client.get("out:state:seq") == b"1"


def test_store_commit_without_the_lease_writes_nothing(client, settings) -> None:
    lease = Lease(client, "out:lease", "pod/1", 10)
    store = Store(client, settings(), lease, "pod")
    lease.value = "pod/1:1"  # believes it leads, but the lease says otherwise
    client.set("out:lease", "other/2:2")
    assert store.commit(b"1", "d1", None, append(0, 1)) is Outcome.FENCED
    assert client.get("out") is None
    assert lease.value is None, "the replica stands by"


def test_store_first_read_loads_every_script_and_a_lost_cache_is_loaded_again(
    client, settings
) -> None:
    lease = Lease(client, "out:lease", "pod/1", 10)
    store = Store(client, settings(), lease, "pod")
    client.set("metrics", b'{"n": 1}')
    assert store.read_input().leader
    sources = [source for source, _record in store_module.SCRIPTS.values()] + list(Lease.SCRIPTS)
    shas = [client.register_script(source).sha for source in sources]
    assert client.script_exists(*shas) == [True] * len(shas)
    # Redis restarted (its script cache is empty): the commit and the next read load them again.
    client.script_flush()
    assert store.commit(b"1", "d1", None, append(0, 1)) is Outcome.COMMITTED
    client.script_flush()
    lease.renewed_at = -float("inf")  # the next read renews the lease in the same pipeline
    reading = store.read_input()
    assert (reading.leader, reading.head.seq, reading.head.digest) == (True, 1, "d1")
    assert client.script_exists(*shas) == [True] * len(shas)


def test_store_commit_refuses_a_key_of_the_wrong_type_before_any_write(store, client) -> None:
    client.set("out:history", "not a stream")
    with pytest.raises(CommitRefused, match="out:history holds a string, not a stream"):
        store.commit(b"1", "d1", None, append(0, 1))
    assert client.get("out") is None
    assert client.get("out:state:seq") is None
    assert client.exists("out:state:journal") == 0


def test_store_read_journal_returns_entries_after_a_sequence_number(store) -> None:
    for seq in range(3):
        store.commit(None, f"d{seq}", None, append(seq, seq))
    head, entries = store.read_journal(1)
    assert head.seq == 3
    assert [entry.seq for entry in entries] == [2, 3]
    assert json.loads(entries[0].raw or b"") == {"n": 1}


def test_store_poison_is_remembered(store) -> None:
    store.mark_poison("input", "abc")
    assert store.read_poison() == {"input": "abc"}


def test_store_in_flight_mark_counts_deaths_of_other_processes_only(client, settings) -> None:
    client.set("metrics", b'{"n": 1}')
    first, second, third = (Store(client, settings(MAX_DEATHS="2"), None, "pod") for _ in "123")
    first.read_input()
    assert first.in_flight_deaths == 0
    first.read_input()
    assert first.in_flight_deaths == 0, "its own mark (a refused commit) is no death"
    second.read_input()
    assert second.in_flight_deaths == 1, "the first process ended during the call"
    third.read_input()
    assert third.in_flight_deaths == 2, "at MAX_DEATHS: not marked, the caller poisons it"
    third.mark_poison("input", "abc", 2)
    assert third.read_poison() == {"input": "abc", "input-deaths": "2"}
    third.read_input()
    assert third.in_flight_deaths == -1, "poison is not marked again"


def test_store_an_input_whose_call_ended_is_not_marked_again(store, client) -> None:
    client.set("metrics", b'{"n": 1}')
    store.read_input()
    assert store.commit(b'{"n": 1}', "d1", None, append(0, 1, b"{}")) is Outcome.COMMITTED
    store.read_input()
    assert store.in_flight_deaths == -1, "committed: read again on every tick, never marked"
    client.set("metrics", b'{"n": 2}')
    store.read_input()
    assert store.in_flight_deaths == 0
    store.call_ended()  # failed
    store.read_input()
    assert store.in_flight_deaths == -1


SLOT = re.compile(r"^local (\w+) = (KEYS|ARGV)\[(\d+)\]$", re.MULTILINE)


@pytest.mark.parametrize("name", sorted(store_module.SCRIPTS))
def test_each_script_uses_every_slot_of_its_record_by_name(name: str) -> None:
    source, record = store_module.SCRIPTS[name]
    fields = list(record._fields)  # type: ignore[attr-defined]
    bound = SLOT.findall(source)
    # The KEYS come first, each named `*_key`, then the ARGV, numbered from 1 in field order.
    numkeys = sum(field.endswith("_key") for field in fields)
    assert [local for local, _, _ in bound] == fields
    assert [(table, int(index)) for _, table, index in bound] == [
        ("KEYS", i) for i in range(1, numkeys + 1)
    ] + [("ARGV", i) for i in range(1, len(fields) - numkeys + 1)]
    # Past the slot lines, the script refers to its slots by name only, and to every one of them:
    # a field the script no longer reads is a slot filled for nothing (or a misnamed one).
    body = SLOT.sub("", source)
    assert "KEYS[" not in body and "ARGV[" not in body
    unused = [field for field in fields if not re.search(rf"\b{field}\b", body)]
    assert unused == []
