"""context.env as of the last commit: a snapshot plus the journal of inputs committed after it.

When a snapshot is written, how the state is rebuilt (on start, and whenever another replica
committed: state follows the lease) and how a failed call is rolled back from memory, never by
judging the state: apps/runtime/README.md, "State". The state in Redis is never rewritten because
a version failed.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from serverless_runtime.config import DEFAULT_MAX_REPLAY_SECONDS
from serverless_runtime.failures import FailureKind
from serverless_runtime.function.context import Context
from serverless_runtime.function.user_traceback import describe
from serverless_runtime.ops.telemetry import Telemetry
from serverless_runtime.state import codec, tagged
from serverless_runtime.storage.store import Append, Committed, Head, Journaled, Store

log = logging.getLogger(__name__)

SNAPSHOT_FORMAT = 3  # env in tagged JSON (state/tagged.py)
# env in plain JSON: still written when the state holds no tag, so that a runtime from before
# format 3 (a rolled-back image) reads it.
PLAIN_FORMAT = 2
SNAPSHOT_EVERY = 1000  # commits; bounds the replay after a restart when the state is tiny
PROGRESS_EVERY = 5.0  # seconds between the log lines of a long replay
_COST_WEIGHT = 0.2  # of the newest call in the moving average of call durations

Replay = Callable[[Journaled], None]
Report = Callable[[FailureKind, str, BaseException | None], None]


class ReplayError(Exception):
    """A committed input could not be applied again; `damaged`: by any version (no input, not a
    JSON object), else by the version replaying it."""

    def __init__(self, message: str, damaged: bool = False) -> None:
        super().__init__(message)
        self.damaged = damaged


@dataclass(slots=True)
class _Base:
    """The state a rebuild starts from: encoded (tagged), or an in-memory copy."""

    seq: int = 0
    text: bytes | None = b"{}"
    obj: Any = None  # used when the state cannot be encoded (kept in memory only)
    at: datetime | None = None

    def env(self) -> dict[str, Any]:
        value = tagged.loads(self.text) if self.text is not None else _copy(self.obj)
        return value if isinstance(value, dict) else {}


class DurableState:
    """Keeps `context.env` equal to what the commits in Redis say it is."""

    def __init__(
        self,
        context: Context,
        store: Store,
        replay: Replay,
        report: Report,
        persistent: bool,
        max_bytes: int | None = None,
        max_replay_seconds: float = DEFAULT_MAX_REPLAY_SECONDS,
        reset_token: str | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.context = context
        self.store = store
        self.persistent = persistent
        self.seq = 0
        self.digest: str | None = None
        self.function = ""  # the digest of the function version running now
        self.snapshot_bytes = 0
        # Why this replica processes nothing (a version that cannot replay a commit), or None.
        self.blocked: str | None = None
        self._blocked_by: str | None = None
        self._replay = replay  # with the version running now
        self._report = report
        self._max_bytes = max_bytes
        self._max_replay = max_replay_seconds
        self._reset_token = reset_token
        self._recorded_reset: str | None = None  # the STATE_RESET token the state was reset with
        self._newer_format: int | None = None  # the last snapshot read came from a newer runtime
        self._telemetry = telemetry or Telemetry(stale_after=0.0)  # without one: read by none
        self._base = _Base()  # what a rollback restores (in memory)
        # Committed after the base, in order, each with the version that committed it (which
        # replays it in a rollback).
        self._tail: list[tuple[Journaled, Replay]] = []
        # The journal in Redis after its snapshot: what a rebuild elsewhere replays.
        self._journal_count = 0
        self._journal_bytes = 0
        self._cost: float | None = None  # seconds per call, a moving average
        self._pending: _Base | None = None  # the base a snapshot in flight will make
        self._loaded = not persistent  # kept in memory only: there is nothing to load
        self._warned_unsaved = False
        # Redis resets: the epoch of the history this state belongs to (None: not known yet),
        # and, for a replica with no state, the last head it saw and since when Redis lost it.
        self.epoch: str | None = None
        self.waiting = False  # no call: waiting for a replica to write back what Redis lost
        self.reset_grace = 0.0
        self._seen_history: Head | None = None
        self._lost_since: float | None = None

    def use(self, function: str, replay: Replay) -> None:
        """A function version was loaded: later commits are its, and replayed by it."""
        self.function, self._replay = function, replay
        if self.blocked is not None and function != self._blocked_by:
            log.info("another function version is loaded: rebuilding the state with it")
            self.blocked = self._blocked_by = None
            self._loaded = False
            self._telemetry.state_problem = None

    def ensure_loaded(self) -> None:
        if self.persistent and not self._loaded and self.blocked is None:
            self.load(self.store.read_committed())

    def sync(self, head: Head | None = None) -> None:
        """Bring `context.env` and the digest up to the last commit before the next call."""
        head = head or self.store.read_head()
        if not self.persistent:
            self.digest = head.digest  # only the digest is shared; the state lives in memory
            return
        if self.blocked is not None:
            return  # waiting for a version that can replay the journal
        if not self._loaded:
            if not self._lost_elsewhere(head):
                self.load(self.store.read_committed())
            return
        if self._other_history(head):
            return
        if head.seq == self.seq:
            self.digest = head.digest
            return
        if 0 < head.seq < self.seq:
            # Redis holds an older commit: a failover to a replica that had not received the last
            # ones (replication is asynchronous), or a restart from an older dump. Its commits,
            # outputs and input digest agree with each other: the state follows them, so that an
            # input whose commit was lost is processed again and no input is applied twice.
            log.warning(
                "Redis holds commit %d but this replica's state is at commit %d (a failover lost "
                "the last commits?): rebuilding the state from Redis",
                head.seq,
                self.seq,
            )
            self.load(self.store.read_committed())
            if self.blocked is None and self.seq > head.seq:
                # Redis's own snapshot and journal go past its head: the head was lost or
                # rewound on its own. Rebuilding again would find the same, at every call;
                # the state they make is written back as the head instead, once.
                self._write_back(head)
            return
        head, entries = self.store.read_journal(self.seq)
        expected = list(range(self.seq + 1, head.seq + 1))
        if head.seq > self.seq and [entry.seq for entry in entries] == expected:
            log.info("catching up with %d commits made by another replica", len(entries))
            self._apply(entries)
            if self.blocked is None:
                self._rebase()
                self.digest = head.digest
        else:  # the journal was trimmed past us, or the head went back: start over
            self.load(self.store.read_committed())

    def watch(self, head: Head) -> None:
        """A standby's read of the head: its state, if newer than Redis's, is written back."""
        if not self.persistent or self.blocked is not None:
            return
        if self._loaded:
            if self._newer_than(head):
                self._write_back(head)
        elif head.seq > 0:
            self._seen_history = head

    def _newer_than(self, head: Head) -> bool:
        """Redis lost this replica's commits: it holds none, or fewer of another history. No commit
        is no commit whatever else is left: `<state>:seq` lost on its own (evicted, deleted) leaves
        a snapshot and a journal that a commit numbered from 1 would contradict."""
        if self.seq == 0:
            return False
        if head.seq == 0:
            return True
        other = head.epoch is not None and self.epoch is not None and head.epoch != self.epoch
        return other and head.seq < self.seq

    def _other_history(self, head: Head) -> bool:
        """True when the head belongs to another history (handled here): the newest commit wins,
        by sequence number and epoch; an equal number follows Redis, never a stale copy."""
        if self._newer_than(head):
            self._write_back(head)
            return True
        if head.epoch is None or self.epoch is None or head.epoch == self.epoch:
            if self.epoch is None and head.epoch is not None:
                self.epoch = head.epoch  # made by the first commit (this replica's, or one after)
            return False
        log.warning(
            "Redis holds commit %d of another history (epoch %s) than this replica's state "
            "(commit %d of epoch %s): Redis was reset and holds as many commits since, or more; "
            "rebuilding the state from Redis",
            head.seq,
            head.epoch,
            self.seq,
            self.epoch,
        )
        self.load(self.store.read_committed())
        return True

    def _write_back(self, head: Head) -> None:
        snapshot, base = self._snapshot(self.seq, self.context.last_execution or datetime.now())
        own = head.seq > 0 and head.epoch == self.epoch  # the head behind its own journal
        epoch = self.store.write_back(head, self.seq, snapshot, self.digest)
        if epoch is None:
            return  # Redis changed meanwhile: judged again at the next read
        self.epoch, self._pending = epoch, None
        self._snapshotted(base, len(snapshot))
        if own:
            held, why = f"commit {head.seq} behind its own journal", "its head lost or rewound"
        else:
            held = "no commit" if head.seq == 0 else f"commit {head.seq} of another history"
            why = "Redis restarted without persistence, or from an older copy, or lost a key"
        message = (
            f"Redis holds {held} but this replica's state is at commit {self.seq} ({why}): this "
            f"state was written back as commit {self.seq}; outputs and history from before the "
            "reset are not restored"
        )
        self._report(FailureKind.REDIS_RESET, message, None)

    def _lost_elsewhere(self, head: Head) -> bool:
        """A replica with no state finds Redis empty after it saw commits there: True while it
        waits (`reset_grace` seconds) for a replica holding them to write them back."""
        seen = self._seen_history
        if seen is None or head.seq > 0 or head.epoch is not None:
            self.waiting, self._lost_since = False, None
            return False
        now = time.monotonic()
        if self._lost_since is None:
            self._lost_since = now
            log.warning(
                "Redis holds no commit but held commit %d before (restarted without "
                "persistence?): waiting up to %g s for a replica holding that state to write "
                "it back",
                seen.seq,
                self.reset_grace,
            )
        if now - self._lost_since < self.reset_grace:
            self.waiting = True
            return True
        self.waiting, self._seen_history = False, None
        message = (
            f"Redis lost commit {seen.seq} and no replica wrote it back within "
            f"{self.reset_grace:g} s: starting from an empty context.env"
        )
        self._report(FailureKind.REDIS_RESET, message, None)
        return False

    def load(self, committed: Committed) -> None:
        base = self._read_snapshot(committed.snapshot)
        later = [entry for entry in committed.journal if entry.seq > base.seq]
        if self._reset_token is not None and self._reset_token != self._recorded_reset:
            log.warning(
                "STATE_RESET=%r differs from the state's (%r): starting from an empty context.env "
                "at commit %d; the state of the commits before is not used",
                self._reset_token,
                self._recorded_reset,
                committed.head.seq,
            )
            base, later = _Base(seq=committed.head.seq, at=base.at), []
            self._recorded_reset = self._reset_token
            committed = committed._replace(snapshot=None)  # the next commit writes a snapshot
        elif self._newer_format is not None:
            newer, key = self._newer_format, self.store.state_key
            message = (
                f"the state snapshot in {key!r} was written by a newer runtime (format {newer}, "
                f"this one reads {PLAIN_FORMAT} and {SNAPSHOT_FORMAT}): the state stays as "
                "committed in Redis and this replica processes nothing until a runtime that "
                "reads it leads (or STATE_RESET asks for an empty state)"
            )
            self._refuse(
                FailureKind.INVALID_STATE, message, f"snapshot format {newer} unknown", None
            )
            return
        self._snapshotted(base, len(committed.snapshot or b""))
        self.seq, self.epoch = base.seq, committed.head.epoch
        self.context.env, self.context.last_execution = base.env(), base.at
        self._loaded = True
        self._apply(later)
        if self.blocked is not None:
            return
        if committed.head.seq > self.seq:
            self._missing(self.seq + 1, committed.head.seq)
            self.seq = committed.head.seq
        if later:
            self._rebase()  # a failed call after the rebuild rolls back without replaying again
        self.digest = committed.head.digest
        if committed.snapshot is not None or later:
            log.info(
                "restored function state: snapshot of commit %d (%d bytes) + %d journal entries",
                base.seq,
                self.snapshot_bytes,
                len(later),
            )

    def _read_snapshot(self, raw: bytes | None) -> _Base:
        self._newer_format = None  # set by this snapshot only
        if raw is None:
            return _Base()
        try:
            return self._parse_snapshot(raw)
        except (codec.NotJSON, RecursionError) as exc:  # nested deeper than a state can be
            return self._unreadable(f"cannot be held as a state ({exc})", exc)

    def _parse_snapshot(self, raw: bytes) -> _Base:
        try:
            document = tagged.parse(raw)
        except ValueError as exc:
            return self._unreadable(f"is not JSON ({exc})", exc)
        if not isinstance(document, dict):
            return self._unreadable(f"is a JSON {type(document).__name__}, not an object", None)
        version = document.get("format")
        if type(version) is int and version > SNAPSHOT_FORMAT and "env" in document:
            self._newer_format = version
            return _Base()
        if version not in (PLAIN_FORMAT, SNAPSHOT_FORMAT):
            # A state written before snapshots had a format: the object is context.env itself.
            return _Base(seq=0, text=tagged.dumps(document))
        env, seq = document.get("env"), document.get("seq")
        if not isinstance(seq, int) or not (env is None or isinstance(env, dict)):
            return self._unreadable(
                "has no whole-number `seq` or an `env` that is not an object", None
            )
        reset = document.get("reset")
        self._recorded_reset = reset if isinstance(reset, str) else None
        at = when(document.get("at"))
        if env is None:
            log.warning(
                "the state at commit %d could not be encoded (%s) and was kept in memory only: "
                "starting from an empty context.env",
                seq,
                document.get("unsaved"),
            )
            return _Base(seq=seq, text=b"{}", at=at)
        if version == PLAIN_FORMAT:  # plain JSON: encoded again, so that a "$t" key stays a key
            return _Base(seq=seq, text=tagged.dumps(env), at=at)
        try:
            value = tagged.decode(env, tagged=tagged.has_tags(raw))
        except ValueError as exc:
            return self._unreadable(f"holds an `env` this runtime cannot read ({exc})", exc)
        if not isinstance(value, dict):
            why = f"holds an `env` that is a {type(value).__name__}, not a dict"
            return self._unreadable(why, None)
        return _Base(seq=seq, text=codec.dumps(env), at=at)

    def _unreadable(self, why: str, exc: BaseException | None) -> _Base:
        message = (
            f"the state snapshot in {self.store.state_key!r} {why}: starting from an empty "
            "context.env and replaying the journal"
        )
        self._report(FailureKind.INVALID_STATE, message, exc)
        return _Base()

    def _missing(self, first: int, last: int) -> None:
        span = f"commit {first}" if first == last else f"commits {first} to {last}"
        journal = self.store.journal_key
        message = f"{span} missing from the journal {journal!r}: the state lacks them"
        self._report(FailureKind.INVALID_STATE, message, None)

    def _apply(self, entries: list[Journaled]) -> None:
        """Replay committed inputs with the version running now; stop at one it fails on."""
        with _progress(len(entries), self._telemetry) as replayed:
            for entry in entries:
                if entry.seq > self.seq + 1:
                    self._missing(self.seq + 1, entry.seq - 1)
                self._journal_count += 1
                self._journal_bytes += len(entry.raw or b"")
                try:
                    self._replay_one(entry, self._replay)
                except ReplayError as exc:
                    if not exc.damaged:
                        self._block(entry, exc)
                        return
                    # No version could apply it: reported, and the state goes on without it.
                    self._report(FailureKind.REPLAY_ERROR, str(exc), exc.__cause__)
                else:
                    self._tail.append((entry, self._replay))
                self.seq = entry.seq
                replayed(entry.seq)

    def _block(self, entry: Journaled, exc: ReplayError) -> None:
        """This version cannot rebuild the committed state: it must not build on another one."""
        version = self.function[:12] or "the loaded version"
        message = (
            f"commit {entry.seq} cannot be replayed by function version {version}: {exc}; the "
            "state stays as committed in Redis and this replica processes nothing until a "
            "version that can replay it is loaded (or STATE_RESET asks for an empty state)"
        )
        problem = f"function version {version} cannot replay commit {entry.seq}"
        self._refuse(FailureKind.REPLAY_ERROR, message, problem, exc.__cause__)

    def _refuse(
        self, kind: FailureKind, message: str, problem: str, cause: BaseException | None
    ) -> None:
        """Process nothing on a state this replica cannot rebuild; Redis is left as it is."""
        self.blocked, self._blocked_by = message, self.function
        self._loaded = False
        self._telemetry.state_problem = problem
        self._report(kind, message, cause)

    def _replay_one(self, entry: Journaled, replay: Replay) -> None:
        if entry.raw is None:
            raise ReplayError(f"journal entry {entry.seq} has no input", damaged=True)
        self.context.replaying = True
        started = time.perf_counter()
        try:
            replay(entry)
        except ReplayError:
            raise
        except BaseException as exc:  # replay runs user code, like a call (SystemExit too)
            raise ReplayError(
                f"replaying journal entry {entry.seq} failed: {describe(exc)} "
                "(the function's state must depend only on context.env and its input)"
            ) from exc
        finally:
            self.context.replaying = False
        self.observe(time.perf_counter() - started)
        self.context.last_execution = when(entry.at)

    def observe(self, seconds: float) -> None:
        """A call (or a replay) took `seconds`: the estimate of a replay's cost follows it."""
        cost = self._cost
        self._cost = seconds if cost is None else cost + _COST_WEIGHT * (seconds - cost)

    def rollback(self) -> None:
        """Undo what a failed call did to `context.env`: back to the last commit, from memory."""
        self._pending = None
        if not self._loaded or self.blocked is not None:
            return  # nothing was built yet: the next sync loads the committed state
        self.context.env = self._base.env()
        self.context.last_execution = self._base.at
        if not self._tail:
            return
        with _progress(len(self._tail), self._telemetry) as replayed:
            try:
                for entry, replay in self._tail:
                    self._replay_one(entry, replay)
                    replayed(entry.seq)
            except ReplayError as exc:
                # The version that committed it gives another state now: it breaks the replay
                # contract. The state in Redis is rebuilt before the next call.
                message = f"rolling back a failed call: {exc}"
                self._report(FailureKind.REPLAY_ERROR, message, exc.__cause__)
                self._loaded = not self.persistent
                return
        self._rebase()

    def _rebase(self) -> None:
        """Keep the state just rebuilt as the base: the next rollback restores it at once."""
        try:
            text = tagged.dumps(self.context.env)
        except codec.NotJSON:
            return  # kept in memory only: the tail stays, a rollback replays it
        self._base = _Base(seq=self.seq, text=text, at=self.context.last_execution)
        self._tail = []

    def plan(self, raw: bytes) -> Append:
        at = datetime.now()
        # A snapshot once the journal would hold more bytes than it (a state smaller than its
        # input is written whole with every commit, instead of the input), or take longer to
        # replay than MAX_REPLAY_SECONDS. A state kept in memory only is not in its snapshot:
        # the journal is all a rebuild has, so it is kept to SNAPSHOT_EVERY inputs.
        count = self._journal_count + 1
        encoded = self._base.text is not None
        due = (
            self._journal_bytes + len(raw) >= self.snapshot_bytes
            or count >= SNAPSHOT_EVERY
            or (encoded and count * (self._cost or 0.0) > self._max_replay)
        )
        snapshot, self._pending = self._snapshot(self.seq + 1, at) if due else (None, None)
        return Append(self.seq, raw, at.isoformat(), snapshot)

    def committed(self, append: Append) -> None:
        self.seq = append.expected_seq + 1
        at = datetime.fromisoformat(append.at)
        self.context.last_execution = at
        if append.snapshot is None:
            self._tail.append((Journaled(self.seq, append.raw, append.at), self._replay))
            self._journal_count += 1
            self._journal_bytes += len(append.raw)
            return
        base, self._pending = self._pending, None
        assert base is not None
        self._snapshotted(base, len(append.snapshot) if base.text is not None else 1 << 62)

    def _snapshotted(self, base: _Base, size: int) -> None:
        self._base, self.snapshot_bytes = base, size
        self._tail = []
        self._journal_count = self._journal_bytes = 0

    def _snapshot(self, seq: int, at: datetime) -> tuple[bytes, _Base]:
        """The snapshot document for commit `seq`, and the base later rebuilds start from."""
        try:
            env = tagged.dumps(self.context.env, "context.env")
            if self._max_bytes is not None and len(env) > self._max_bytes:
                size, limit = len(env), self._max_bytes
                raise codec.NonStandard(
                    f"context.env is {size} bytes encoded, over MAX_STATE_BYTES={limit}"
                )
        except codec.NotJSON as exc:
            if not self._warned_unsaved:
                message = (
                    f"{exc}: context.env is kept in memory only; a restart or another replica "
                    "rebuilds it from the inputs committed after this point"
                )
                if isinstance(exc, codec.NonStandard):  # a bug worth an error record
                    self._report(FailureKind.INVALID_STATE, message, None)
                else:
                    log.warning("%s", message)  # a type of the function's own: expected
                self._warned_unsaved = True
            copied = _copy(self.context.env)
            if copied is None:
                log.warning("context.env cannot be copied; a failed call may lose it")
            base = _Base(seq=seq, text=None, obj=copied, at=at)
            return self._envelope(seq, at, b"null", str(exc)), base
        return self._envelope(seq, at, env, None), _Base(seq=seq, text=env, at=at)

    def _envelope(self, seq: int, at: datetime, env: bytes, unsaved: str | None) -> bytes:
        head: dict[str, Any] = {
            "format": SNAPSHOT_FORMAT if tagged.has_tags(env) else PLAIN_FORMAT,
            "seq": seq,
            "function": self.function,
            "at": at.isoformat(),
        }
        if self._recorded_reset is not None:
            head["reset"] = self._recorded_reset
        if unsaved is not None:
            head["unsaved"] = unsaved
        # The state is spliced in as encoded, not parsed and encoded again.
        return codec.dumps(head)[:-1] + b',"env":' + env + b"}"

    def save(self) -> None:
        """Write a snapshot now (at shutdown), so that the next leader has nothing to replay."""
        if not (self.persistent and self._journal_count and self._loaded) or self.blocked:
            return
        snapshot, base = self._snapshot(self.seq, self.context.last_execution or datetime.now())
        if base.text is None:
            return  # not encodable: the journal rebuilds more of it than an empty snapshot would
        if self.store.save_snapshot(self.seq, snapshot):
            self._snapshotted(base, len(snapshot))
            log.info("saved a snapshot of commit %d (%d bytes)", self.seq, len(snapshot))


@contextmanager
def _progress(total: int, telemetry: Telemetry) -> Iterator[Callable[[int], None]]:
    """A long replay keeps the heartbeat fresh, says how far it is, and shows in /readyz."""
    started = said = time.monotonic()
    done = 0
    if total:
        telemetry.recovering = True
        telemetry.beat()
        telemetry.busy_since = started  # the watchdog bounds each replayed call

    def replayed(seq: int) -> None:
        nonlocal done, said
        done += 1
        now = time.monotonic()
        telemetry.beat()
        telemetry.busy_since = now
        if now - said >= PROGRESS_EVERY:
            said = now
            log.info(
                "rebuilding the state: %d of %d journal entries replayed (commit %d, %.0f s)",
                done,
                total,
                seq,
                now - started,
            )

    try:
        yield replayed
    finally:
        if total:
            telemetry.recovering = False
            telemetry.busy_since = None


def _copy(value: Any) -> Any:
    try:
        return copy.deepcopy(value)
    except Exception:  # noqa: BLE001 - user objects may refuse to be copied
        return None


def when(value: Any) -> datetime | None:
    """An ISO 8601 time read leniently: None when `value` is not one."""
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):  # TypeError: not a string
        return None
