"""HANDLER_TIMEOUT: interrupt a handler that runs too long, with SIGALRM in the main thread."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class HandlerTimeout(BaseException):
    """Raised inside the handler at its deadline.

    A BaseException, so that a handler's own `except Exception` cannot swallow it.
    """


class TimeLimit:
    """Arms a per-call alarm; installed once, costs two system calls per call."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        if seconds is not None:
            signal.signal(signal.SIGALRM, self._expired)

    def _expired(self, _signum: int, _frame: FrameType | None) -> None:
        raise HandlerTimeout(f"handler ran longer than HANDLER_TIMEOUT={self.seconds:g}s")

    @contextmanager
    def limit(self) -> Iterator[None]:
        """Run the block under the deadline; code in C that never returns to Python is not cut."""
        if self.seconds is None:
            yield
            return
        if signal.getsignal(signal.SIGALRM) != self._expired:
            signal.signal(signal.SIGALRM, self._expired)  # a function may have replaced it
        signal.setitimer(signal.ITIMER_REAL, self.seconds)
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
