"""state.py: snapshot + journal, rebuilt by replay; rollback; following other replicas' commits."""

from __future__ import annotations

import json
from typing import Any

import pytest
from serverless_runtime.function.context import Context
from serverless_runtime.state.durable import DurableState
from serverless_runtime.storage.store import Journaled, Outcome, Store


class Replica:
    """A DurableState with a counting handler, as a Runner wires it."""

    def __init__(self, client: Any, settings: Any) -> None:
        self.store = Store(client, settings(), None, "pod")
        self.context = Context("localhost", 6379, "metrics", "out", "")
        self.reports: list[tuple[str, str]] = []
        self.replayed = 0
        self.state = DurableState(
            self.context, self.store, self._replay, self._report, persistent=True
        )

    def _replay(self, entry: Journaled) -> None:
        self.replayed += 1
        self.call(json.loads(entry.raw or b""))

    def _report(self, kind: str, message: str, _exc: BaseException | None) -> None:
        self.reports.append((kind, message))

    def call(self, value: dict[str, Any]) -> None:
        if value.get("fail"):
            raise ValueError("asked to fail")
        self.context.env.setdefault("seen", []).append(value["n"])

    def commit(self, n: int) -> Outcome:
        """One successful call on {"n": n}, committed."""
        self.state.sync()
        raw = json.dumps({"n": n}).encode()
        self.call({"n": n})
        append = self.state.plan(raw)
        outcome = self.store.commit(None, f"d{n}", None, append)
        if outcome is Outcome.COMMITTED:
            self.state.committed(append)
        else:
            self.state.rollback()
        return outcome


@pytest.fixture
def replica(client, settings) -> Replica:
    return Replica(client, settings)


def test_state_first_commit_writes_a_snapshot_then_inputs_are_journaled(replica, client) -> None:
    replica.commit(1)
    assert json.loads(client.get("out:state"))["env"] == {"seen": [1]}
    replica.commit(2)
    assert client.xlen("out:state:journal") == 1, "the input, not the state"


def test_state_snapshot_once_the_journal_outweighs_it(replica, client) -> None:
    for n in range(1, 12):
        replica.commit(n)
        snapshot = client.get("out:state") or b""
        journal = sum(len(f[b"input"]) for _i, f in client.xrange("out:state:journal"))
        assert journal <= len(snapshot), "the journal never holds more bytes than the snapshot"


def test_state_a_new_replica_rebuilds_from_snapshot_and_journal(client, settings) -> None:
    first = Replica(client, settings)
    for n in range(1, 8):
        first.commit(n)
    second = Replica(client, settings)
    second.state.sync()
    assert second.context.env == {"seen": [1, 2, 3, 4, 5, 6, 7]}
    assert second.state.seq == 7
    assert second.replayed == client.xlen("out:state:journal")


def test_state_follows_commits_made_by_another_replica(client, settings) -> None:
    a, b = Replica(client, settings), Replica(client, settings)
    a.commit(1)
    b.commit(2)  # b loads a's commit first
    a.commit(3)  # a catches up with b's before its call
    assert a.context.env == {"seen": [1, 2, 3]}
    assert a.replayed == 1, "only the commit it had not made itself"


def test_state_commit_on_stale_state_is_refused_and_rolled_back(client, settings) -> None:
    a, b = Replica(client, settings), Replica(client, settings)
    a.commit(1)
    b.commit(2)
    a.call({"n": 3})  # a calls without catching up first: its commit must not land
    append = a.state.plan(b'{"n": 3}')
    assert a.store.commit(None, "d3", None, append) is Outcome.STALE
    a.state.rollback()
    a.state.sync()
    assert a.context.env == {"seen": [1, 2]}


def test_state_rollback_undoes_a_failed_call(replica) -> None:
    replica.commit(1)
    replica.commit(2)
    replica.context.env["seen"].append("garbage")  # what a failing call left behind
    replica.state.rollback()
    assert replica.context.env == {"seen": [1, 2]}


def test_state_unreadable_snapshot_is_reported_and_the_journal_replayed(client, settings) -> None:
    client.set("out:state", "{nope")
    client.xadd("out:state:journal", {"input": '{"n": 5}', "at": ""}, id="1-0")
    client.set("out:state:seq", 1)
    replica = Replica(client, settings)
    replica.state.sync()
    assert replica.context.env == {"seen": [5]}
    assert replica.reports[0][0] == "invalid-state"


def test_state_entry_this_version_cannot_replay_blocks_until_another_version(
    client, settings
) -> None:
    client.xadd("out:state:journal", {"input": '{"n": 1}', "at": ""}, id="1-0")
    client.xadd("out:state:journal", {"input": '{"fail": true}', "at": ""}, id="2-0")
    client.xadd("out:state:journal", {"input": '{"n": 3}', "at": ""}, id="3-0")
    client.set("out:state:seq", 3)
    replica = Replica(client, settings)
    replica.state.use("bad", replica._replay)
    replica.state.sync()
    assert replica.state.blocked, "this version cannot rebuild the state"
    assert [kind for kind, _ in replica.reports] == ["replay-error"]
    assert "commit 2 cannot be replayed by function version bad" in replica.reports[0][1]
    replica.state.sync()  # the same version: nothing tried again, nothing reported again
    assert len(replica.reports) == 1
    assert client.xlen("out:state:journal") == 3, "the journal is kept"

    def tolerant(entry: Journaled) -> None:  # another version, which can replay entry 2
        value = json.loads(entry.raw or b"")
        replica.context.env.setdefault("seen", []).append(value.get("n", "failed"))

    replica.state.use("fixed", tolerant)
    replica.state.sync()
    assert not replica.state.blocked
    assert replica.context.env == {"seen": [1, "failed", 3]}
    assert replica.state.seq == 3


def test_state_rollback_replays_each_commit_with_the_version_that_made_it(replica) -> None:
    replica.commit(1)
    replica.commit(2)  # journaled: the state is small, the first commit wrote the snapshot

    def broken(entry: Journaled) -> None:
        raise RuntimeError("a bad version")

    replica.state.use("bad", broken)
    replica.context.env["seen"].append("garbage")  # what the bad version's failed call left
    replica.state.rollback()
    assert replica.context.env == {"seen": [1, 2]}
    assert replica.reports == []
    replica.context.env["seen"].append("garbage")
    replica.replayed = 0
    replica.state.rollback()  # again: from the state kept at the last rollback, no replay
    assert replica.context.env == {"seen": [1, 2]}
    assert replica.replayed == 0


@pytest.mark.parametrize(
    ("document", "env"),
    [
        (b'{"calls": 3, "$t": "kept"}', {"calls": 3, "$t": "kept"}),
        (
            b'{"format": 2, "seq": 0, "function": "", "at": "2026-12-01T10:00:00",'
            b' "env": {"0": [1], "$t": "tuple", "v": [1]}}',
            {"0": [1], "$t": "tuple", "v": [1]},
        ),
        (
            b'{"format": 3, "seq": 0, "function": "", "at": "2026-12-01T10:00:00",'
            b' "env": {"b": {"$t": "dict", "v": [[0, {"$t": "tuple", "v": [1, 2]}]]}}}',
            {"b": {0: (1, 2)}},
        ),
    ],
    ids=["format-less", "format-2", "format-3"],
)
def test_state_snapshots_of_every_format_load(client, settings, document, env) -> None:
    client.set("out:state", document)
    replica = Replica(client, settings)
    replica.state.sync()
    assert replica.context.env == env
    assert replica.reports == []
    replica.commit(1)
    replica.state.save()  # written again in this runtime's format, read back the same
    again = Replica(client, settings)
    again.state.sync()
    assert again.context.env == {**env, "seen": [1]}
    # Format 3 only when the state needs a tag: a plain one stays readable by earlier runtimes.
    assert json.loads(client.get("out:state"))["format"] == (3 if b"$t" in document else 2)


def test_state_snapshot_before_the_journal_takes_longer_than_max_replay_seconds(
    client, settings
) -> None:
    replica = Replica(client, settings)
    replica.state = DurableState(
        replica.context,
        replica.store,
        replica._replay,
        replica._report,
        persistent=True,
        max_replay_seconds=2.5,
    )
    replica.context.env["pad"] = "x" * 10000  # the byte rule alone would journal every input
    lengths = []
    for n in range(1, 12):
        replica.state.observe(1.0)  # each call (and so each replay) takes a second
        replica.commit(n)
        lengths.append(client.xlen("out:state:journal"))
    assert max(lengths) == 2, lengths  # 2 entries replay in 2 s; a third would take 3 s


def test_state_kept_in_memory_only_is_rolled_back_too(client, settings) -> None:
    replica = Replica(client, settings)
    replica.state = DurableState(
        replica.context, replica.store, replica._replay, replica._report, persistent=False
    )
    replica.commit(1)
    replica.commit(2)
    replica.context.env["seen"].append("garbage")
    replica.state.rollback()
    assert replica.context.env == {"seen": [1, 2]}


def test_state_snapshot_nested_too_deeply_is_reported_not_fatal(client, settings) -> None:
    deep = "[" * 600 + "]" * 600
    client.set("out:state", '{"calls": 1, "deep": ' + deep + "}")
    replica = Replica(client, settings)
    replica.state.sync()
    assert replica.context.env == {}
    assert [kind for kind, _ in replica.reports] == ["invalid-state"]


def test_state_snapshot_of_a_newer_runtime_is_kept_and_nothing_processed(client, settings) -> None:
    document = b'{"format": 4, "seq": 2, "env": {"new": "shape"}}'
    client.set("out:state", document)
    client.set("out:state:seq", 2)
    replica = Replica(client, settings)
    replica.state.sync()
    assert replica.state.blocked, "no call on a state this runtime cannot read"
    assert [kind for kind, _ in replica.reports] == ["invalid-state"]
    assert "newer runtime (format 4" in replica.reports[0][1]
    assert client.get("out:state") == document
    reset = Replica(client, settings)
    reset.state = DurableState(
        reset.context, reset.store, reset._replay, reset._report, True, reset_token="t1"
    )
    reset.state.sync()
    assert not reset.state.blocked
    assert reset.context.env == {}
    assert reset.state.seq == 2


def test_state_newer_snapshot_gone_when_another_version_loads_is_no_longer_refused(
    client, settings
) -> None:
    client.set("out:state", b'{"format": 4, "seq": 2, "env": {"new": "shape"}}')
    client.set("out:state:seq", 2)
    replica = Replica(client, settings)
    replica.state.use("v1", replica._replay)
    replica.state.sync()
    assert replica.state.blocked
    client.delete("out:state")  # the newer runtime's snapshot is gone (deleted, or Redis reset)
    replica.state.use("v2", replica._replay)
    replica.state.sync()
    assert not replica.state.blocked, "a snapshot no longer there refuses nothing"
    assert replica.context.env == {}
