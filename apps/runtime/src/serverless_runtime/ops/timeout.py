"""HANDLER_TIMEOUT: interrupt a handler that runs too long, with SIGALRM in the main thread.

Three bounds, each for what the one before cannot stop: SIGALRM interrupts Python code; the
watchdog thread (watchdog.py) ends the process when the handler ignores the interruption; a
timer in C ends it when a C call holds the GIL, so that no Python thread runs at all. Around each
call the runtime's own SIGTERM and SIGINT handlers are put back: a function cannot switch off
the graceful stop.
"""

from __future__ import annotations

import faulthandler
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from serverless_runtime.ops import watchdog

# The C timer fires this long after the watchdog's limit: time for the watchdog to act first
# whenever Python can run (it then records what hung; the C timer cannot).
C_GRACE = 5.0
_STDERR = 2  # a file descriptor: the timer writes from C, past any Python-level stream


class HandlerTimeout(BaseException):
    """Raised inside the handler at its deadline: a BaseException, so that a handler's own
    `except Exception` cannot swallow it."""


class TimeLimit:
    """Arms the per-call bounds; installed once, costs a few system calls per call."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        last = watchdog.call_limit(seconds)
        self.c_limit = None if last is None else last + C_GRACE
        if seconds is not None:
            signal.signal(signal.SIGALRM, self._expired)
        # The stop handlers in place when the loop is built (the runtime's own), kept per call.
        self._stop_handlers = {signum: signal.getsignal(signum) for signum in watchdog.STOP_SIGNALS}

    def _expired(self, _signum: int, _frame: FrameType | None) -> None:
        raise HandlerTimeout(f"handler ran longer than HANDLER_TIMEOUT={self.seconds:g}s")

    @contextmanager
    def limit(self) -> Iterator[None]:
        """Run the block under the deadline; put the stop handlers back after it."""
        # No bound on the call (as in the course runtime): liveness is the bound.
        if self.seconds is not None and self.c_limit is not None:
            if signal.getsignal(signal.SIGALRM) != self._expired:
                signal.signal(signal.SIGALRM, self._expired)  # a function may have replaced it
            # Its thread is C and needs no GIL: it dumps every thread's stack and exits (1).
            faulthandler.dump_traceback_later(self.c_limit, exit=True, file=_STDERR)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
        try:
            yield
        finally:
            if self.seconds is not None:
                signal.setitimer(signal.ITIMER_REAL, 0)
                faulthandler.cancel_dump_traceback_later()
            for signum, handler in self._stop_handlers.items():
                if handler is not None and signal.getsignal(signum) != handler:
                    signal.signal(signum, handler)
