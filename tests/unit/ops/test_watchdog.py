"""The watchdog's limits, and what it does when user code will not let go."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator

import pytest
from serverless_runtime.ops.telemetry import Telemetry
from serverless_runtime.ops.watchdog import EXIT_STUCK, Watchdog, call_limit


class Exited(Exception):
    pass


@pytest.fixture
def exits(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_exit(code: int) -> None:
        raise Exited(code)

    monkeypatch.setattr(os, "_exit", fake_exit)


@pytest.fixture
def dog() -> Iterator[tuple[Watchdog, Telemetry, list[tuple[str, float]]]]:
    telemetry = Telemetry(stale_after=60)
    recorded: list[tuple[str, float]] = []
    made = Watchdog(
        telemetry,
        call_limit=3.0,
        load_limit=20.0,
        shutdown_limit=10.0,
        stop=threading.Event(),
        record_stuck=lambda why, elapsed: recorded.append((why, elapsed)),
    )
    yield made, telemetry, recorded
    signal.set_wakeup_fd(-1)


def test_call_limit_gives_sigalrm_its_chance_first() -> None:
    assert call_limit(None) is None
    assert call_limit(1.0) == 2.0  # at least one second more
    assert call_limit(10.0) == 15.0  # half as long again


@pytest.mark.usefixtures("exits")
def test_a_call_past_its_limit_is_recorded_and_ends_the_process(dog) -> None:
    made, telemetry, recorded = dog
    telemetry.busy_since = 100.0
    made._check(102.0)  # within the limit: nothing happens
    assert recorded == []
    with pytest.raises(Exited) as ended:
        made._check(104.0)
    assert ended.value.args == (EXIT_STUCK,)
    assert recorded == [("the call ran 4.0 s, past its 3 s limit", 4.0)]


@pytest.mark.usefixtures("exits")
def test_an_import_is_held_to_the_load_limit(dog) -> None:
    made, telemetry, recorded = dog
    telemetry.busy_since, telemetry.loading = 100.0, True
    made._check(110.0)  # past the call limit, within the load limit
    with pytest.raises(Exited):
        made._check(121.0)
    assert recorded[0][0].startswith("loading the function ran 21.0 s")


@pytest.mark.usefixtures("exits")
def test_a_record_that_fails_does_not_keep_the_process_alive(dog) -> None:
    made, telemetry, _ = dog

    def broken(_why: str, _elapsed: float) -> None:
        raise ConnectionError("redis is down")

    made._record_stuck = broken
    telemetry.busy_since = 0.0
    with pytest.raises(Exited):
        made._check(60.0)
