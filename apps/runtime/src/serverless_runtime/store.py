"""All Redis I/O of the runtime; the only module that knows the key names."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from serverless_runtime.config import RedisConfig, Settings
from serverless_runtime.lease import Lease

# Blocking reads wait at most this long, well below the socket timeout (redis-py #2807).
SOCKET_TIMEOUT = 10.0
MAX_BLOCK = 1.0
STREAM_FIELD = b"data"

# One atomic step: check the fencing token, then output, history entry, state, input digest and
# the stream acknowledgement. Redis runs a script as a transaction, like MULTI/EXEC, and the token
# check inside it needs no extra round trip (WATCH would add two).
_COMMIT = """
if ARGV[1] ~= '' then
  if redis.call('GET', KEYS[5]) ~= ARGV[1] then return 0 end
  redis.call('PEXPIRE', KEYS[5], ARGV[6])
end
if ARGV[2] ~= '' then
  redis.call('SET', KEYS[1], ARGV[2])
  if ARGV[3] ~= '0' then
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'output', ARGV[2])
  end
end
if ARGV[4] ~= '' then redis.call('SET', KEYS[3], ARGV[4]) end
if ARGV[5] ~= '' then redis.call('SET', KEYS[4], ARGV[5]) end
if ARGV[8] ~= '' then redis.call('XACK', KEYS[6], ARGV[7], ARGV[8]) end
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


@dataclass(frozen=True, slots=True)
class Restored:
    """What a previous run committed: the function's state and the last processed input."""

    state_json: str | None
    input_digest: str | None


@dataclass(frozen=True, slots=True)
class Entry:
    """One stream entry to process."""

    entry_id: str
    raw: bytes | None


class Store:
    """Reads the input, commits results atomically and records failures."""

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
        if settings.state_key and settings.stream_mode:
            self.state_key = f"{settings.state_key}:{consumer}"
        self._commit = client.register_script(_COMMIT)

    def ping(self) -> bool:
        """True when Redis answers."""
        return bool(self.client.ping())

    def read_input(self) -> bytes | None:
        """Renew or take the lease when due and read the input, in one round trip.

        Returns None when the key does not exist or another replica holds the lease.
        """
        lease = self.lease
        value: Any
        if lease is None or not lease.due():
            value = self.client.get(self.settings.input_key)
        else:
            try:
                reply, value = self._refresh_and_get(lease)
            except redis.exceptions.NoScriptError:  # Redis restarted: its script cache is empty
                lease.load(self.client)
                reply, value = self._refresh_and_get(lease)
            if not lease.apply(reply):
                return None
        return None if value is None else bytes(value)

    def _refresh_and_get(self, lease: Lease) -> list[Any]:
        pipe = self.client.pipeline(transaction=False)
        lease.queue_refresh(pipe)
        pipe.get(self.settings.input_key)
        return list(pipe.execute())

    def restore(self) -> Restored:
        """The state and input digest of the last successful call, if any."""
        if not self.state_key:
            return Restored(None, _text(self.client.get(self.settings.digest_key)))
        state, digest = self.client.mget([self.state_key, self.settings.digest_key])
        return Restored(_text(state), _text(digest))

    def commit(
        self,
        output_json: str | None,
        state_json: str | None,
        input_digest: str | None,
        entry_id: str | None = None,
    ) -> bool:
        """Write the call's effects atomically; False when the lease was lost (nothing written)."""
        settings = self.settings
        lease_value = self.lease.value if self.lease is not None else None
        # Scripts must declare every key they may touch; a disabled key's slot holds the output
        # key, which the script leaves alone because its ARGV flag is empty.
        keys = [
            settings.output_key,
            settings.history_key or settings.output_key,
            self.state_key or settings.output_key,
            settings.digest_key,
            self.lease.key if self.lease is not None else settings.output_key,
            settings.input_key,
        ]
        args: list[str | int] = [
            lease_value or "",
            output_json or "",
            settings.history_length if settings.history_key else 0,
            state_json if (state_json is not None and self.state_key) else "",
            input_digest or "",
            self.lease.ttl_ms if self.lease is not None else 0,
            self.group,
            entry_id or "",
        ]
        committed = bool(self._commit(keys=keys, args=args))
        if self.lease is not None:
            if committed:
                self.lease.renewed()
            else:
                self.lease.lost()
        return committed

    def record_error(self, record: dict[str, Any]) -> None:
        """Keep the latest failure where operators and the dashboard look for it."""
        if self.settings.error_key:
            self.client.set(self.settings.error_key, json.dumps(record))

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
