"""context.env as of the last commit: a snapshot plus the journal of inputs committed after it.

Each commit appends its input to the journal (O(input)); a snapshot of `context.env` is written
only once the journal's bytes reach the last snapshot's (or every SNAPSHOT_EVERY commits), and the
journal is trimmed behind it. The state is rebuilt by loading the snapshot and replaying the
journal's inputs through the handler with their outputs discarded — on start, whenever this replica
finds that another one committed after it (state follows the lease), and to roll back a failed call.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from serverless_runtime import json_codec
from serverless_runtime.context import Context
from serverless_runtime.store import Append, Committed, Head, Journaled, Store

log = logging.getLogger(__name__)

SNAPSHOT_FORMAT = 2
SNAPSHOT_EVERY = 1000  # commits; bounds the replay after a restart when the state is tiny

Replay = Callable[[Journaled], None]
Report = Callable[[str, str, BaseException | None], None]


class ReplayError(Exception):
    """A committed input could not be applied again; the message names its sequence number."""


@dataclass(slots=True)
class _Base:
    """The state a rebuild starts from: the last snapshot (JSON), or an in-memory copy."""

    seq: int = 0
    text: bytes | None = b"{}"
    obj: Any = None  # used when the state is not JSON (kept in memory only)
    at: datetime | None = None

    def env(self) -> dict[str, Any]:
        if self.text is not None:
            value = json_codec.loads(self.text)
            return value if isinstance(value, dict) else {}
        try:
            return copy.deepcopy(self.obj) if isinstance(self.obj, dict) else {}
        except Exception:  # noqa: BLE001 - user objects may refuse to be copied
            return {}


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
        snapshot_every: int = SNAPSHOT_EVERY,
    ) -> None:
        self.context = context
        self.store = store
        self.persistent = persistent
        self.seq = 0
        self.digest: str | None = None
        self.function = ""  # the digest of the function version running now
        self.built_by = ""  # the version that made the state, when known
        self.snapshot_bytes = 0
        self._replay = replay
        self._report = report
        self._snapshot_every = snapshot_every
        self._max_bytes = max_bytes
        self._base = _Base()
        self._tail: list[Journaled] = []  # committed after the base, in order
        self._tail_bytes = 0
        self._pending: _Base | None = None  # the base a snapshot in flight will make
        self._loaded = False
        self._warned_unsaved = False

    # -- following the commits --------------------------------------------------------------------

    def ensure_loaded(self) -> None:
        """Load the committed state once, before the first call."""
        if self.persistent and not self._loaded:
            self.load(self.store.read_committed())

    def sync(self, head: Head | None = None) -> None:
        """Bring `context.env` and the digest up to the last commit before the next call."""
        head = head or self.store.read_head()
        if not self.persistent:
            self.digest = head.digest  # only the digest is shared; the state lives in memory
            return
        if not self._loaded:
            self.load(self.store.read_committed())
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
            return
        if head.seq < self.seq:
            # Redis lost everything (restarted without persistence): this replica's state is the
            # newest copy there is; the next commit snapshots it.
            log.warning(
                "Redis holds commit %d but this replica's state is at commit %d (Redis lost "
                "data?): keeping this state and writing it back with the next commit",
                head.seq,
                self.seq,
            )
            self.seq = head.seq
            self.snapshot_bytes = 0
            return
        head, entries = self.store.read_journal(self.seq)
        expected = list(range(self.seq + 1, head.seq + 1))
        if head.seq > self.seq and [entry.seq for entry in entries] == expected:
            log.info("catching up with %d commits made by another replica", len(entries))
            self._apply(entries)
            self.digest = head.digest
        else:  # the journal was trimmed past us, or the head went back: start over
            self.load(self.store.read_committed())

    def load(self, committed: Committed) -> None:
        """Rebuild from a snapshot and the journal after it."""
        self._base = self._read_snapshot(committed.snapshot)
        self.seq = self._base.seq
        self.snapshot_bytes = len(committed.snapshot or b"")
        self.context.env = self._base.env()
        self.context.last_execution = self._base.at
        self._tail, self._tail_bytes = [], 0
        self._loaded = True
        later = [entry for entry in committed.journal if entry.seq > self.seq]
        self._apply(later)
        if committed.head.seq > self.seq:
            self._missing(self.seq + 1, committed.head.seq)
            self.seq = committed.head.seq
        self.digest = committed.head.digest
        if committed.snapshot is not None or later:
            log.info(
                "restored function state: snapshot of commit %d (%d bytes) + %d journal entries",
                self._base.seq,
                self.snapshot_bytes,
                len(later),
            )

    def _read_snapshot(self, raw: bytes | None) -> _Base:
        if raw is None:
            return _Base()
        try:
            document = json_codec.loads(raw)
        except ValueError as exc:
            self._unreadable(f"is not JSON ({exc})", exc)
            return _Base()
        if not isinstance(document, dict):
            self._unreadable(f"is a JSON {type(document).__name__}, not an object", None)
            return _Base()
        if document.get("format") != SNAPSHOT_FORMAT:
            # A state written before snapshots had a format: the object is context.env itself.
            return _Base(seq=0, text=json_codec.dumps(document))
        env, seq = document.get("env"), document.get("seq")
        if not isinstance(seq, int) or not (env is None or isinstance(env, dict)):
            self._unreadable("has no whole-number `seq` or an `env` that is not an object", None)
            return _Base()
        built_by = document.get("function")
        self.built_by = built_by if isinstance(built_by, str) else ""
        if self.from_other_version:
            log.info("the state was written by another function version; replaying with this one")
        if env is None:
            log.warning(
                "the state at commit %d was not JSON (%s) and was kept in memory only: "
                "starting from an empty context.env",
                seq,
                document.get("unsaved"),
            )
            return _Base(seq=seq, text=b"{}", at=_when(document.get("at")))
        return _Base(seq=seq, text=json_codec.dumps(env), at=_when(document.get("at")))

    def _unreadable(self, why: str, exc: BaseException | None) -> None:
        message = (
            f"the state snapshot in {self.store.state_key!r} {why}: starting from an empty "
            "context.env and replaying the journal"
        )
        self._report("invalid-state", message, exc)

    def _missing(self, first: int, last: int) -> None:
        span = f"commit {first}" if first == last else f"commits {first} to {last}"
        journal = self.store.journal_key
        message = f"{span} missing from the journal {journal!r}: the state lacks them"
        self._report("invalid-state", message, None)

    def _apply(self, entries: list[Journaled]) -> None:
        """Replay committed inputs; one that fails is reported and left out of the state."""
        for entry in entries:
            if entry.seq > self.seq + 1:
                self._missing(self.seq + 1, entry.seq - 1)
            try:
                self._replay_one(entry)
            except ReplayError as exc:
                self._report("replay-error", str(exc), exc.__cause__)
                self.context.env = self._rebuild()
            else:
                self._remember(entry)
            self.seq = entry.seq

    def _replay_one(self, entry: Journaled) -> None:
        if entry.raw is None:
            raise ReplayError(f"journal entry {entry.seq} has no input")
        self.context.replaying = True
        try:
            self._replay(entry)
        except ReplayError:
            raise
        except BaseException as exc:  # replay runs user code, like a call (SystemExit too)
            raise ReplayError(
                f"replaying journal entry {entry.seq} failed: {type(exc).__name__}: {exc} "
                "(the function's state must depend only on context.env and its input)"
            ) from exc
        finally:
            self.context.replaying = False
        self.context.last_execution = _when(entry.at)

    def _rebuild(self) -> dict[str, Any]:
        """The base state with the remembered entries applied again; a failing one is dropped."""
        while True:
            self.context.env = self._base.env()
            self.context.last_execution = self._base.at
            for index, entry in enumerate(self._tail):
                try:
                    self._replay_one(entry)
                except ReplayError as exc:  # rare: the function is not deterministic
                    self._report("replay-error", str(exc), exc.__cause__)
                    del self._tail[index]
                    break
            else:
                break
        self._tail_bytes = sum(len(entry.raw or b"") for entry in self._tail)
        return self.context.env

    def _remember(self, entry: Journaled) -> None:
        self._tail.append(entry)
        self._tail_bytes += len(entry.raw or b"")

    # -- around a call ----------------------------------------------------------------------------

    @property
    def from_other_version(self) -> bool:
        """The state was made by a function version other than the one running now."""
        return bool(self.built_by) and self.built_by != self.function

    def set_aside(self) -> tuple[_Base, list[Journaled], int]:
        """Start from an empty state, keeping the old one to put back if that fails too."""
        kept = (self._base, self._tail, self.snapshot_bytes)
        self._base = _Base(seq=self.seq, text=b"{}", at=self._base.at)
        self._tail, self._tail_bytes = [], 0
        self.snapshot_bytes = 0  # the next commit writes a snapshot of the new state
        self.context.env = {}
        return kept

    def put_back(self, kept: tuple[_Base, list[Journaled], int]) -> None:
        """Undo `set_aside` (the state goes back to what it was after the last commit)."""
        self._base, self._tail, self.snapshot_bytes = kept
        self._tail_bytes = sum(len(entry.raw or b"") for entry in self._tail)

    def rollback(self) -> None:
        """Undo what a failed call did to `context.env`: the base state plus the journal."""
        self._pending = None
        self.context.env = self._rebuild()

    def plan(self, raw: bytes) -> Append:
        """The journal part of the commit of a successful call on `raw`."""
        at = datetime.now()
        # A snapshot once the journal would hold more bytes than it: a state smaller than its
        # input is written whole with every commit, instead of the input.
        due = (
            self._tail_bytes + len(raw) >= self.snapshot_bytes
            or len(self._tail) + 1 >= self._snapshot_every
        )
        self._pending = None
        snapshot = None
        if due:
            snapshot, self._pending = self._snapshot(self.seq + 1, at)
        return Append(self.seq, raw, at.isoformat(), snapshot)

    def committed(self, append: Append) -> None:
        """The commit went through: the call's input is now part of the state."""
        self.seq = append.expected_seq + 1
        self.built_by = self.function
        at = datetime.fromisoformat(append.at)
        self.context.last_execution = at
        if append.snapshot is None:
            self._remember(Journaled(self.seq, append.raw, append.at))
            return
        assert self._pending is not None
        self._base, self._pending = self._pending, None
        # A state kept in memory only has no size to weigh the journal against: its journal
        # grows to SNAPSHOT_EVERY inputs, which a rebuild replays.
        self.snapshot_bytes = len(append.snapshot) if self._base.text is not None else 1 << 62
        self._tail, self._tail_bytes = [], 0

    def _snapshot(self, seq: int, at: datetime) -> tuple[bytes, _Base]:
        """The snapshot document for commit `seq`, and the base later rebuilds start from."""
        try:
            env = json_codec.dumps(self.context.env, "context.env")
            if self._max_bytes is not None and len(env) > self._max_bytes:
                size, limit = len(env), self._max_bytes
                raise json_codec.NonStandard(
                    f"context.env is {size} bytes as JSON, over MAX_STATE_BYTES={limit}"
                )
        except json_codec.NotJSON as exc:
            if not self._warned_unsaved:
                message = (
                    f"{exc}: context.env is kept in memory only; a restart or another replica "
                    "rebuilds it from the inputs committed after this point"
                )
                if isinstance(exc, json_codec.NonStandard):
                    self._report("invalid-state", message, None)  # a bug worth an error record
                else:
                    log.warning("%s", message)  # course functions keep datetimes: expected
                self._warned_unsaved = True
            base = _Base(seq=seq, text=None, obj=self._copy_env(), at=at)
            return _envelope(seq, self.function, at, b"null", str(exc)), base
        return _envelope(seq, self.function, at, env, None), _Base(seq=seq, text=env, at=at)

    def _copy_env(self) -> Any:
        try:
            return copy.deepcopy(self.context.env)
        except Exception:  # noqa: BLE001 - user objects may refuse to be copied
            log.warning("context.env cannot be copied; a failed call may lose it")
            return None

    def save(self) -> None:
        """Write a snapshot now (at shutdown), so that the next leader has nothing to replay."""
        if not self.persistent or not self._tail:
            return
        snapshot, base = self._snapshot(self.seq, self.context.last_execution or datetime.now())
        if base.text is None:
            return  # not JSON: the journal rebuilds more of it than an empty snapshot would
        if self.store.save_snapshot(self.seq, snapshot):
            self._base = base
            self.snapshot_bytes = len(snapshot)
            self._tail, self._tail_bytes = [], 0
            log.info("saved a snapshot of commit %d (%d bytes)", self.seq, len(snapshot))


def _envelope(seq: int, function: str, at: datetime, env: bytes, unsaved: str | None) -> bytes:
    head = {"format": SNAPSHOT_FORMAT, "seq": seq, "function": function, "at": at.isoformat()}
    if unsaved is not None:
        head["unsaved"] = unsaved
    # The state is spliced in as encoded, not parsed and encoded again.
    return json_codec.dumps(head)[:-1] + b',"env":' + env + b"}"


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
