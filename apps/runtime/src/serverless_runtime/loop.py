"""The invoke loop: read the input, call the handler, commit; the one failure boundary."""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import threading
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import redis

from serverless_runtime.backoff import Backoff
from serverless_runtime.config import InvokeOn, Settings
from serverless_runtime.context import Context
from serverless_runtime.loader import FunctionLoadError, FunctionSource
from serverless_runtime.store import Entry, Store
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
        value = json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"input {key!r} is not JSON: {exc}") from exc
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
        self._committed_state: str | None = "{}"
        self._last_digest: str | None = None
        self._seen_digest: str | None = None
        self._waiting_for_input = False
        self._started = False
        self._warned_state = False
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
        if self.store.lease is not None:
            self.store.lease.release(self.store.client)

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
        raw = self.store.read_input()
        self.telemetry.leader = self.store.lease is None or self.store.lease.leader
        if raw is None:
            if self.telemetry.leader and not self._waiting_for_input:
                log.info("waiting for input key %r", self.settings.input_key)
                self._waiting_for_input = True
            return
        self._waiting_for_input = False
        digest = input_digest(raw)
        if self.settings.invoke_on is InvokeOn.CHANGE and digest in (
            self._last_digest,
            self._seen_digest,
        ):
            return
        self.invoke(raw, digest)

    def _step_stream(self) -> None:
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
        restored = self.store.restore()
        self._last_digest = restored.input_digest
        if restored.state_json is not None:
            try:
                env = json.loads(restored.state_json)
            except ValueError:
                env = None
            if isinstance(env, dict):
                self.context.env = env
                self._committed_state = restored.state_json
                self.telemetry.state_bytes = len(restored.state_json)
                log.info("restored function state (%d bytes)", len(restored.state_json))
            else:
                log.warning("ignoring unreadable state in %r", self.store.state_key)
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
        snapshot = self._snapshot()
        handler = self.source.current.handler if self.source.current else None
        assert handler is not None
        self.telemetry.call_started()
        started = time.perf_counter()
        try:
            with self.time_limit.limit():
                result = handler(value, self.context)
        except HandlerTimeout as exc:
            self._rollback(snapshot)
            self._fail("timeout", str(exc), stamp, exc, entry_id, time.perf_counter() - started)
            return
        except Exception as exc:  # noqa: BLE001 - the one boundary around user code
            self._rollback(snapshot)
            message = f"handler raised {type(exc).__name__}: {exc}"
            self._fail(
                "handler-error", message, stamp, exc, entry_id, time.perf_counter() - started
            )
            return
        duration = time.perf_counter() - started
        try:
            output = json.dumps(result) if result else None
        except (TypeError, ValueError) as exc:
            self._rollback(snapshot)
            message = f"handler returned a value that is not JSON: {exc}"
            self._fail("invalid-output", message, stamp, exc, entry_id, duration)
            return
        state = self._encode_state()
        try:
            committed = self.store.commit(output, state, digest, entry_id)
        except redis.RedisError:
            self._rollback(snapshot)  # the input will be processed again, from the same state
            self._seen_digest = None
            self.telemetry.busy_since = None
            raise
        if not committed:
            # Another replica took the lease during the call: its result counts, not ours.
            self._rollback(snapshot)
            self._seen_digest = None
            self.telemetry.invoked("fenced", duration, None)
            return
        self._committed_state = state
        self._last_digest = digest
        self.context.last_execution = datetime.now()
        self.telemetry.state_bytes = len(state) if state is not None else 0
        self.telemetry.invoked("success", duration, input_age(value))

    def _snapshot(self) -> str | dict[str, Any] | None:
        if self._committed_state is not None:
            return self._committed_state  # JSON state: the committed text is the snapshot
        try:
            return copy.deepcopy(self.context.env)
        except Exception:  # noqa: BLE001 - user objects may refuse to be copied
            log.warning("context.env cannot be copied; a failed call may leave it changed")
            return None

    def _rollback(self, snapshot: str | dict[str, Any] | None) -> None:
        if isinstance(snapshot, str):
            self.context.env = json.loads(snapshot)
        elif snapshot is not None:
            self.context.env = snapshot

    def _encode_state(self) -> str | None:
        try:
            return json.dumps(self.context.env)
        except (TypeError, ValueError) as exc:
            if not self._warned_state:
                log.warning(
                    "context.env is not JSON-serializable (%s): it is kept in memory only "
                    "and will not survive a restart",
                    exc,
                )
                self._warned_state = True
            return None

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
            self.store.commit(None, None, None, entry_id)

    def _record(
        self, kind: str, message: str, stamp: str | None, exc: BaseException | None
    ) -> None:
        tb = "".join(traceback.format_exception(exc)) if exc is not None else ""
        log.error("%s: %s", kind, message, exc_info=exc, extra={"kind": kind})
        self.store.record_error(error_record(kind, message, tb, stamp))
