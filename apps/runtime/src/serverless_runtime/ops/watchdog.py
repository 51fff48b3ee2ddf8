"""Ends the process when user code will not let go of it: a handler that ignores SIGALRM, an
import looping for ever, a stop never reached (the second of timeout.py's three bounds). It asks
the loop to record what hung first, so that it is not tried again after the restart."""

from __future__ import annotations

import faulthandler
import logging
import os
import select
import signal
import threading
import time
from collections.abc import Callable

from serverless_runtime.ops.telemetry import Telemetry

log = logging.getLogger(__name__)

EXIT_STUCK = 3  # the process ended itself because user code hung
_TICK = 0.25
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Watchdog:
    """Watches the call or import in progress and the time since a stop was asked for."""

    def __init__(
        self,
        telemetry: Telemetry,
        call_limit: float | None,
        load_limit: float,
        shutdown_limit: float,
        stop: threading.Event,
        record_stuck: Callable[[str, float], None],
    ) -> None:
        self._telemetry = telemetry
        self._call_limit = call_limit
        self._load_limit = load_limit
        self._shutdown_limit = shutdown_limit
        self._stop = stop
        self._record_stuck = record_stuck
        self._signalled_at: float | None = None
        # The interpreter writes each signal's number here from C, even while the main thread is
        # stuck where Python signal handlers cannot run.
        self._wakeup_read, wakeup_write = os.pipe()
        os.set_blocking(wakeup_write, False)
        signal.set_wakeup_fd(wakeup_write, warn_on_full_buffer=False)

    def start(self) -> None:
        """Watch from a daemon thread until the process ends."""
        threading.Thread(target=self._watch, name="watchdog", daemon=True).start()

    def _watch(self) -> None:
        while True:
            readable, _, _ = select.select([self._wakeup_read], [], [], _TICK)
            received = os.read(self._wakeup_read, 64) if readable else b""
            now = time.monotonic()
            asked = self._stop.is_set() or any(n in STOP_SIGNALS for n in received)
            if self._signalled_at is None and asked:
                self._signalled_at = now
            self._check(now)

    def _check(self, now: float) -> None:
        telemetry = self._telemetry
        busy, loading = telemetry.busy_since, telemetry.loading
        limit = self._load_limit if loading else self._call_limit
        if busy is not None and limit is not None and now - busy > limit:
            what = "loading the function" if loading else "the call"
            self._end(f"{what} ran {now - busy:.1f} s, past its {limit:g} s limit", now - busy)
        asked_at = self._signalled_at
        if asked_at is not None and now - asked_at > self._shutdown_limit:
            log.error(
                "still running %.0f s after the stop request (SHUTDOWN_TIMEOUT=%g): exiting now",
                now - asked_at,
                self._shutdown_limit,
            )
            os._exit(EXIT_STUCK)

    def _end(self, why: str, elapsed: float) -> None:
        # Python runs, so the C timer (timeout.py) is not needed: it would cut the record short.
        faulthandler.cancel_dump_traceback_later()
        log.error("%s and did not stop when interrupted: ending the process", why)
        try:
            self._record_stuck(why, elapsed)
        except Exception:  # exiting matters more than the record
            log.exception("could not record what hung")
        os._exit(EXIT_STUCK)


def call_limit(handler_timeout: float | None) -> float | None:
    """How long a call may run before the watchdog ends the process: SIGALRM had its chance."""
    return None if handler_timeout is None else handler_timeout + max(1.0, handler_timeout / 2)
