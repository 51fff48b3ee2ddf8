"""waiters.py: what wakes the loop; keyspace events need a real Valkey (fakeredis has none)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from serverless_runtime.storage.lease import Lease
from serverless_runtime.storage.store import connect
from serverless_runtime.triggers.waiters import PollWaiter, Waiter, notify_waiter

from tests.support.valkey import ValkeyProcess

FOREVER = 3600.0  # a wait that only an event or a stop can end within the test


def returns(wait: Callable[[], None]) -> bool:
    """Whether `wait` returns (within seconds, not the hour it was given)."""
    waiting = threading.Thread(target=wait, daemon=True)
    waiting.start()
    waiting.join(timeout=20)
    return not waiting.is_alive()


def lasts(wait: Callable[[], None]) -> float:
    started = time.monotonic()
    wait()
    return time.monotonic() - started


@pytest.fixture
def waiters(redis_client: redis.Redis, settings) -> Iterator[Callable[..., Waiter]]:
    """Waiters as the loop makes them for TRIGGER=notify (or `env`), closed after the test."""
    made: list[Waiter] = []

    def make(stop: threading.Event | None = None, **env: str) -> Waiter:
        config = settings(**{"TRIGGER": "notify", "REDIS_INPUT_KEY": "in", **env})
        waiter = notify_waiter(redis_client, config, stop or threading.Event())
        made.append(waiter)
        return waiter

    yield make
    for waiter in made:
        waiter.close()


def test_poll_waiter_returns_at_the_timeout() -> None:
    assert lasts(lambda: PollWaiter(threading.Event()).wait(0.2)) >= 0.2


def test_poll_waiter_returns_at_stop() -> None:
    stop = threading.Event()
    threading.Timer(0.1, stop.set).start()
    assert returns(lambda: PollWaiter(stop).wait(FOREVER))


def test_notify_waiter_wakes_on_a_write_to_the_input_key(waiters, redis_client) -> None:
    waiter = waiters()
    waiter.prepare()  # before the read of the input: a write after it is not missed
    redis_client.set("in", '{"n": 1}')
    assert returns(lambda: waiter.wait(FOREVER))


def test_notify_waiter_sleeps_through_writes_to_other_keys(waiters, redis_client) -> None:
    waiter = waiters()
    waiter.prepare()
    redis_client.set("other", '{"n": 1}')
    assert lasts(lambda: waiter.wait(0.5)) >= 0.5


def test_notify_waiter_returns_at_stop(waiters) -> None:
    stop = threading.Event()
    waiter = waiters(stop)
    waiter.prepare()
    threading.Timer(0.1, stop.set).start()
    assert returns(lambda: waiter.wait(FOREVER))


def test_a_standby_wakes_when_the_leader_releases_the_lease(waiters, redis_client) -> None:
    waiter = waiters(LEASE_KEY="in:lease")
    leader = Lease(redis_client, "in:lease", "a/1", 10)
    for source in Lease.SCRIPTS:  # as the store's first read does
        redis_client.script_load(source)
    pipe = redis_client.pipeline(transaction=False)
    leader.queue_refresh(pipe)
    assert leader.apply(pipe.execute()[0])
    waiter.prepare()
    leader.release(redis_client)
    assert returns(lambda: waiter.wait(FOREVER))


def test_invoke_on_interval_only_sleeps(waiters, redis_client) -> None:
    waiter = waiters(INVOKE_ON="interval")
    waiter.prepare()
    redis_client.set("in", '{"n": 1}')
    assert lasts(lambda: waiter.wait(0.5)) >= 0.5, "a keyspace event adds no call"


def test_notify_waiter_enables_the_events_again_after_a_redis_restart(
    own_valkey: ValkeyProcess, settings
) -> None:
    config = settings(TRIGGER="notify", REDIS_INPUT_KEY="in", REDIS_URL=own_valkey.url)
    client = connect(config.redis)  # the runtime's client: no hidden retries
    waiter = notify_waiter(client, config, threading.Event())
    waiter.prepare()
    own_valkey.stop()
    own_valkey.start()  # no persistence: notify-keyspace-events is forgotten
    waiter.wait(FOREVER)  # the subscription is lost: back to the loop at once
    waiter.prepare()
    own_valkey.client().set("in", '{"n": 1}')
    assert returns(lambda: waiter.wait(FOREVER))
    waiter.close()
    client.close()


@pytest.fixture
def no_config(tmp_path: Path) -> Iterator[redis.Redis]:
    """A Redis that refuses CONFIG, as managed services do: notifications cannot be enabled."""
    server = ValkeyProcess(tmp_path / "valkey", extra_args=("--rename-command", "CONFIG", '""'))
    server.start()
    client = server.client()
    yield client
    client.close()
    server.stop()


def test_auto_falls_back_to_polling_with_a_warning(no_config, settings, caplog) -> None:
    config = settings(TRIGGER="auto", REDIS_INPUT_KEY="in")
    with caplog.at_level(logging.WARNING):
        waiter = notify_waiter(no_config, config, threading.Event())
    assert isinstance(waiter, PollWaiter)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "polling in every 1" in warnings[0], warnings


def test_notify_without_events_reconciles_every_interval(no_config, settings, caplog) -> None:
    config = settings(TRIGGER="notify", REDIS_INPUT_KEY="in")
    with caplog.at_level(logging.WARNING):
        waiter = notify_waiter(no_config, config, threading.Event())
    assert any("reconciliation" in r.getMessage() for r in caplog.records)
    waiter.prepare()
    no_config.set("in", '{"n": 1}')
    assert lasts(lambda: waiter.wait(0.5)) >= 0.5, "no event: the write is seen at the next tick"
    waiter.close()
