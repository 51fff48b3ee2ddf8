"""All Redis I/O of the runtime (the key names come from serverless_runtime.storage.keys)."""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any, Concatenate, NamedTuple, ParamSpec, Protocol, TypeVar, cast

import redis
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.connection import AbstractConnection
from redis.exceptions import AskError, ClusterError, RedisClusterException, TryAgainError
from redis.retry import Retry
from redis.sentinel import Sentinel

from serverless_runtime.state import codec
from serverless_runtime.storage import cluster
from serverless_runtime.storage.keys import KeyLayout, epoch_key, journal_key, seq_key
from serverless_runtime.storage.lease import Lease
from serverless_runtime.storage.redis_settings import ConfigError, RedisConfig

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

# Every command gives up after this long; the loop backs off and tries again, so a frozen Redis
# costs seconds, not minutes (redis-py's own retries are off: they multiplied the wait).
SOCKET_TIMEOUT = 5.0
# Blocking reads wait at most this long, well below the socket timeout (redis-py #2807).
MAX_BLOCK = 1.0
STREAM_FIELD = b"data"
# How often Redis's clock is asked again for dating error records (clocks drift slowly).
CLOCK_CHECK_SECONDS = 60.0
CLUSTER_EXPECTED = (
    "a single Redis server or a Sentinel-managed master (REDIS_SENTINELS), not a Redis Cluster "
    "node (cluster_enabled:1): set REDIS_CLUSTER_NODES for a Redis Cluster"
)

# Each script's slots are one NamedTuple's fields, in order, the KEYS first (each named `*_key`):
# `_script` binds them to those names at the script's top (`local name = KEYS[n]` / `ARGV[n]`),
# and the Python side fills the same record, so the two lists cannot drift apart.


def _script(record: type[tuple[Any, ...]], body: str) -> str:
    """The script with its slots bound to the record's field names at its top, KEYS first."""
    fields: tuple[str, ...] = record._fields  # type: ignore[attr-defined]
    keys = [name for name in fields if name.endswith("_key")]
    lines = [f"local {name} = KEYS[{i}]" for i, name in enumerate(keys, 1)]
    lines += [f"local {name} = ARGV[{i}]" for i, name in enumerate(fields[len(keys) :], 1)]
    return "\n".join(lines) + "\n" + body


class _Read(NamedTuple):
    input_key: str
    head_key: str
    digest_key: str
    in_flight_key: str
    lease_key: str
    epoch_key: str
    max_input_bytes: int
    sha: str  # of the input, read before ('': the script reads the input and computes it)
    owner: str
    holder: str
    max_deaths: int
    interval_mode: str


class _ReadInput(NamedTuple):
    input_key: str
    max_input_bytes: int


# The input: its type, and its value unless it is over the size limit (then its size).
_INPUT_PART = """
local kind = redis.call('TYPE', input_key)['ok']
local value = false
if kind == 'string' then
  local size = redis.call('STRLEN', input_key)
  value = size
  if size <= tonumber(max_input_bytes) then value = redis.call('GET', input_key) end
end
"""
# The input and the head in one script, one round trip; and in key mode, when this process leads
# (the lease, renewed just before in the same pipeline, names its holder), the in-flight mark of
# the input read (`sha`, '' for none), set in the same step, before any call. The mark (`sha`,
# `owner`, `deaths`) counts the processes that marked the input and ended before their call did
# (a segfault, the OOM killer, `os._exit`); a mark this process left is no death; an owner ''
# means the call ended (committed or failed). `deaths` is -1 when not marked; at MAX_DEATHS the
# input is not marked, and the caller records it as poison.
_READ = _script(
    _Read,
    _INPUT_PART
    + """
if sha == '' and type(value) == 'string' then
  -- (fakeredis, the unit tests' Redis, has no sha1hex: there the input stands for itself)
  sha = redis.sha1hex and redis.sha1hex(value) or value
end
local deaths = -1
local leads = holder == '' or string.sub(redis.call('GET', lease_key) or '', 1, #holder) == holder
if sha ~= '' and owner ~= '' and leads then
  local mark = redis.call('HMGET', in_flight_key, 'sha', 'owner', 'deaths')
  deaths = 0
  if mark[1] == sha and mark[2] == '' and interval_mode == '' then
    deaths = -1  -- its call ended already: called again only if not committed (then marked)
  elseif mark[1] == sha and mark[2] ~= '' then
    deaths = tonumber(mark[3]) or 0
    if mark[2] ~= owner then deaths = deaths + 1 end
  end
  if deaths >= 0 and deaths < tonumber(max_deaths) and (mark[2] ~= owner or mark[1] ~= sha) then
    redis.call('HSET', in_flight_key, 'sha', sha, 'owner', owner, 'deaths', deaths)
  end
end
local head, digest, epoch = redis.call('GET', head_key), redis.call('GET', digest_key), false
if epoch_key ~= digest_key then epoch = redis.call('GET', epoch_key) end
return {kind, value, head, digest, deaths, epoch}
""",
)
# A Redis Cluster: the input may live on another master than the output's keys, so it is read on
# its own; then _READ runs on the output's master with the sha the client computed of exactly
# that value, and a limit of -1 bytes: it reads no input there, whichever key its slot holds.
_READ_INPUT = _script(_ReadInput, _INPUT_PART + "return {kind, value}\n")

# The scripts' check of a key's type before their first write: the reason, or false.
_WRONG_TYPE = """
local function wrong(key, want)
  local kind = redis.call('TYPE', key)['ok']
  if kind ~= 'none' and kind ~= want then
    return 'key ' .. key .. ' holds a ' .. kind .. ', not a ' .. want
  end
  return false
end
"""


class _Commit(NamedTuple):
    output_key: str
    history_key: str
    state_key: str
    digest_key: str
    lease_key: str
    input_key: str
    journal_key: str
    head_key: str
    in_flight_key: str
    epoch_key: str
    lease_value: str  # '': no lease to check
    output: bytes | str  # '': no output
    history_length: int  # 0: no history
    snapshot: bytes | str  # '': a journal entry instead
    digest: str  # '': no input digest
    lease_ttl_ms: int
    group: str
    entry_id: str  # '': key mode
    expected_seq: int | str  # '': no journal (no state key)
    journal_input: bytes | str  # the input journaled ('' with a snapshot)
    at: str
    owner: str  # '': no in-flight mark to end
    new_epoch: str  # '': no epoch key
    consumer: str


# One atomic step: check the fencing token and that the state it builds on is the last committed
# one, then append the input to the state journal (with a snapshot when one is due, trimming the
# journal behind it), and write output, history entry, input digest and the stream acknowledgement.
# Redis runs a script as a transaction, like MULTI/EXEC, and the checks inside it need no extra
# round trip (WATCH would add two). A script is not rolled back when a command in it fails, so
# every key is checked for its type before the first write, and the writes that can still fail
# come first. Returns 1 when written, 0 when fenced, -1 when stale, 2 when claimed, or the reason
# nothing was written. A disabled key's slot holds the output key, which the script leaves alone
# because the argument that would use it is empty.
_COMMIT = _script(
    _Commit,
    _WRONG_TYPE
    + """
local bad = false
if output ~= '' then
  bad = bad or wrong(output_key, 'string')
  if history_length ~= '0' then bad = bad or wrong(history_key, 'stream') end
end
if expected_seq ~= '' then
  bad = bad or wrong(journal_key, 'stream') or wrong(head_key, 'string')
  if snapshot ~= '' then bad = bad or wrong(state_key, 'string') end
end
if digest ~= '' then bad = bad or wrong(digest_key, 'string') end
if entry_id ~= '' then bad = bad or wrong(input_key, 'stream') end
if lease_value ~= '' then bad = bad or wrong(lease_key, 'string') end
if owner ~= '' then bad = bad or wrong(in_flight_key, 'hash') end
if new_epoch ~= '' then bad = bad or wrong(epoch_key, 'string') end
if bad then return bad end
if lease_value ~= '' then
  if redis.call('GET', lease_key) ~= lease_value then return 0 end
end
-- Stream mode: the entry must still be pending for this consumer; another one claimed it when
-- this one paused past STREAM_CLAIM_IDLE, and its commit is the one that counts (a group
-- deleted meanwhile claims nothing).
if entry_id ~= '' then
  local mine = redis.pcall('XPENDING', input_key, group, entry_id, entry_id, 1, consumer)
  if type(mine) == 'table' and not mine.err and #mine == 0 then return 2 end
end
-- The two appends are the writes that can fail on a key of the right type (a stream at its last
-- possible id, a journal ahead of its head, OOM): they come first, each undone if the other fails,
-- so that a refused commit leaves nothing behind.
local function failed(reply, what)
  if type(reply) ~= 'table' or not reply.err then return false end
  for _, final in ipairs({'equal or smaller', 'exhausted'}) do
    if string.find(reply.err, final, 1, true) then return what .. ': ' .. reply.err end
  end
  return redis.error_reply(reply.err)  -- OOM and the like: worth trying again later
end
local seq = false
if expected_seq ~= '' then
  local head = tonumber(redis.call('GET', head_key) or '')
  seq = tonumber(expected_seq)
  -- No head while the state builds on commit N > 0: Redis lost them (a reset); stale, so that
  -- the replica finds out and writes its state back before committing on top of nothing.
  if (head or 0) ~= seq then return -1 end
  seq = seq + 1
end
local history_id, history_new = false, false
if output ~= '' and history_length ~= '0' then
  history_new = redis.call('EXISTS', history_key) == 0
  local added = redis.pcall('XADD', history_key, '*', 'output', output)
  local why = failed(added, 'history ' .. history_key .. ' takes no new entry')
  if why then return why end
  history_id = added
end
if seq then
  if snapshot == '' then
    local added = redis.pcall('XADD', journal_key, seq .. '-0', 'input', journal_input, 'at', at)
    local why = failed(added, 'journal ' .. journal_key .. ' is ahead of ' .. head_key)
    if why then
      if history_new then redis.call('DEL', history_key)
      elseif history_id then redis.call('XDEL', history_key, history_id) end
      return why
    end
  else  -- the snapshot covers this commit: the journal keeps only what comes after it
    redis.call('SET', state_key, snapshot)
    redis.call('XTRIM', journal_key, 'MINID', (seq + 1) .. '-0')
  end
  redis.call('SET', head_key, seq)
  -- The history's identity, made with its first commit (or the first after an older runtime's).
  if new_epoch ~= '' and redis.call('EXISTS', epoch_key) == 0 then
    redis.call('SET', epoch_key, new_epoch)
  end
end
-- Nothing below can fail: every key was checked for its type.
if lease_value ~= '' then redis.call('PEXPIRE', lease_key, lease_ttl_ms) end
if output ~= '' then
  redis.call('SET', output_key, output)
  if history_id then redis.call('XTRIM', history_key, 'MAXLEN', '~', history_length) end
end
if digest ~= '' then redis.call('SET', digest_key, digest) end
-- The call ended: its input is no longer in flight (unless another process marked it since).
if owner ~= '' and redis.call('HGET', in_flight_key, 'owner') == owner then
  redis.call('HSET', in_flight_key, 'owner', '', 'deaths', 0)
end
-- A group deleted meanwhile has nothing left to acknowledge: that is not a failed commit.
if entry_id ~= '' then redis.pcall('XACK', input_key, group, entry_id) end
return 1
""",
)


class _WriteBack(NamedTuple):
    head_key: str
    epoch_key: str
    state_key: str
    journal_key: str
    digest_key: str
    seen_head: str
    seen_epoch: str
    seq: int
    new_epoch: str
    snapshot: bytes
    digest: str


# A replica whose state is newer than what Redis holds (Redis lost it, or holds an older history)
# writes it back: a snapshot of its state at its own commit number, with a new epoch, if Redis
# still holds what the replica saw (head and epoch; '' for none). The other history's journal
# goes: it does not apply to this snapshot.
_WRITE_BACK = _script(
    _WriteBack,
    _WRONG_TYPE
    + """
local bad = wrong(head_key, 'string') or wrong(epoch_key, 'string') or wrong(state_key, 'string')
  or wrong(journal_key, 'stream') or wrong(digest_key, 'string')
if bad then return bad end
if (redis.call('GET', head_key) or '') ~= seen_head then return 0 end
if (redis.call('GET', epoch_key) or '') ~= seen_epoch then return 0 end
redis.call('SET', state_key, snapshot)
redis.call('DEL', journal_key)
redis.call('SET', head_key, seq)
redis.call('SET', epoch_key, new_epoch)
if digest ~= '' then redis.call('SET', digest_key, digest) end
return 1
""",
)


class _End(NamedTuple):
    in_flight_key: str
    owner: str
    done: str


# This process's in-flight mark: the call ended without ending the process (`done` '1': the
# input is done with, its mark says so), or a refused commit leaves the input to judge again
# (`done` '': the mark goes, so that the next read marks it again).
_END = _script(
    _End,
    """
if redis.call('HGET', in_flight_key, 'owner') ~= owner then return 0 end
if done == '1' then return redis.call('HSET', in_flight_key, 'owner', '', 'deaths', 0) end
return redis.call('DEL', in_flight_key)
""",
)


class _KeepClaim(NamedTuple):
    input_key: str
    group: str
    entry_id: str
    consumer: str


# A long call keeps its entry: idle again, without a new delivery, if still this consumer's.
_KEEP_CLAIM = _script(
    _KeepClaim,
    """
local mine = redis.call('XPENDING', input_key, group, entry_id, entry_id, 1, consumer)
if #mine == 0 then return 0 end
redis.call('XCLAIM', input_key, group, consumer, 0, entry_id, 'JUSTID')
return 1
""",
)


class _DeadLetter(NamedTuple):
    input_key: str
    dead_key: str
    group: str
    entry_id: str
    data: bytes
    deliveries: int
    consumer: str


# Move a stream entry that keeps failing to the dead-letter stream and acknowledge it, together.
_DEAD_LETTER = _script(
    _DeadLetter,
    """
redis.call('XADD', dead_key, '*', 'entry', entry_id, 'data', data, 'deliveries', deliveries,
  'consumer', consumer)
redis.call('XACK', input_key, group, entry_id)
return 1
""",
)


class _Snapshot(NamedTuple):
    head_key: str
    state_key: str
    journal_key: str
    seq: int
    snapshot: bytes


# A snapshot taken outside a call (at shutdown) counts only if no commit came after it.
_SNAPSHOT = _script(
    _Snapshot,
    """
if (redis.call('GET', head_key) or '0') ~= seq then return 0 end
redis.call('SET', state_key, snapshot)
redis.call('XTRIM', journal_key, 'MINID', (tonumber(seq) + 1) .. '-0')
return 1
""",
)

# Every script with the record that fills its slots (a test checks that they agree).
SCRIPTS: dict[str, tuple[str, type[tuple[Any, ...]]]] = {
    "read": (_READ, _Read),
    "read_input": (_READ_INPUT, _ReadInput),
    "commit": (_COMMIT, _Commit),
    "write_back": (_WRITE_BACK, _WriteBack),
    "end": (_END, _End),
    "keep_claim": (_KEEP_CLAIM, _KeepClaim),
    "dead_letter": (_DEAD_LETTER, _DeadLetter),
    "snapshot": (_SNAPSHOT, _Snapshot),
}
# How many of a record's fields are KEYS.
_NUMKEYS = {
    record: sum(name.endswith("_key") for name in record._fields)  # type: ignore[attr-defined]
    for _source, record in SCRIPTS.values()
}


def connect(config: RedisConfig, timeout: float = SOCKET_TIMEOUT, retries: int = 0) -> redis.Redis:
    """A client from REDIS_CLUSTER_NODES, REDIS_SENTINELS, REDIS_URL or host/port, with
    REDIS_PASSWORD applied.

    Every new connection first checks that Redis is not a cluster node (see `refuse_cluster`),
    unless REDIS_CLUSTER_NODES says it is one: then a cluster client (which connects at once,
    ConnectionError when no node answers), typed as the single-server client whose commands
    it offers; the store tells them apart where they differ (`Store.cluster`).
    """
    if config.cluster_nodes is not None:
        made = cluster.connect(
            config.cluster_nodes, config.password, tls=config.tls, timeout=timeout, retries=retries
        )
        return cast(redis.Redis, made)
    options: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": min(timeout, 3.0),
        "health_check_interval": 30,
        "retry": Retry(NoBackoff(), retries),
        "redis_connect_func": lambda connection: refuse_cluster(connection, config),
    }
    if config.password is not None:
        options["password"] = config.password
    if config.sentinels is not None:
        # The sentinels are asked for the master at every new connection, so a client follows a
        # failover by itself; they get the same timeouts and retries (none hidden: redis-py's
        # default would retry a dead sentinel for seconds before the loop's backoff sees it),
        # and their own password.
        shared = ("socket_timeout", "socket_connect_timeout", "retry")
        sentinel_options = {name: options[name] for name in shared}
        if config.sentinels.password is not None:
            sentinel_options["password"] = config.sentinels.password
        addresses = list(config.sentinels.addresses)
        sentinel = Sentinel(addresses, sentinel_kwargs=sentinel_options)  # type: ignore[no-untyped-call]
        master: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
            config.sentinels.master, **options
        )
        return master
    if config.url:
        return redis.Redis.from_url(config.url, **options)
    return redis.Redis(host=config.host, port=config.port, **options)


def refuse_cluster(connection: AbstractConnection, config: RedisConfig) -> None:
    """Set up a new connection; stop the runtime (ConfigError, exit 2) on a Redis Cluster node.

    A commit writes several keys in one script, which a cluster refuses unless they share a hash
    slot; a cluster is not a passing fault, so the process stops instead of retrying forever.
    """
    connection.on_connect()  # type: ignore[no-untyped-call]
    connection.send_command("INFO", "cluster")  # type: ignore[no-untyped-call]
    try:
        info = connection.read_response()
    except redis.ResponseError:  # INFO renamed or not allowed: not a cluster node we could tell
        return
    text = info.decode(errors="replace") if isinstance(info, bytes) else str(info)
    if "cluster_enabled:1" in text.split():
        name, shown = config.location
        raise ConfigError(name, shown, CLUSTER_EXPECTED)


class CommitRefused(redis.RedisError):
    """Redis holds a key of the wrong type (or a damaged journal): nothing was written."""


class Outcome(IntEnum):
    """What the commit script did."""

    STALE = -1  # another commit came first: the state the call built on is out of date
    FENCED = 0  # the lease was lost: nothing written
    COMMITTED = 1
    CLAIMED = 2  # stream mode: another consumer claimed the entry; nothing written


class Head(NamedTuple):
    """The last commit as Redis holds it: its sequence number, the digest of its input, and the
    epoch of its history (None when Redis holds none: nothing committed, or an older runtime's)."""

    seq: int
    digest: str | None
    epoch: str | None = None


class Reading(NamedTuple):
    """One read of the input, with the last commit; `leader` False means another replica leads.

    `unusable` says why an existing input was not read (wrong type, too large).
    """

    leader: bool
    raw: bytes | None
    head: Head
    unusable: str | None = None


class Journaled(NamedTuple):
    """One committed input, kept until a snapshot covers it."""

    seq: int
    raw: bytes | None
    at: str | None


class Committed(NamedTuple):
    """Everything needed to rebuild the state: the snapshot and the journal after it."""

    head: Head
    snapshot: bytes | None
    journal: list[Journaled]


class Append(NamedTuple):
    """The journal part of a commit: the input, and the snapshot when one is due."""

    expected_seq: int
    raw: bytes
    at: str
    snapshot: bytes | None


class Entry(NamedTuple):
    """One stream entry to process."""

    entry_id: str
    raw: bytes | None


def _moving(method: Callable[Concatenate[Store, P], R]) -> Callable[Concatenate[Store, P], R]:
    """A Redis Cluster's passing faults as Redis being away, for the loop's backoff.

    A master that failed (a lost connection), a slot that moved (MOVED, ASK, TRYAGAIN on the
    output master's own connection), a cluster without a master for a slot (CLUSTERDOWN, a slot
    not covered): the client asks the cluster where the slots are again, and the loop retries.
    """

    def guarded(store: Store, /, *args: P.args, **kwargs: P.kwargs) -> R:
        if store.cluster is None:
            return method(store, *args, **kwargs)
        try:
            return method(store, *args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError):
            store.rediscover()
            raise
        except (ClusterError, RedisClusterException, AskError, TryAgainError) as exc:
            # (AskError covers MovedError; ClusterError covers CLUSTERDOWN.)
            store.rediscover()
            raise redis.ConnectionError(f"Redis Cluster: {type(exc).__name__}: {exc}") from exc

    return guarded


class StoreSettings(Protocol):
    """What the store reads of the runtime's settings (config.Settings holds all of it)."""

    @property
    def keys(self) -> KeyLayout: ...
    @property
    def stream_mode(self) -> bool: ...
    @property
    def stream_group(self) -> str: ...
    @property
    def invoke_on(self) -> str: ...
    @property
    def max_input_bytes(self) -> int: ...
    @property
    def max_deaths(self) -> int: ...
    @property
    def history_length(self) -> int: ...
    @property
    def commit_replicas(self) -> int: ...
    @property
    def commit_replicas_timeout(self) -> float: ...


class Store:
    """Reads the input and the committed state, commits results atomically, records failures.

    In a Redis Cluster every key but a key-mode input shares the output key's hash slot (see
    config.cluster_layout): the store sends those commands to that slot's master directly (`out`)
    and reads the input through the cluster client, which finds its master.
    """

    def __init__(
        self, client: redis.Redis, settings: StoreSettings, lease: Lease | None, consumer: str
    ) -> None:
        self.client = client
        made: object = client  # `connect` types the cluster client it makes as a single server's
        self.cluster = made if isinstance(made, RedisCluster) else None
        self.settings = settings
        self.lease = lease
        self.consumer = consumer
        self.group = settings.stream_group
        keys = settings.keys
        # In stream mode each replica keeps its own state: they share the entries, not the window.
        self.state_key = keys.state_for(consumer if settings.stream_mode else None)
        self.digest_key = keys.input_digest
        # The snapshot lives at the state key; the inputs committed after it in its journal; the
        # sequence number of the last commit at its head.
        self.journal_key = journal_key(self.state_key) if self.state_key else None
        self.head_key = seq_key(self.state_key) if self.state_key else None
        self.epoch_key = epoch_key(self.state_key) if self.state_key else None
        # The epoch this process gives a history it starts (the first commit, or a write-back).
        self.new_epoch = secrets.token_hex(8)
        self._scripts_of = {record: client.register_script(src) for src, record in SCRIPTS.values()}
        self.under_replicated = 0  # commits in a row that fewer than COMMIT_REPLICAS acknowledged
        self.dead_key = keys.dead
        self.poison_key = keys.poison
        # Redis's clock minus this one's, for dating error records (see record_error).
        self._offset = 0.0
        self._offset_asked: float | None = None
        # Key mode's in-flight mark names this process: a mark another process left behind is
        # a death, one this process left (a refused commit) is not.
        self.in_flight_key = keys.in_flight
        self.owner = f"{consumer}:{os.getpid()}:{secrets.token_hex(4)}"
        self._in_flight = False
        self.in_flight_deaths = -1  # what the last read found (-1: not marked)
        self._scripts_loaded = False  # by the first read (see _refresh_and_read)
        read = _Read(
            input_key=settings.keys.input,
            head_key=self.head_key or self.digest_key,
            digest_key=self.digest_key,
            in_flight_key=self.in_flight_key,
            lease_key=lease.key if lease is not None else self.in_flight_key,
            epoch_key=self.epoch_key or self.digest_key,
            max_input_bytes=settings.max_input_bytes,
            sha="",
            owner="" if settings.stream_mode else self.owner,
            holder=f"{lease.holder}:" if lease is not None else "",
            max_deaths=settings.max_deaths,
            interval_mode="1" if settings.invoke_on == "interval" else "",
        )
        # The read's EVALSHA never changes, nor do the commit's keys: built once, sent directly
        # (a Script object's call costs a few microseconds more, at every call).
        self._read_call = self._call(read)
        # A Redis Cluster's read, in two parts (see _READ_INPUT).
        self._read_input_call = self._call(_ReadInput(read.input_key, read.max_input_bytes))
        self._mark = read._replace(input_key=self.in_flight_key, max_input_bytes=-1)
        self._head_keys = [read.head_key, read.digest_key, read.epoch_key]  # as `_head` reads them
        out = settings.keys.output
        self._commit_keys: dict[str, str] = {
            "output_key": out,
            "history_key": settings.keys.history or out,
            "state_key": self.state_key or out,
            "digest_key": self.digest_key,
            "lease_key": lease.key if lease is not None else out,
            # Key mode leaves it alone (no entry to acknowledge): in a Redis Cluster the input
            # may live in another hash slot, which a script may not name.
            "input_key": settings.keys.input if settings.stream_mode else out,
            "journal_key": self.journal_key or out,
            "head_key": self.head_key or out,
            "in_flight_key": self.in_flight_key,
            "epoch_key": self.epoch_key or out,
        }

    @property
    def out(self) -> redis.Redis:
        """The client for the output key's hash slot: in a Redis Cluster, its master's own
        connection (pipelines, MULTI and WAIT as on a single server), else the client."""
        if self.cluster is None:
            return self.client
        node = self.cluster.get_node_from_key(self.settings.keys.output)  # type: ignore[no-untyped-call]
        if node is None or node.redis_connection is None:
            raise redis.ConnectionError(f"no master known for {self.settings.keys.output!r}")
        connection: redis.Redis = node.redis_connection
        return connection

    def rediscover(self) -> None:
        """Ask the cluster where its slots are (after a failover or a slot's move)."""
        if self.cluster is None:
            return
        try:
            self.cluster.nodes_manager.initialize()
        except (redis.RedisError, RedisClusterException) as exc:  # tried again at the next fault
            log.info("Redis Cluster topology unavailable (%s)", exc)

    def eviction_policy(self) -> str | None:
        """Redis's `maxmemory-policy` when it may evict keys without a TTL (the state's keys,
        one by one, under memory pressure), else None; None too when CONFIG is not allowed.
        In a Redis Cluster, every master is asked (one that does not answer is skipped)."""
        servers = [self.client]
        if self.cluster is not None:
            primaries = self.cluster.get_primaries()  # type: ignore[no-untyped-call]
            servers = [node.redis_connection for node in primaries]
        for server in servers:
            try:
                reply = server.config_get("maxmemory-policy")
            except redis.ResponseError:  # CONFIG renamed or denied (a managed Redis): not known
                continue
            except (redis.ConnectionError, redis.TimeoutError):
                if self.cluster is None:
                    raise
                continue
            policy = next((_text(value) for value in reply.values()), None)
            if policy is not None and policy.startswith("allkeys-"):
                return policy
        return None

    @_moving
    def read_input(self) -> Reading:
        """Renew or take the lease when due, read the input and the head, in one round trip
        (two in a Redis Cluster: see `_read_split`)."""
        try:
            leader, values = self._read_input()
        except redis.ResponseError as exc:
            if "WRONGTYPE" not in str(exc):
                raise
            raise self._wrong_type() or exc from exc
        kind, value, seq, digest, deaths, epoch = values
        self.in_flight_deaths = int(deaths)
        self._in_flight = 0 <= self.in_flight_deaths < self.settings.max_deaths
        head, kind = self._head(seq, digest, epoch), _text(kind) or "none"
        if kind != "string":
            return Reading(leader, None, head, None if kind == "none" else f"holds a {kind}")
        if isinstance(value, int):
            limit = self.settings.max_input_bytes
            return Reading(leader, None, head, f"is {value} bytes, over MAX_INPUT_BYTES={limit}")
        return Reading(leader, value if isinstance(value, bytes) else str(value).encode(), head)

    def _read_input(self) -> tuple[bool, list[Any]]:
        lease = self.lease
        due = lease is not None and lease.due()
        read = self._read_split if self.cluster is not None else self._refresh_and_read
        try:
            if self._scripts_loaded and not due and self.cluster is None:
                values = self.client.evalsha(*self._read_call)
                return lease is None or lease.leader, values
            reply, values = read(due)
        except redis.exceptions.NoScriptError:  # a restart (or, in a cluster, a promoted replica)
            self._scripts_loaded = False
            reply, values = read(due)
        if lease is None:
            return True, values
        return (lease.apply(reply) if due else lease.leader), values

    def _refresh_and_read(self, due: bool) -> tuple[Any, Any]:
        """The read, after the lease's refresh when `due`, in one pipeline; the first one (and
        the first after Redis lost its script cache) loads every script on the way, so that no
        later call finds one missing (EVALSHA, NOSCRIPT, SCRIPT LOAD and again: 3 round trips)."""
        pipe = self.client.pipeline(transaction=False)
        loading = [] if self._scripts_loaded else self._scripts()
        for source in loading:
            pipe.script_load(source)
        if due:
            assert self.lease is not None
            self.lease.queue_refresh(pipe)
        # EVALSHA directly: a Script object in a pipeline costs a SCRIPT EXISTS round trip.
        pipe.evalsha(*self._read_call)
        replies = pipe.execute()[len(loading) :]
        self._scripts_loaded = True
        return (replies[0] if due else None), replies[-1]

    def _read_split(self, due: bool) -> tuple[Any, list[Any]]:
        """A Redis Cluster's read: the input from its master, then the head and the in-flight
        mark (after the lease's refresh when `due`) in one pipeline on the output's master."""
        if not self._scripts_loaded:  # on the output's master, which runs all but the first
            pipe = self.out.pipeline(transaction=False)
            for source in self._scripts():
                pipe.script_load(source)
            pipe.execute()
            self._scripts_loaded = True
        try:
            kind, value = self.client.evalsha(*self._read_input_call)
        except redis.exceptions.NoScriptError:
            # The input's master has not run it yet (a new one, or one importing its slot):
            # EVAL runs it from its source and leaves it in that master's script cache.
            kind, value = self.client.eval(_READ_INPUT, *self._read_input_call[1:])
        sha = hashlib.sha1(value).hexdigest() if isinstance(value, bytes) else ""  # noqa: S324
        pipe = self.out.pipeline(transaction=False)
        if due:
            assert self.lease is not None
            self.lease.queue_refresh(pipe)
        pipe.evalsha(*self._call(self._mark._replace(sha=sha)))
        replies = pipe.execute()
        return (replies[0] if due else None), [kind, value, *replies[-1][2:]]

    def _scripts(self) -> list[str]:
        """The sources of the scripts this store runs, its lease's included."""
        sources = [source for source, _record in SCRIPTS.values()]
        return sources + list(self.lease.SCRIPTS) if self.lease is not None else sources

    def _wrong_type(self) -> redis.ResponseError | None:
        """Which key the read found of the wrong type (asked only once a read failed so)."""
        want = {key: "string" for key in (self.head_key, self.digest_key, self.epoch_key) if key}
        want[self.in_flight_key] = "hash"
        if self.lease is not None:
            want.update({self.lease.key: "string", self.lease.token_key: "string"})
        pipe = self.out.pipeline(transaction=False)
        for key in want:
            pipe.type(key)
        for (key, kind), found in zip(want.items(), pipe.execute(), strict=True):
            held = _text(found) or "none"
            if held not in ("none", kind):
                return redis.ResponseError(
                    f"WRONGTYPE: key {key} holds a {held}, not a {kind}: the input was not read"
                )
        return None

    @_moving
    def read_head(self) -> Head:
        """The last commit's sequence number and input digest."""
        return self._head(*self.out.mget(self._head_keys))

    def _head(self, seq: Any, digest: Any, epoch: Any) -> Head:
        """The head from its keys' values (without a head key, their slots held the digest)."""
        if self.head_key is None:
            return Head(0, _text(digest))
        return Head(_seq(seq), _text(digest), _text(epoch) or None)

    @_moving
    def read_journal(self, after: int) -> tuple[Head, list[Journaled]]:
        """The head and the journal's entries after sequence number `after`, read atomically."""
        if self.journal_key is None or self.head_key is None:
            return self.read_head(), []
        pipe = self.out.pipeline(transaction=True)
        pipe.mget(self._head_keys)
        pipe.xrange(self.journal_key, min=f"{after}-1")  # entry ids are `<seq>-0`
        head, items = pipe.execute()
        return self._head(*head), _journaled(items)

    @_moving
    def read_committed(self) -> Committed:
        """The snapshot, the whole journal and the head, read atomically."""
        if self.journal_key is None or self.head_key is None or self.state_key is None:
            return Committed(self.read_head(), None, [])
        pipe = self.out.pipeline(transaction=True)
        pipe.mget([*self._head_keys, self.state_key])
        pipe.xrange(self.journal_key)
        (seq, digest, epoch, snapshot), items = pipe.execute()
        snapshot_bytes = None if snapshot is None else bytes(snapshot)
        return Committed(self._head(seq, digest, epoch), snapshot_bytes, _journaled(items))

    @_moving
    def commit(
        self,
        output_json: bytes | None,
        input_digest: str | None,
        entry_id: str | None = None,
        append: Append | None = None,
    ) -> Outcome:
        """Write the call's effects atomically, or nothing when fenced or stale."""
        settings, lease = self.settings, self.lease
        # Scripts must declare every key they may touch; a disabled key's slot holds the output
        # key, which the script leaves alone because the argument that would use it is empty.
        journal = append if self.journal_key is not None else None
        slots = _Commit(
            **self._commit_keys,
            lease_value=(lease.value or "") if lease is not None else "",
            output=output_json or "",
            history_length=settings.history_length if settings.keys.history else 0,
            snapshot=(journal.snapshot or "") if journal is not None else "",
            digest=input_digest or "",
            lease_ttl_ms=lease.ttl_ms if lease is not None else 0,
            group=self.group,
            entry_id=entry_id or "",
            expected_seq=journal.expected_seq if journal is not None else "",
            journal_input=journal.raw if journal is not None and not journal.snapshot else "",
            at=journal.at if journal is not None else "",
            owner=self.owner if self._in_flight else "",
            new_epoch=self.new_epoch if journal is not None and self.epoch_key else "",
            consumer=self.consumer,
        )
        if settings.commit_replicas:
            reply, acknowledged = self._commit_and_wait(slots)
        else:
            reply, acknowledged = self._evalsha(slots), None
        if isinstance(reply, bytes | str):
            raise CommitRefused(f"{_text(reply)}: nothing was committed")
        outcome = Outcome(int(reply))
        if outcome is Outcome.COMMITTED:
            self._in_flight = False
            if acknowledged is not None:
                self._replicated(acknowledged)
        if lease is not None:
            if outcome is Outcome.COMMITTED:
                lease.renewed()
            elif outcome is Outcome.FENCED:
                lease.lost()
        return outcome

    def _call(self, slots: tuple[Any, ...]) -> tuple[Any, ...]:
        """EVALSHA's arguments for the script whose record `slots` is."""
        return (self._scripts_of[type(slots)].sha, _NUMKEYS[type(slots)], *slots)

    def _evalsha(self, slots: tuple[Any, ...]) -> Any:
        """Run the script of `slots` (loaded by the first read), loading it again if Redis
        lost it."""
        try:
            return self.out.evalsha(*self._call(slots))
        except redis.exceptions.NoScriptError:  # Redis restarted: its script cache is empty
            self._scripts_loaded = False
            self.out.script_load(self._scripts_of[type(slots)].script)
            return self.out.evalsha(*self._call(slots))

    def _commit_and_wait(self, slots: _Commit, again: bool = True) -> tuple[Any, int]:
        """The commit script and `WAIT COMMIT_REPLICAS timeout`, pipelined: one round trip."""
        timeout_ms = max(1, int(self.settings.commit_replicas_timeout * 1000))
        pipe = self.out.pipeline(transaction=False)  # in a Redis Cluster, the WAIT goes with it
        pipe.evalsha(*self._call(slots)).wait(self.settings.commit_replicas, timeout_ms)
        try:
            reply, acknowledged = pipe.execute()
        except redis.exceptions.NoScriptError:  # Redis restarted: its script cache is empty
            if not again:
                raise
            self.out.script_load(_COMMIT)
            return self._commit_and_wait(slots, again=False)
        return reply, int(acknowledged)

    def _replicated(self, acknowledged: int) -> None:
        """Fewer replicas than COMMIT_REPLICAS hold the commit: it stands (it is applied and
        visible on the master); said once until enough replicas acknowledge again."""
        wanted = self.settings.commit_replicas
        if acknowledged >= wanted:
            if self.under_replicated:
                log.info("commits reach COMMIT_REPLICAS=%d replicas again", wanted)
            self.under_replicated = 0
            return
        if not self.under_replicated:
            log.warning(
                "a commit reached %d of COMMIT_REPLICAS=%d replicas within %g s: it stands on the "
                "master, and a failover now could lose it (said once until they catch up)",
                acknowledged,
                wanted,
                self.settings.commit_replicas_timeout,
            )
        self.under_replicated += 1

    @_moving
    def save_snapshot(self, seq: int, snapshot: bytes) -> bool:
        """Write a snapshot taken at commit `seq` if that is still the head; trim the journal."""
        if self.journal_key is None or self.head_key is None or self.state_key is None:
            return False
        slots = _Snapshot(self.head_key, self.state_key, self.journal_key, seq, snapshot)
        return bool(self._evalsha(slots))

    @_moving
    def write_back(self, seen: Head, seq: int, snapshot: bytes, digest: str | None) -> str | None:
        """Write this replica's state back as commit `seq` of a new epoch if Redis still holds
        `seen`; the new epoch, or None when Redis changed meanwhile."""
        if self.head_key is None or self.epoch_key is None or self.state_key is None:
            return None
        assert self.journal_key is not None
        epoch = secrets.token_hex(8)
        slots = _WriteBack(
            head_key=self.head_key,
            epoch_key=self.epoch_key,
            state_key=self.state_key,
            journal_key=self.journal_key,
            digest_key=self.digest_key,
            seen_head=str(seen.seq) if seen.seq else "",
            seen_epoch=seen.epoch or "",
            seq=seq,
            new_epoch=epoch,
            snapshot=snapshot,
            digest=digest or "",
        )
        reply = self._evalsha(slots)
        if isinstance(reply, bytes | str):
            raise CommitRefused(f"{_text(reply)}: the state was not written back")
        return epoch if int(reply) == 1 else None

    @_moving
    def record_error(self, record: dict[str, Any]) -> None:
        """Keep the latest failure where operators and the dashboard look for it.

        Dated no later than Redis's clock, which also dates the history's entries: a machine
        whose clock runs ahead must not make the record look newer than the outputs after it.
        """
        if not self.settings.keys.error:
            return
        now = time.time()
        redis_now = datetime.fromtimestamp(now + self._clock_offset(), UTC)
        try:
            at = min(datetime.fromisoformat(record["at"]), redis_now)
        except (KeyError, TypeError, ValueError):  # no time, or one without its offset
            at = redis_now
        record = {**record, "at": at.isoformat()}
        self.out.set(self.settings.keys.error, codec.dumps(record))

    def _clock_offset(self) -> float:
        """Redis's clock minus this machine's, asked at most once a minute (0 when denied)."""
        asked = self._offset_asked
        if asked is None or time.monotonic() - asked > CLOCK_CHECK_SECONDS:
            try:
                seconds, micros = self.out.time()
                self._offset = seconds + micros / 1e6 - time.time()
            except redis.ResponseError:  # TIME renamed or denied by an ACL: this clock it is
                self._offset = 0.0
            self._offset_asked = time.monotonic()
        return self._offset

    @_moving
    def call_ended(self, done: bool = True) -> None:
        """Drop this process's in-flight mark of the input the last read marked, if any.

        `done`: the call failed, or the input was not called (already committed): the mark says
        its call ended. Not `done`: a refused commit; the next read marks the input again.
        """
        if self._in_flight:
            slots = _End(self.in_flight_key, owner=self.owner, done="1" if done else "")
            self._evalsha(slots)
            self._in_flight = False

    @_moving
    def mark_poison(self, what: str, digest: str, deaths: int | None = None) -> None:
        """Remember that this input (or function version) hung or killed: not tried again.

        The one way poison is recorded: by the watchdog (a hang) and after MAX_DEATHS deaths.
        """
        pipe = self.out.pipeline(transaction=True)
        pipe.hset(self.poison_key, what, digest)
        if deaths is None:
            pipe.hdel(self.poison_key, f"{what}-deaths")
        else:
            pipe.hset(self.poison_key, f"{what}-deaths", deaths)
        if what == "input":  # its mark stays, as of a call that ended: not marked again
            pipe.hset(self.in_flight_key, mapping={"owner": "", "deaths": 0})
        pipe.execute()
        self._in_flight = False

    @_moving
    def read_poison(self) -> dict[str, str]:
        """The input and function digests that hung before, by `input` / `function`."""
        try:
            reply: Any = self.out.hgetall(self.poison_key)
        except redis.ResponseError:  # not a hash: nothing this runtime wrote
            return {}
        return {_text(k) or "": _text(v) or "" for k, v in reply.items()}

    # -- stream mode ------------------------------------------------------------------------------

    @_moving
    def ensure_group(self) -> None:
        """Create the consumer group (and the stream) if missing; existing entries are processed."""
        try:
            self.out.xgroup_create(self.settings.keys.input, self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    @_moving
    def read_entries(self, pending: bool, block: float) -> list[Entry]:
        """This consumer's pending entries (after a restart), or new ones, waiting up to `block`."""
        reply: Any = self.out.xreadgroup(
            self.group,
            self.consumer,
            {self.settings.keys.input: "0" if pending else ">"},
            count=1 if not pending else 100,
            block=None if pending else max(1, int(min(block, MAX_BLOCK) * 1000)),
        )
        return [entry for _stream, items in reply or [] for entry in _entries(items)]

    @_moving
    def claim_stale(self, idle: float) -> list[Entry]:
        """Take over entries another consumer read but did not acknowledge within `idle` seconds."""
        reply = self.out.xautoclaim(
            self.settings.keys.input,
            self.group,
            self.consumer,
            min_idle_time=max(1, int(idle * 1000)),
            start_id="0-0",
            count=100,
        )
        return list(_entries(reply[1]))

    @_moving
    def deliveries(self, entries: list[Entry]) -> dict[str, int]:
        """How many times each of these pending entries was delivered."""
        if not entries:
            return {}
        reply: Any = self.out.xpending_range(
            self.settings.keys.input,
            self.group,
            min=entries[0].entry_id,
            max=entries[-1].entry_id,
            count=len(entries),
        )
        return {_text(item["message_id"]) or "": int(item["times_delivered"]) for item in reply}

    @_moving
    def keep_claim(self, entry_id: str) -> bool:
        """Reset the entry's idle time if this consumer still owns it; False if it does not."""
        slots = _KeepClaim(self.settings.keys.input, self.group, entry_id, self.consumer)
        return bool(self._evalsha(slots))

    @_moving
    def dead_letter(self, entry: Entry, deliveries: int) -> None:
        """Move an entry to `<out>:dead` and acknowledge it, in one step."""
        slots = _DeadLetter(
            input_key=self.settings.keys.input,
            dead_key=self.dead_key,
            group=self.group,
            entry_id=entry.entry_id,
            data=entry.raw or b"",
            deliveries=deliveries,
            consumer=self.consumer,
        )
        self._evalsha(slots)


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
        fields, seq = fields or {}, _seq((_text(entry_id) or "").partition("-")[0])
        journal.append(Journaled(seq, fields.get(b"input"), _text(fields.get(b"at"))))
    return journal


def _seq(value: Any) -> int:
    """A sequence number as Redis holds it; 0 for none (nothing committed yet)."""
    text = _text(value)
    try:
        return int(text) if text else 0
    except ValueError:
        return 0
