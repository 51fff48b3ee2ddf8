"""A Redis lease with a fencing token, so that exactly one replica invokes in poll/notify mode."""

from __future__ import annotations

import logging
import time
from typing import Any

import redis
from redis.exceptions import RedisClusterException

from serverless_runtime.storage.keys import lease_released_channel, lease_token_key

log = logging.getLogger(__name__)

# Renew the lease if we hold it; take it if nobody does (with a new fencing token); else nil.
_ACQUIRE_OR_RENEW = """
local held = redis.call('GET', KEYS[1])
if held and held == ARGV[3] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return held
end
if not held then
  local value = ARGV[1] .. ':' .. redis.call('INCR', KEYS[2])
  redis.call('SET', KEYS[1], value, 'PX', ARGV[2])
  return value
end
return false
"""

# Released on purpose (SIGTERM): tell the standbys, so one takes over now, not at its next tick.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[2], 'released')
  return 1
end
return 0
"""


class Lease:
    """This replica's claim to be the one that invokes; `value` is held while leader."""

    SCRIPTS = (_ACQUIRE_OR_RENEW, _RELEASE)  # loaded by the store's first read

    def __init__(self, client: redis.Redis, key: str, holder: str, ttl: float) -> None:
        self.key = key
        self.token_key = lease_token_key(key)
        self.holder = holder
        self.ttl_ms = max(1, int(ttl * 1000))
        self.value: str | None = None
        self.renewed_at = -float("inf")
        self._renew_every = ttl / 3
        self._acquire = client.register_script(_ACQUIRE_OR_RENEW)
        self._release = client.register_script(_RELEASE)

    @property
    def leader(self) -> bool:
        """True while this replica holds the lease."""
        return self.value is not None

    def due(self) -> bool:
        """A standby tries every tick; the leader renews once a third of the TTL has passed."""
        return self.value is None or time.monotonic() - self.renewed_at >= self._renew_every

    def renewed(self) -> None:
        """A commit renewed the lease (it checks the token and extends the TTL)."""
        self.renewed_at = time.monotonic()

    def queue_refresh(self, pipe: redis.client.Pipeline) -> None:
        """Add the acquire-or-renew call to a pipeline; pass its reply to `apply`."""
        # EVALSHA directly: a Script object in a pipeline costs a SCRIPT EXISTS round trip.
        keys_and_args = (self.key, self.token_key, self.holder, self.ttl_ms, self.value or "")
        pipe.evalsha(self._acquire.sha, 2, *keys_and_args)

    def apply(self, reply: Any) -> bool:
        """Take the script's reply; log leadership changes; return whether we lead."""
        value = reply.decode() if isinstance(reply, bytes) else reply or None
        if value != self.value:
            if value is not None:
                log.info("leading: holding lease %r as %s", self.key, value)
            elif self.value is not None:
                log.warning("lost lease %r; standing by", self.key)
        self.value = value
        if value is not None:
            self.renewed()
        return value is not None

    def lost(self) -> None:
        """The commit found the lease taken over: stop acting as leader."""
        log.warning("lease %r was taken over; standing by", self.key)
        self.value = None

    def release(self, client: redis.Redis) -> None:
        """Give the lease up at shutdown so a standby can take over at once."""
        if self.value is None:
            return
        try:
            self._release(keys=[self.key], args=[self.value, lease_released_channel(self.key)])
            log.info("released lease %r", self.key)
        except (redis.RedisError, RedisClusterException) as exc:  # the latter: no slot master
            log.warning("could not release lease %r (%s); it lapses by itself", self.key, exc)
        self.value = None
