"""The invoke loop: read the input, call the handler, commit; the one failure boundary."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import redirect_stdout
from datetime import UTC, datetime
from functools import partial
from io import StringIO
from typing import Any

import redis

from serverless_runtime.config import Settings
from serverless_runtime.failures import FailureKind
from serverless_runtime.function import new_requirements
from serverless_runtime.function.context import Context
from serverless_runtime.function.loader import FunctionLoadError, FunctionSource
from serverless_runtime.function.new_requirements import Requirements, RequirementsFailed
from serverless_runtime.function.user_traceback import describe, user_traceback
from serverless_runtime.ops.backoff import Backoff
from serverless_runtime.ops.telemetry import Telemetry
from serverless_runtime.ops.timeout import HandlerTimeout, TimeLimit
from serverless_runtime.registry import Registration
from serverless_runtime.state import codec
from serverless_runtime.state.durable import DurableState, ReplayError, when
from serverless_runtime.storage.store import Append, CommitRefused, Journaled, Outcome, Store
from serverless_runtime.triggers import TRIGGERS
from serverless_runtime.triggers.step import Input, Told
from serverless_runtime.triggers.waiters import PollWaiter, Waiter

log = logging.getLogger(__name__)

# Deeper inputs are refused: a function (or the standard library) recursing over them would
# exhaust Python's stack.
MAX_INPUT_DEPTH = 500
# An error record's message and traceback are cut to these sizes (UTF-8 bytes): an exception
# carrying megabytes would otherwise be copied into Redis, the log and every dashboard refresh.
MAX_MESSAGE_BYTES = 4 << 10
MAX_TRACEBACK_BYTES = 16 << 10
# A commit refused as stale is judged again at most this many times per tick, with backoff.
STALE_RETRIES = 5


def parse_input(raw: bytes, key: str) -> dict[str, Any]:
    try:
        value = codec.loads(raw)
    except ValueError as exc:
        raise ValueError(f"input {key!r} is not JSON: {exc}") from exc
    except RecursionError:
        raise ValueError(f"input {key!r} is nested too deeply") from None
    if not isinstance(value, dict):
        raise ValueError(f"input {key!r} is a JSON {type(value).__name__}, expected an object")
    # Only an input with that many brackets can be that deep: the walk is for those alone.
    brackets = raw.count(b"{") + raw.count(b"[")
    if brackets > MAX_INPUT_DEPTH and codec.nests_deeper(value, MAX_INPUT_DEPTH):
        raise ValueError(f"input {key!r} is nested deeper than {MAX_INPUT_DEPTH} levels")
    return value


def input_age(value: dict[str, Any]) -> float | None:
    """Seconds since the input's `timestamp` (local time, as the collector writes it)."""
    at = when(value.get("timestamp"))
    return None if at is None else time.time() - at.timestamp()


class Failed(Exception):
    """A call failed in a way recorded as `kind` (raised from its cause); the loop goes on."""

    def __init__(self, kind: FailureKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def _redis_message(exc: redis.RedisError) -> str:
    if isinstance(exc, redis.AuthenticationError):
        return (
            f"Redis refused the credentials (REDIS_PASSWORD, or the password in REDIS_URL): {exc}"
        )
    if isinstance(exc, redis.ConnectionError | redis.TimeoutError):
        return f"Redis unreachable ({exc})"
    return f"Redis answered with an error: {type(exc).__name__}: {exc}"


def error_record(
    kind: FailureKind, message: str, tb: str, input_timestamp: str | None
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "at": datetime.now(UTC).isoformat(),
        "kind": kind,
        "message": message,
        "traceback": tb,
        "input_timestamp": input_timestamp,
    }
    for field, limit in (("message", MAX_MESSAGE_BYTES), ("traceback", MAX_TRACEBACK_BYTES)):
        text: str = record[field]
        if len(text) * 4 <= limit:  # surely within bounds: UTF-8 takes at most 4 bytes a char
            continue
        size = len(text.encode(errors="replace"))
        if size > limit:
            record[field] = _cut(text, limit, size)
            record[f"{field}_bytes"] = size
    return record


def _cut(text: str, limit: int, size: int) -> str:
    """The start and end of text within limit UTF-8 bytes, saying how much was left out."""
    note = f"\n… {size} bytes in all, cut to {limit} …\n"
    room = limit - len(note.encode())
    # A traceback's last lines name the exception: keep a quarter of the room for the end.
    head = text[:room].encode(errors="replace")[: room - room // 4].decode(errors="ignore")
    tail_bytes = text[-room:].encode(errors="replace")[-(room // 4) :]
    tail = tail_bytes.decode(errors="ignore") if room // 4 else ""
    return head + note + tail


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
        requirements: Requirements | None = None,
        registration: Registration | None = None,
    ) -> None:
        self.settings = settings
        self._registration = registration
        self.store = store
        self.source = source
        self.stop = stop
        self.telemetry = telemetry
        self.time_limit = TimeLimit(settings.handler_timeout)
        # Polling until Redis has answered once; then the trigger the settings ask for.
        self.waiter: Waiter = PollWaiter(stop)
        self._make_waiter = make_waiter
        self.context = Context(
            settings.redis.host, settings.redis.port, settings.keys.input, settings.keys.output, ""
        )
        self.state = DurableState(
            self.context,
            store,
            _no_function,
            partial(record, store),
            persistent=store.journal_key is not None,
            max_bytes=settings.max_state_bytes,
            max_replay_seconds=settings.max_replay_seconds,
            reset_token=settings.state_reset,
            telemetry=telemetry,
        )
        # After a Redis reset, a replica with no state waits this long for one holding it to
        # write it back: every replica reads the head within a tick, or a backoff step.
        self.state.reset_grace = settings.lease_ttl + settings.interval + Backoff.CAP
        self.trigger = TRIGGERS[settings.trigger].step(
            settings, store, self.state, self._fail, stop
        )
        self._look_again = False
        # Commits refused as stale in a row, and the retries of this tick: bounded, backed off.
        self._refusals = 0
        self._retries = 0
        self._streak_logged = False
        self._retry_backoff = Backoff(initial=0.05, cap=settings.interval)
        self._last_redis_error: str | None = None
        self._eviction_warned: str | None = None  # the maxmemory-policy already warned about
        self._started = False
        # NEW_REQUERIMENTS: installed once, before the first load; a failure is final for this
        # process (recorded once, like a broken function; a restart tries again).
        self._requirements = requirements
        self._requirements_failure: RequirementsFailed | None = None
        self._requirements_recorded = False

    def run(self) -> None:
        backoff = Backoff()
        while not self.stop.is_set():
            self.telemetry.beat()
            try:
                self.waiter.prepare()
                self.step()
            except redis.RedisError as exc:
                self._redis_failed(exc)
                self.waiter.close()
                self._pause(backoff)
                continue
            if not self.telemetry.redis_ok or self._last_redis_error:
                recovered = backoff.attempts > 0
                self._warn_eviction()
                log.info("Redis reachable again; resuming" if recovered else "connected to Redis")
                self.telemetry.redis_ok = True
                self._last_redis_error = None
                if self._registration is not None:
                    self._registration.register()
            backoff.reset()
            if self._look_again:  # the last commit was refused: judge the input again soon
                self._look_again = False
                if self._retries > 1:  # the first retry is at once (a takeover's race)
                    self._pause(self._retry_backoff)  # later ones back off up to INTERVAL
                continue
            self._retries = 0
            if not (self.trigger.blocks and self.source.current) or self.state.blocked:
                self.waiter.wait(self.settings.interval)  # stream reads block by themselves
        self.waiter.close()
        if not self.telemetry.redis_ok:
            return  # Redis is away: the lease lapses by itself; the journal holds every commit
        self._save_state()
        if self.store.lease is not None:
            self.store.lease.release(self.store.client)

    def _warn_eviction(self) -> None:
        policy = self.store.eviction_policy()
        if policy is None or policy == self._eviction_warned:
            return
        self._eviction_warned = policy
        log.warning(
            "Redis evicts any key under memory pressure (maxmemory-policy=%s): a state key "
            "evicted on its own loses commits or applies an input again after a restart; set "
            "maxmemory-policy noeviction (Redis's default) on the server that holds the state",
            policy,
        )

    def _redis_failed(self, exc: redis.RedisError) -> None:
        reachable = not isinstance(exc, redis.ConnectionError | redis.TimeoutError)
        message = _redis_message(exc)
        if message != self._last_redis_error:
            log.warning("%s; retrying with backoff", message)
            try:
                if reachable:
                    self.store.record_error(
                        error_record(FailureKind.REDIS_ERROR, message, "", None)
                    )
            except redis.RedisError:
                log.debug("could not record the Redis error", exc_info=True)
        self._last_redis_error = message
        self.telemetry.redis_ok = reachable

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
        if not self._started:
            self._start()
        if not self._requirements_installed():
            return
        self._reload()
        if self.source.current is None:
            return
        for item in self.trigger.inputs():
            outcome = Told.AGAIN
            try:
                outcome = self.invoke(item)
            finally:
                self.trigger.told(item, outcome)
        self.telemetry.leader = self.trigger.leader

    def _start(self) -> None:
        poison = self.store.read_poison()
        if "function" in poison:
            self.source.refuse(poison["function"])
        if poison:
            log.warning("not trying again what hung before: %s", poison)
            self.telemetry.poison = ", ".join(f"{k}={v}" for k, v in sorted(poison.items()))
        self.waiter = self._make_waiter()
        self.waiter.prepare()
        self.trigger.start(poison.get("input"))
        self._started = True

    def _requirements_installed(self) -> bool:
        """Install NEW_REQUERIMENTS once; False while they are not (failed, or stopping)."""
        if self._requirements is not None and self._requirements_failure is None:
            # pip runs in a child process bounded by its own timeout, not the import's watchdog;
            # the heartbeat covers that time, so liveness does not restart a pod that installs.
            self.telemetry.beat(pause=self._requirements.timeout)
            try:
                if new_requirements.install(self._requirements, self.stop):
                    self._requirements = None
            except RequirementsFailed as exc:
                self.telemetry.reloaded(ok=False, kind=exc.kind)
                self._requirements_failure = exc
            finally:
                self.telemetry.beat()
        failure = self._requirements_failure
        if failure is not None and not self._requirements_recorded:
            record(self.store, failure.kind, str(failure))
            self._requirements_recorded = True
        return self._requirements is None

    def _reload(self) -> None:
        before = self.source.failed
        self.telemetry.busy_since, self.telemetry.loading = time.monotonic(), True
        try:
            changed = self.source.refresh()
        except FunctionLoadError as exc:
            changed = False
            self.telemetry.reloaded(ok=False, kind=exc.kind)
            running = " (the previous version keeps running)" if self.source.current else ""
            record(self.store, exc.kind, f"{exc}{running}", exc)
        finally:
            self.telemetry.busy_since, self.telemetry.loading = None, False
        failed = self.source.failed
        if failed != before:  # the newest version failed (or no longer): /readyz, registry say so
            self.telemetry.load_failure = None if failed is None else failed.describe()
            if self._registration is not None:
                self._registration.load_failed(failed)
        if changed and self.source.current is not None:
            self.context.function_getmtime = self.source.current.mtime_text
            handler = self.source.current.handler
            replay = partial(
                _replay, handler, self.context, self.time_limit, self.settings.keys.input
            )
            self.state.use(self.source.current.digest, replay)
            self.telemetry.function_loaded = True
            self.telemetry.reloaded(ok=True)
            log.info("loaded function %s", self.source.current.path)

    def invoke(self, item: Input) -> Told:
        raw, digest, entry_id = item
        stamp: str | None = None
        duration: float | None = None
        try:
            try:
                value = parse_input(raw or b"", self.settings.keys.input)
            except ValueError as exc:
                raise Failed(FailureKind.INVALID_INPUT, str(exc)) from exc
            stamp = value.get("timestamp") if isinstance(value.get("timestamp"), str) else None
            if entry_id is None and digest is not None and self._deadly(digest, stamp):
                return Told.POISON
            self.telemetry.busy_since = time.monotonic()
            started = time.perf_counter()
            try:
                result = self._call(value)
            finally:
                duration = time.perf_counter() - started
            self.state.observe(duration)  # what replaying this input would cost
            output, append = self._encode(result, raw or b"")
            try:
                outcome = self.store.commit(output, digest, entry_id, append)
            except CommitRefused as exc:  # not retried: it would fail the same way
                raise Failed(FailureKind.REDIS_ERROR, str(exc)) from exc
        except Failed as failure:
            self.store.call_ended()  # the input is done with: not marked in flight any more
            if failure.kind != FailureKind.INVALID_INPUT:
                self.state.rollback()
            self._fail(failure.kind, str(failure), stamp, failure.__cause__, entry_id, duration)
            return Told.DONE
        except redis.RedisError:
            self.state.rollback()  # the input will be processed again, from the same state
            self.telemetry.busy_since = None
            raise
        if outcome is not Outcome.COMMITTED:
            # FENCED: another replica took the lease during the call; CLAIMED: another consumer
            # took the stream entry (past STREAM_CLAIM_IDLE): their commit counts, not ours.
            # STALE: another commit came first; catch up, then judge the input again.
            self.store.call_ended(done=False)
            self.state.rollback()
            self._look_again = True
            self.telemetry.invoked(outcome.name.lower(), duration, None)
            if outcome is Outcome.STALE:
                self._look_again = self._refused_as_stale()
                self.state.sync()
            return Told.AGAIN
        if self._streak_logged:
            log.info("a commit went through after %d refused as stale", self._refusals)
        self._refusals = self._retries = 0
        self._streak_logged = False
        self._retry_backoff.reset()
        self.state.committed(append)
        self.state.digest = digest
        self.telemetry.state_bytes = self.state.snapshot_bytes
        self.telemetry.invoked("success", duration, input_age(value))
        return Told.DONE

    def _deadly(self, digest: str, stamp: str | None) -> bool:
        """True when the input ended the process MAX_DEATHS times (poison), as the read found."""
        deaths = self.store.in_flight_deaths
        if deaths < self.settings.max_deaths:
            return False
        self.store.mark_poison("input", digest, deaths)
        message = (
            f"the input ended the process {deaths} times (MAX_DEATHS={self.settings.max_deaths}): "
            "a crash in C code, the OOM killer or os._exit; recorded in "
            f"{self.store.poison_key!r}, not tried again; the next input is processed"
        )
        self.telemetry.invoked(FailureKind.POISON_INPUT, None, None)
        self.telemetry.poison = f"input={digest}, input-deaths={deaths}"
        record(self.store, FailureKind.POISON_INPUT, message, stamp=stamp)
        return True

    def _refused_as_stale(self) -> bool:
        """Count a refusal; True while the input may be judged again before the next tick."""
        self._refusals += 1
        if self._retries < STALE_RETRIES:
            self._retries += 1
            return True
        if not self._streak_logged:  # said once per streak, which a commit ends
            self._streak_logged = True
            log.warning(
                "%d commits refused as stale in a row: another writer moves %r (a second runtime "
                "without a lease, or a function writing it?); the input waits until the next "
                "tick or change",
                self._refusals,
                self.store.head_key,
            )
        return False

    def _pause(self, backoff: Backoff) -> None:
        """Wait the backoff's next delay: waiting on purpose is no sign of a stuck loop."""
        delay = backoff.next_delay()
        self.telemetry.beat(pause=delay)
        self.stop.wait(delay)

    def record_stuck(self, why: str, _elapsed: float) -> None:
        """Called by the watchdog before it ends the process: say what hung, never retry it."""
        loading, current = self.telemetry.loading, self.source.current
        if self.telemetry.recovering and not loading and current is not None:
            # A committed input hung while replayed: no input is to blame, this version cannot
            # rebuild the state. It is not loaded again (the state stays as committed).
            self.store.mark_poison("function", current.digest)
            message = (
                f"{why} while replaying the journal (a committed input) and ignored the "
                "interruption: the process ends so that it is restarted; this function version "
                "is not loaded again, another version rebuilds the state"
            )
        else:
            digest = self.source.loading_digest if loading else self.trigger.seen
            if digest is not None:
                self.store.mark_poison("function" if loading else "input", digest)
            again = "this version is not loaded" if loading else "this input is not processed"
            message = (
                f"{why} and ignored the interruption: the process ends so that it is restarted; "
                f"{again} again"
            )
        self.store.record_error(error_record(FailureKind.TIMEOUT, message, "", None))

    def _call(self, value: dict[str, Any]) -> Any:
        """The handler's result, or Failed (the caller rolls the state back, never judges it)."""
        handler = self.source.current.handler if self.source.current else None
        assert handler is not None
        started = time.monotonic()
        try:
            with self.time_limit.limit():
                result = handler(value, self.context)
        except HandlerTimeout as exc:
            raise Failed(FailureKind.TIMEOUT, str(exc)) from exc
        except BaseException as exc:  # the one boundary around user code
            # Also SystemExit and KeyboardInterrupt: only signals from outside stop the loop,
            # and those set the stop event instead of raising.
            message = f"handler raised {describe(exc)}"
            raise Failed(FailureKind.HANDLER_ERROR, message) from exc
        limit = self.settings.handler_timeout
        if limit is not None and time.monotonic() - started > limit:
            # It caught the interruption and carried on: its result is not taken.
            message = f"handler ran longer than HANDLER_TIMEOUT={limit:g}s (it caught the timeout)"
            raise Failed(FailureKind.TIMEOUT, message)
        return result

    def _encode(self, result: Any, raw: bytes) -> tuple[bytes | None, Append]:
        try:
            output = codec.dumps(result, "the result") if result else None
        except codec.NotJSON as exc:
            raise Failed(FailureKind.INVALID_OUTPUT, str(exc)) from exc
        except Exception as exc:  # a result's own methods (__bool__, …) may raise
            message = f"the result cannot be used: {describe(exc)}"
            raise Failed(FailureKind.INVALID_OUTPUT, message) from exc
        limit = self.settings.max_output_bytes
        if output is not None and len(output) > limit:
            message = f"the result is {len(output)} bytes, over MAX_OUTPUT_BYTES={limit}"
            raise Failed(FailureKind.INVALID_OUTPUT, message)
        env: Any = self.context.env  # the function may have replaced it with anything
        if not isinstance(env, dict):
            message = f"context.env was replaced by a {type(env).__name__}; it must be a dict"
            raise Failed(FailureKind.INVALID_OUTPUT, message)
        return output, self.state.plan(raw)

    def _fail(
        self,
        kind: FailureKind,
        message: str,
        stamp: str | None = None,
        exc: BaseException | None = None,
        entry_id: str | None = None,
        duration: float | None = None,
    ) -> None:
        self.telemetry.invoked(kind, duration, None)
        record(self.store, kind, message, exc, stamp)
        if entry_id is not None:
            # A failure is final for a stream entry: acknowledged, never retried forever.
            self.store.commit(None, None, entry_id)


def _no_function(entry: Journaled) -> None:
    raise ReplayError("no function is loaded to replay the journal with")


def _replay(
    handler: Callable[[Any, Any], Any],
    context: Context,
    time_limit: TimeLimit,
    input_key: str,
    entry: Journaled,
) -> None:
    """Call one version's handler on a committed input again, output discarded (a rollback
    replays each commit with the version that committed it)."""
    try:
        value = parse_input(entry.raw or b"", input_key)
    except ValueError as exc:
        raise ReplayError(f"replaying journal entry {entry.seq} failed: {exc}", True) from exc
    try:
        with redirect_stdout(StringIO()), time_limit.limit():
            handler(value, context)
    except HandlerTimeout as exc:
        raise ReplayError(f"replaying journal entry {entry.seq}: {exc}") from exc


def record(
    store: Store,
    kind: FailureKind,
    message: str,
    exc: BaseException | None = None,
    stamp: str | None = None,
) -> None:
    # The function's frames only: the runtime's are noise to its author, unless debugging.
    tb = user_traceback(exc, log.isEnabledFor(logging.DEBUG)) if exc is not None else ""
    error = error_record(kind, message, tb, stamp)
    # The log line says what the record says (cut to the same bounds); the traceback is a
    # field of its own (logs.py prints it below the line, or as JSON's `traceback`).
    fields: dict[str, str] = {"kind": kind}
    if error["traceback"]:
        fields["traceback"] = error["traceback"].rstrip("\n")
    log.error("%s: %s", kind, error["message"], extra=fields)
    store.record_error(error)
