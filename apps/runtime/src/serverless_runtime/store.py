"""All Redis I/O of the runtime; the only module that knows the key names."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from serverless_runtime import json_codec
from serverless_runtime.config import RedisConfig, Settings
from serverless_runtime.lease import Lease

# Blocking reads wait at most this long, well below the socket timeout (redis-py #2807).
SOCKET_TIMEOUT = 10.0
MAX_BLOCK = 1.0
STREAM_FIELD = b"data"

# One atomic step: check the fencing token and that the state it builds on is the last committed
# one, then append the input to the state journal (with a snapshot when one is due, trimming the
# journal behind it), and write output, history entry, input digest and the stream acknowledgement.
# Redis runs a script as a transaction, like MULTI/EXEC, and the checks inside it need no extra
# round trip (WATCH would add two). Returns 1 when written, 0 when fenced, -1 when stale.
_COMMIT = """
if ARGV[1] ~= '' then
  if redis.call('GET', KEYS[5]) ~= ARGV[1] then return 0 end
  redis.call('PEXPIRE', KEYS[5], ARGV[6])
end
if ARGV[9] ~= '' then
  local head = tonumber(redis.call('GET', KEYS[8]) or '')
  local seq = tonumber(ARGV[9])
  if head and head ~= seq then return -1 end
  seq = seq + 1
  redis.call('XADD', KEYS[7], seq .. '-0', 'input', ARGV[10], 'at', ARGV[11])
  redis.call('SET', KEYS[8], seq)
  if ARGV[4] ~= '' then
    redis.call('SET', KEYS[3], ARGV[4])
    redis.call('XTRIM', KEYS[7], 'MINID', (seq + 1) .. '-0')
  end
end
if ARGV[2] ~= '' then
  redis.call('SET', KEYS[1], ARGV[2])
  if ARGV[3] ~= '0' then
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'output', ARGV[2])
  end
end
if ARGV[5] ~= '' then redis.call('SET', KEYS[4], ARGV[5]) end
if ARGV[8] ~= '' then redis.call('XACK', KEYS[6], ARGV[7], ARGV[8]) end
return 1
"""

# A snapshot taken outside a call (at shutdown) counts only if no commit came after it.
_SNAPSHOT = """
if (redis.call('GET', KEYS[1]) or '0') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('XTRIM', KEYS[3], 'MINID', (tonumber(ARGV[1]) + 1) .. '-0')
return 1
"""


def connect(
    config: RedisConfig, timeout: float = SOCKET_TIMEOUT, retries: int | None = None
) -> redis.Redis:
    """A client from REDIS_URL or host/port, with REDIS_PASSWORD applied."""
    options: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": min(timeout, 3.0),
        "health_check_interval": 30,
    }
    if retries is not None:
        options["retry"] = Retry(NoBackoff(), retries)
    if config.password is not None:
        options["password"] = config.password
    if config.url:
        return redis.Redis.from_url(config.url, **options)
    return redis.Redis(host=config.host, port=config.port, **options)


class Outcome(IntEnum):
    """What the commit script did."""

    STALE = -1  # another commit came first: the state the call built on is out of date
    FENCED = 0  # the lease was lost: nothing written
    COMMITTED = 1


@dataclass(frozen=True, slots=True)
class Head:
    """The last commit as Redis holds it: its sequence number and the digest of its input."""

    seq: int
    digest: str | None


@dataclass(frozen=True, slots=True)
class Reading:
    """One read of the input, with the last commit; `leader` False means another replica leads."""

    leader: bool
    raw: bytes | None
    head: Head


@dataclass(frozen=True, slots=True)
class Journaled:
    """One committed input, kept until a snapshot covers it."""

    seq: int
    raw: bytes | None
    at: str | None


@dataclass(frozen=True, slots=True)
class Committed:
    """Everything needed to rebuild the state: the snapshot and the journal after it."""

    head: Head
    snapshot: bytes | None
    journal: list[Journaled]


@dataclass(frozen=True, slots=True)
class Append:
    """The journal part of a commit: the input, and the snapshot when one is due."""

    expected_seq: int
    raw: bytes
    at: str
    snapshot: bytes | None


@dataclass(frozen=True, slots=True)
class Entry:
    """One stream entry to process."""

    entry_id: str
    raw: bytes | None


class Store:
    """Reads the input and the committed state, commits results atomically, records failures."""

    def __init__(
        self, client: redis.Redis, settings: Settings, lease: Lease | None, consumer: str
    ) -> None:
        self.client = client
        self.settings = settings
        self.lease = lease
        self.consumer = consumer
        self.group = settings.stream_group
        # In stream mode each replica keeps its own state: they share the entries, not the window.
        self.state_key = settings.state_key
        self.digest_key = settings.digest_key
        if settings.state_key and settings.stream_mode:
            self.state_key = f"{settings.state_key}:{consumer}"
        # The snapshot lives at the state key; the inputs committed after it in its journal; the
        # sequence number of the last commit at its head.
        self.journal_key = f"{self.state_key}:journal" if self.state_key else None
        self.head_key = f"{self.state_key}:seq" if self.state_key else None
        self._commit = client.register_script(_COMMIT)
        self._snapshot = client.register_script(_SNAPSHOT)

    def ping(self) -> bool:
        """True when Redis answers."""
        return bool(self.client.ping())

    def read_input(self) -> Reading:
        """Renew or take the lease when due, read the input and the head, in one round trip."""
        lease = self.lease
        keys = [self.settings.input_key, self.head_key or self.digest_key, self.digest_key]
        if lease is None or not lease.due():
            values = self.client.mget(keys)
            leader = lease is None or lease.leader
        else:
            try:
                reply, values = self._refresh_and_mget(lease, keys)
            except redis.exceptions.NoScriptError:  # Redis restarted: its script cache is empty
                lease.load(self.client)
                reply, values = self._refresh_and_mget(lease, keys)
            leader = lease.apply(reply)
        raw, seq, digest = values
        head = Head(_seq(seq) if self.head_key else 0, _text(digest))
        return Reading(leader, raw if isinstance(raw, bytes | None) else str(raw).encode(), head)

    def _refresh_and_mget(self, lease: Lease, keys: list[str]) -> list[Any]:
        pipe = self.client.pipeline(transaction=False)
        lease.queue_refresh(pipe)
        pipe.mget(keys)
        return list(pipe.execute())

    def read_head(self) -> Head:
        """The last commit's sequence number and input digest."""
        seq, digest = self.client.mget([self.head_key or self.digest_key, self.digest_key])
        return Head(_seq(seq) if self.head_key else 0, _text(digest))

    def read_journal(self, after: int) -> tuple[Head, list[Journaled]]:
        """The head and the journal's entries after sequence number `after`, read atomically."""
        if self.journal_key is None or self.head_key is None:
            return self.read_head(), []
        pipe = self.client.pipeline(transaction=True)
        pipe.mget([self.head_key, self.digest_key])
        pipe.xrange(self.journal_key, min=f"{after}-1")  # entry ids are `<seq>-0`
        (seq, digest), items = pipe.execute()
        return Head(_seq(seq), _text(digest)), _journaled(items)

    def read_committed(self) -> Committed:
        """The snapshot, the whole journal and the head, read atomically."""
        if self.journal_key is None or self.head_key is None or self.state_key is None:
            return Committed(self.read_head(), None, [])
        pipe = self.client.pipeline(transaction=True)
        pipe.mget([self.head_key, self.digest_key, self.state_key])
        pipe.xrange(self.journal_key)
        (seq, digest, snapshot), items = pipe.execute()
        snapshot_bytes = None if snapshot is None else bytes(snapshot)
        return Committed(Head(_seq(seq), _text(digest)), snapshot_bytes, _journaled(items))

    def commit(
        self,
        output_json: bytes | None,
        input_digest: str | None,
        entry_id: str | None = None,
        append: Append | None = None,
    ) -> Outcome:
        """Write the call's effects atomically, or nothing when fenced or stale."""
        settings = self.settings
        lease_value = self.lease.value if self.lease is not None else None
        # Scripts must declare every key they may touch; a disabled key's slot holds the output
        # key, which the script leaves alone because its ARGV flag is empty.
        out = settings.output_key
        keys = [
            out,
            settings.history_key or out,
            self.state_key or out,
            self.digest_key,
            self.lease.key if self.lease is not None else out,
            settings.input_key,
            self.journal_key or out,
            self.head_key or out,
        ]
        journaled = append is not None and self.journal_key is not None
        args: list[str | int | bytes] = [
            lease_value or "",
            output_json or "",
            settings.history_length if settings.history_key else 0,
            (append.snapshot or "") if append is not None and journaled else "",
            input_digest or "",
            self.lease.ttl_ms if self.lease is not None else 0,
            self.group,
            entry_id or "",
            append.expected_seq if append is not None and journaled else "",
            append.raw if append is not None and journaled else "",
            append.at if append is not None and journaled else "",
        ]
        outcome = Outcome(int(self._commit(keys=keys, args=args)))
        if self.lease is not None:
            if outcome is Outcome.COMMITTED:
                self.lease.renewed()
            elif outcome is Outcome.FENCED:
                self.lease.lost()
        return outcome

    def save_snapshot(self, seq: int, snapshot: bytes) -> bool:
        """Write a snapshot taken at commit `seq` if that is still the head; trim the journal."""
        if self.journal_key is None or self.head_key is None or self.state_key is None:
            return False
        keys = [self.head_key, self.state_key, self.journal_key]
        return bool(self._snapshot(keys=keys, args=[seq, snapshot]))

    def record_error(self, record: dict[str, Any]) -> None:
        """Keep the latest failure where operators and the dashboard look for it."""
        if self.settings.error_key:
            self.client.set(self.settings.error_key, json_codec.dumps(record))

    # -- stream mode ------------------------------------------------------------------------------

    def ensure_group(self) -> None:
        """Create the consumer group (and the stream) if missing; existing entries are processed."""
        try:
            self.client.xgroup_create(self.settings.input_key, self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def read_entries(self, pending: bool, block: float) -> list[Entry]:
        """This consumer's pending entries (after a restart), or new ones, waiting up to `block`."""
        reply: Any = self.client.xreadgroup(
            self.group,
            self.consumer,
            {self.settings.input_key: "0" if pending else ">"},
            count=1 if not pending else 100,
            block=None if pending else max(1, int(min(block, MAX_BLOCK) * 1000)),
        )
        return [entry for _stream, items in reply or [] for entry in _entries(items)]

    def claim_stale(self, idle: float) -> list[Entry]:
        """Take over entries another consumer read but did not acknowledge within `idle` seconds."""
        reply = self.client.xautoclaim(
            self.settings.input_key,
            self.group,
            self.consumer,
            min_idle_time=max(1, int(idle * 1000)),
            start_id="0-0",
            count=100,
        )
        return list(_entries(reply[1]))


def _entries(items: Any) -> list[Entry]:
    return [
        Entry(_text(entry_id) or "", None if fields is None else fields.get(STREAM_FIELD))
        for entry_id, fields in items
    ]


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def _journaled(items: Any) -> list[Journaled]:
    journal = []
    for entry_id, fields in items:
        seq = _seq((_text(entry_id) or "").partition("-")[0])
        fields = fields or {}
        at = fields.get(b"at")
        journal.append(Journaled(seq, fields.get(b"input"), _text(at)))
    return journal


def _seq(value: Any) -> int:
    """A sequence number as Redis holds it; 0 for none (nothing committed yet)."""
    text = _text(value)
    try:
        return int(text) if text else 0
    except ValueError:
        return 0
