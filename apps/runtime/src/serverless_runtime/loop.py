"""The invoke loop: read the input, call the handler, commit; the one failure boundary."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import traceback
from collections.abc import Callable
from contextlib import redirect_stdout
from datetime import UTC, datetime
from io import StringIO
from typing import Any

import redis

from serverless_runtime import json_codec
from serverless_runtime.backoff import Backoff
from serverless_runtime.config import InvokeOn, Settings
from serverless_runtime.context import Context
from serverless_runtime.loader import FunctionLoadError, FunctionSource, Handler
from serverless_runtime.state import DurableState, ReplayError
from serverless_runtime.store import Entry, Journaled, Outcome, Store
from serverless_runtime.telemetry import Telemetry
from serverless_runtime.timeout import HandlerTimeout, TimeLimit
from serverless_runtime.triggers import PollWaiter, Waiter

log = logging.getLogger(__name__)


def input_digest(raw: bytes) -> str:
    """Content digest that decides whether an input was already processed."""
    return hashlib.blake2b(raw, digest_size=16).hexdigest()


def parse_input(raw: bytes, key: str) -> dict[str, Any]:
    """The input as a JSON object, or ValueError saying what it is instead."""
    try:
        value = json_codec.loads(raw)
    except ValueError as exc:
        raise ValueError(f"input {key!r} is not JSON: {exc}") from exc
    except RecursionError:
        raise ValueError(f"input {key!r} is nested too deeply") from None
    if not isinstance(value, dict):
        raise ValueError(f"input {key!r} is a JSON {type(value).__name__}, expected an object")
    return value


def input_age(value: dict[str, Any]) -> float | None:
    """Seconds since the input's `timestamp` (local time, as the collector writes it)."""
    stamp = value.get("timestamp")
    if not isinstance(stamp, str):
        return None
    try:
        return time.time() - datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        return None


def error_record(kind: str, message: str, tb: str, input_timestamp: str | None) -> dict[str, Any]:
    """The JSON document written to the error key."""
    return {
        "at": datetime.now(UTC).isoformat(),
        "kind": kind,
        "message": message,
        "traceback": tb,
        "input_timestamp": input_timestamp,
    }


class Runner:
    """Runs the handler whenever the input changes (or every tick) until `stop` is set."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        source: FunctionSource,
        make_waiter: Callable[[], Waiter],
        stop: threading.Event,
        telemetry: Telemetry,
    ) -> None:
        self.settings = settings
        self.store = store
        self.source = source
        self.stop = stop
        self.telemetry = telemetry
        self.time_limit = TimeLimit(settings.handler_timeout)
        # Polling until Redis has answered once; then the trigger the settings ask for.
        self.waiter: Waiter = PollWaiter(stop)
        self._make_waiter = make_waiter
        self.context = Context(
            host=settings.redis.host,
            port=settings.redis.port,
            input_key=settings.input_key,
            output_key=settings.output_key,
            function_getmtime="",
        )
        self.state = DurableState(
            self.context,
            store,
            self._replay,
            lambda kind, message, exc: self._record(kind, message, None, exc),
            persistent=store.journal_key is not None,
        )
        # The digest of the input last tried (committed or failed), so that a failing input is
        # not retried every tick; the last committed one is `state.digest`.
        self._seen_digest: str | None = None
        self._waiting_for_input = False
        self._started = False
        self._next_claim = 0.0
        self._read_pending = settings.stream_mode  # entries read before a restart come first

    # -- the loop ---------------------------------------------------------------------------------

    def run(self) -> None:
        """Step until stopped, riding out Redis outages with capped, jittered backoff."""
        backoff = Backoff()
        while not self.stop.is_set():
            self.telemetry.beat()
            try:
                self.waiter.prepare()
                self.step()
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                if self.telemetry.redis_ok or backoff.attempts == 0:
                    log.warning("Redis unreachable (%s); retrying with backoff", exc)
                self.telemetry.redis_ok = False
                self.waiter.close()
                self.stop.wait(backoff.next_delay())
                continue
            if not self.telemetry.redis_ok:
                recovered = backoff.attempts > 0
                log.info("Redis reachable again; resuming" if recovered else "connected to Redis")
                self.telemetry.redis_ok = True
            backoff.reset()
            if not (self.settings.stream_mode and self.source.current):
                self.waiter.wait(self.settings.interval)  # stream reads block by themselves
        self.waiter.close()
        self._save_state()
        if self.store.lease is not None:
            self.store.lease.release(self.store.client)

    def _save_state(self) -> None:
        """A last snapshot while still leading, so that the next leader replays nothing."""
        lease = self.store.lease
        if self.source.current is None or (lease is not None and not lease.leader):
            return
        try:
            self.state.save()
        except redis.RedisError as exc:
            log.warning("could not save a snapshot at shutdown (%s); the journal has it all", exc)

    def step(self) -> None:
        """One pass: start once, reload the function if changed, process what there is."""
        if not self._started:
            self._start()
        self._reload()
        if self.source.current is None:
            return
        if self.settings.stream_mode:
            self._step_stream()
        else:
            self._step_key()

    def _step_key(self) -> None:
        reading = self.store.read_input()
        self.telemetry.leader = reading.leader
        if not reading.leader:
            return
        # State follows the lease: before its first call as leader (again), and whenever another
        # replica committed since, this one brings its state up to the last commit.
        self.state.sync(reading.head)
        raw = reading.raw
        if raw is None:
            if not self._waiting_for_input:
                log.info("waiting for input key %r", self.settings.input_key)
                self._waiting_for_input = True
            return
        self._waiting_for_input = False
        digest = input_digest(raw)
        if self.settings.invoke_on is InvokeOn.CHANGE and digest in (
            self.state.digest,
            self._seen_digest,
        ):
            return
        self.invoke(raw, digest)

    def _step_stream(self) -> None:
        self.state.ensure_loaded()  # each consumer has its own state; synced again when stale
        entries: list[Entry] = []
        if self._read_pending:
            entries = self.store.read_entries(pending=True, block=0)
            self._read_pending = False
        elif time.monotonic() >= self._next_claim:
            entries = self.store.claim_stale(self.settings.stream_claim_idle)
            if entries:
                log.info("claimed %d entries left pending by another consumer", len(entries))
            self._next_claim = time.monotonic() + self.settings.interval
        if not entries:
            entries = self.store.read_entries(pending=False, block=self.settings.interval)
        for entry in entries:
            if self.stop.is_set():
                return  # unacknowledged entries stay pending and are read again
            self.invoke(entry.raw, None, entry.entry_id)

    # -- steps ------------------------------------------------------------------------------------

    def _start(self) -> None:
        if self.settings.stream_mode:
            self.store.ensure_group()
        else:
            self.waiter = self._make_waiter()
            self.waiter.prepare()
        self._started = True

    def _reload(self) -> None:
        try:
            changed = self.source.refresh()
        except FunctionLoadError as exc:
            self.telemetry.reloaded(ok=False)
            running = " (the previous version keeps running)" if self.source.current else ""
            self._record(exc.kind, f"{exc}{running}", None, exc)
            return
        if changed and self.source.current is not None:
            self.context.function_getmtime = self.source.current.getmtime
            self.state.function = self.source.current.digest
            self.telemetry.function_loaded = True
            self.telemetry.reloaded(ok=True)
            log.info("loaded function %s", self.source.current.path)

    def invoke(self, raw: bytes | None, digest: str | None, entry_id: str | None = None) -> None:
        """Call the handler on one input; commit on success, roll back and record on failure."""
        self._seen_digest = digest
        try:
            value = parse_input(raw or b"", self.settings.input_key)
        except ValueError as exc:
            self._fail("invalid-input", str(exc), None, exc, entry_id)
            return
        stamp = value.get("timestamp")
        stamp = stamp if isinstance(stamp, str) else None
        handler = self.source.current.handler if self.source.current else None
        assert handler is not None
        self.telemetry.call_started()
        started = time.perf_counter()
        try:
            result = self._call(handler, value, stamp)
        except HandlerTimeout as exc:
            self.state.rollback()
            self._fail("timeout", str(exc), stamp, exc, entry_id, time.perf_counter() - started)
            return
        except Exception as exc:  # noqa: BLE001 - the one boundary around user code
            self.state.rollback()
            message = f"handler raised {type(exc).__name__}: {exc}"
            self._fail(
                "handler-error", message, stamp, exc, entry_id, time.perf_counter() - started
            )
            return
        duration = time.perf_counter() - started
        try:
            output = json_codec.dumps(result, "the result") if result else None
            env: Any = self.context.env  # the function may have replaced it with anything
            if not isinstance(env, dict):
                kind = type(env).__name__
                raise json_codec.NotJSON(f"context.env was replaced by a {kind}; it must be a dict")
            append = self.state.plan(raw or b"")
        except json_codec.NotJSON as exc:
            self.state.rollback()
            self._fail("invalid-output", str(exc), stamp, exc, entry_id, duration)
            return
        try:
            outcome = self.store.commit(output, digest, entry_id, append)
        except redis.RedisError:
            self.state.rollback()  # the input will be processed again, from the same state
            self._seen_digest = None
            self.telemetry.busy_since = None
            raise
        if outcome is not Outcome.COMMITTED:
            # FENCED: another replica took the lease during the call; its result counts, not
            # ours. STALE: another commit came first; catch up, then judge the input again.
            self.state.rollback()
            self._seen_digest = None
            self.telemetry.invoked(outcome.name.lower(), duration, None)
            if outcome is Outcome.STALE:
                self.state.sync()
            return
        self.state.committed(append)
        self.state.digest = digest
        self.telemetry.state_bytes = self.state.snapshot_bytes
        self.telemetry.invoked("success", duration, input_age(value))

    def _call(self, handler: Handler, value: dict[str, Any], stamp: str | None) -> Any:
        """The handler's result; on a state another function version made, one more try on {}."""
        try:
            with self.time_limit.limit():
                return handler(value, self.context)
        except Exception as exc:
            if not self.state.from_other_version:
                raise
            message = (
                f"the state made by another function version fails with this one "
                f"({type(exc).__name__}: {exc}); trying again from an empty context.env"
            )
            self._record("invalid-state", message, stamp, exc)
        kept = self.state.set_aside()
        try:
            with self.time_limit.limit():
                return handler(value, self.context)
        except BaseException:
            self.state.put_back(kept)  # not the state's fault after all: keep it
            raise

    def _replay(self, entry: Journaled) -> None:
        """Call the handler on a committed input again, to rebuild the state; output discarded."""
        handler = self.source.current.handler if self.source.current else None
        if handler is None:
            raise ReplayError("no function is loaded to replay the journal with")
        value = parse_input(entry.raw or b"", self.settings.input_key)
        try:
            with redirect_stdout(StringIO()), self.time_limit.limit():
                handler(value, self.context)
        except HandlerTimeout as exc:
            raise ReplayError(f"replaying journal entry {entry.seq}: {exc}") from exc

    def _fail(
        self,
        kind: str,
        message: str,
        stamp: str | None,
        exc: BaseException | None = None,
        entry_id: str | None = None,
        duration: float | None = None,
    ) -> None:
        self.telemetry.invoked(kind, duration, None)
        self._record(kind, message, stamp, exc)
        if entry_id is not None:
            # A failure is final for a stream entry: acknowledged, never retried forever.
            self.store.commit(None, None, entry_id)

    def _record(
        self, kind: str, message: str, stamp: str | None, exc: BaseException | None
    ) -> None:
        tb = "".join(traceback.format_exception(exc)) if exc is not None else ""
        log.error("%s: %s", kind, message, exc_info=exc, extra={"kind": kind})
        self.store.record_error(error_record(kind, message, tb, stamp))
