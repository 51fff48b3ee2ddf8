"""HANDLER_TIMEOUT in-process: the handler is interrupted, and the stop handlers come back."""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Iterator

import pytest
from serverless_runtime.ops.timeout import HandlerTimeout, TimeLimit


@pytest.fixture(autouse=True)
def _signals_restored() -> Iterator[None]:
    saved = {s: signal.getsignal(s) for s in (signal.SIGALRM, signal.SIGTERM, signal.SIGINT)}
    yield
    signal.setitimer(signal.ITIMER_REAL, 0)
    for signum, handler in saved.items():
        signal.signal(signum, handler)


def _forever() -> None:
    while True:
        time.sleep(0.01)


def test_a_handler_past_its_deadline_is_interrupted_and_told_the_limit() -> None:
    with pytest.raises(HandlerTimeout, match=r"HANDLER_TIMEOUT=0\.05s"), TimeLimit(0.05).limit():
        _forever()


def test_a_handlers_except_exception_cannot_swallow_the_timeout() -> None:
    def careless_handler() -> None:
        with contextlib.suppress(Exception):
            _forever()

    with pytest.raises(HandlerTimeout), TimeLimit(0.05).limit():
        careless_handler()


def test_a_call_within_its_deadline_leaves_no_alarm_behind() -> None:
    with TimeLimit(30).limit():
        pass
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


@pytest.mark.parametrize("seconds", [None, 30.0])
def test_a_function_cannot_switch_off_the_graceful_stop(seconds: float | None) -> None:
    def ours(_signum: int, _frame: object) -> None:
        """The runtime's stop handler."""

    signal.signal(signal.SIGTERM, ours)
    limit = TimeLimit(seconds)
    with limit.limit():
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # what a function may do
    assert signal.getsignal(signal.SIGTERM) is ours
