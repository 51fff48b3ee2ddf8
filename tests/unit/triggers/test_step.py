"""step.py is the contract between the loop and a trigger: checked here through every trigger of
the table, as the loop builds them, against the same Redis (fakeredis)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import fakeredis
import pytest
from serverless_runtime.config import Settings, Trigger
from serverless_runtime.failures import FailureKind
from serverless_runtime.function.context import Context
from serverless_runtime.state.durable import DurableState
from serverless_runtime.storage.lease import Lease
from serverless_runtime.storage.store import Journaled, Store
from serverless_runtime.triggers import TRIGGERS
from serverless_runtime.triggers.step import Input, Step, Told
from serverless_runtime.triggers.waiters import Waiter

MakeStep = Callable[..., tuple[Step, Store]]
KEY_TRIGGERS = [trigger for trigger in Trigger if trigger is not Trigger.STREAM]


@pytest.fixture(params=list(Trigger), ids=lambda trigger: trigger.value)
def trigger(request: pytest.FixtureRequest) -> Trigger:
    return Trigger(request.param)


@pytest.fixture
def config(settings, trigger: Trigger) -> Settings:
    env = {"TRIGGER": trigger.value, "REDIS_INPUT_KEY": "in", "INTERVAL": "0.05"}
    made: Settings = settings(LEASE_KEY="", STATE_KEY="", **env)
    return made


@pytest.fixture
def failures() -> list[tuple[FailureKind, str]]:
    return []


@pytest.fixture
def steps(client, config: Settings, trigger: Trigger, failures) -> MakeStep:
    """Starts the trigger's step as a (re)started process does; each call is a new process."""

    def make(lease: Lease | None = None) -> tuple[Step, Store]:
        store = Store(client, config, lease, "pod")
        context = Context("localhost", 6379, "in", "out", "")

        def replay(entry: Journaled) -> None:
            raise AssertionError("nothing to replay")

        state = DurableState(context, store, replay, lambda *_: None, persistent=False)
        step: Step = TRIGGERS[trigger].step(
            config, store, state, lambda *failure: failures.append(failure), threading.Event()
        )
        step.start(None)
        return step, store

    return make


def write(client: fakeredis.FakeRedis, trigger: Trigger, raw: bytes) -> None:
    if trigger is Trigger.STREAM:
        client.xadd("in", {"data": raw})
    else:
        client.set("in", raw)


def one_pass(step: Step, store: Store) -> list[Input]:
    """A pass of the loop whose calls all commit."""
    items = []
    for item in step.inputs():
        items.append(item)
        store.commit(b"{}", item.digest, item.entry_id)
        step.told(item, Told.DONE)
    return items


def test_every_triggers_waiter_returns_at_stop(client, config, trigger) -> None:
    stop = threading.Event()
    waiter: Waiter = TRIGGERS[trigger].waiter(client, config, stop)
    stop.set()
    waiter.prepare()
    waiter.wait(3600)  # returns at once: the test would hang otherwise
    waiter.close()


def test_only_the_stream_step_waits_for_input_by_itself(steps, trigger) -> None:
    step, _ = steps()
    assert step.blocks is (trigger is Trigger.STREAM)


def test_an_input_is_handed_out_once_with_what_its_commit_needs(
    steps, client, trigger, failures
) -> None:
    step, store = steps()
    assert one_pass(step, store) == []
    write(client, trigger, b'{"n": 1}')
    [item] = one_pass(step, store)
    assert item.raw == b'{"n": 1}'
    if trigger is Trigger.STREAM:
        assert item.entry_id is not None and item.digest is None
    else:
        assert item.digest is not None and item.entry_id is None
        assert step.seen == item.digest, "the watchdog blames the input being called"
    assert step.leader, "the only replica calls the handler"
    assert one_pass(step, store) == []
    assert failures == []


@pytest.mark.parametrize("trigger", KEY_TRIGGERS, ids=lambda trigger: trigger.value)
def test_a_standby_hands_out_nothing(steps, client, trigger) -> None:
    """Key mode's lease; every stream consumer calls the handler (test_stream.py)."""
    client.set("in:lease", "other/1:1", px=60_000)  # another replica leads
    step, store = steps(Lease(client, "in:lease", "pod/1", 10))
    write(client, trigger, b'{"n": 1}')
    assert one_pass(step, store) == []
    assert not step.leader


def test_a_committed_input_is_not_handed_out_by_the_next_process(steps, client, trigger) -> None:
    step, store = steps()
    write(client, trigger, b'{"n": 1}')
    assert len(one_pass(step, store)) == 1
    restarted, store = steps()
    assert one_pass(restarted, store) == []
    write(client, trigger, b'{"n": 2}')
    assert [item.raw for item in one_pass(restarted, store)] == [b'{"n": 2}']
