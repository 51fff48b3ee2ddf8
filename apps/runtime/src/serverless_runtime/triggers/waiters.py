"""What wakes the loop: a timer (poll) or keyspace notifications for the input key (notify)."""

from __future__ import annotations

import logging
import threading
import time
from typing import Protocol

import redis
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException

from serverless_runtime.config import InvokeOn, Settings, Trigger
from serverless_runtime.storage import cluster, notifications
from serverless_runtime.storage.keys import lease_released_channel

log = logging.getLogger(__name__)

# Longest single wait on the pub/sub socket, so a stop request is noticed promptly.
_SLICE = 0.25
_CONFIRM_TIMEOUT = 2.0


class Waiter(Protocol):
    """Blocks until the input may have changed, `timeout` passes, or a stop is requested."""

    def prepare(self) -> None:
        """Get ready to see changes made from now on; called before each read of the input."""

    def wait(self, timeout: float) -> None: ...

    def close(self) -> None: ...


class PollWaiter:
    """Sleeps for the interval; the course runtime's behaviour."""

    def __init__(self, stop: threading.Event) -> None:
        self._stop = stop

    def prepare(self) -> None:
        pass

    def wait(self, timeout: float) -> None:
        self._stop.wait(timeout)

    def close(self) -> None:
        pass


class NotifyWaiter:
    """Wakes on a keyspace notification for the input key; resubscribes after a lost connection."""

    def __init__(self, client: redis.Redis, settings: Settings, stop: threading.Event) -> None:
        self._client = client
        self._stop = stop
        db = client.connection_pool.connection_kwargs.get("db", 0)
        self.channel = f"__keyspace@{db}__:{settings.keys.input}"
        # A standby also wakes when the leader releases the lease, to take over at once.
        lease = settings.keys.lease
        self._channels = [self.channel] + ([lease_released_channel(lease)] if lease else [])
        self._pubsub: redis.client.PubSub | None = None
        self._woken = False
        self._subscriptions = 0

    def prepare(self) -> None:
        """Subscribe before the input is read, so that no change falls between read and wait."""
        self._subscribed()

    def _subscribed(self) -> redis.client.PubSub:
        if self._pubsub is None:
            if self._subscriptions:
                # Subscribing again after a lost connection: Redis may have restarted, and a
                # restart forgets notify-keyspace-events set with CONFIG SET. Whether that is
                # allowed was said at start.
                notifications.refused(self._client)
            pubsub = self._client.pubsub()  # type: ignore[no-untyped-call]
            pubsub.subscribe(*self._channels)
            # Redis confirms each subscription once it is in force: wait for that, so a change
            # made right after our next read cannot slip by.
            confirmed = 0
            deadline = time.monotonic() + _CONFIRM_TIMEOUT
            while time.monotonic() < deadline and confirmed < len(self._channels):
                message = pubsub.get_message(timeout=_SLICE)
                confirmed += message is not None and message.get("type") == "subscribe"
                self._woken |= message is not None and message.get("type") == "message"
            self._pubsub = pubsub
            self._subscriptions += 1
        return self._pubsub

    def wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        if self._woken:
            self._woken = False
            return
        while not self._stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            try:
                message = self._subscribed().get_message(timeout=min(remaining, _SLICE))
            except (redis.ConnectionError, redis.TimeoutError):
                # Events sent while disconnected are lost: back to the loop, which reads the
                # input again (or backs off while Redis is away) and subscribes anew.
                self.close()
                return
            if message is not None and message.get("type") == "message":
                return

    def close(self) -> None:
        notifications.close(self._pubsub)
        self._pubsub = None


class ClusterNotifyWaiter:
    """A Redis Cluster: keyspace notifications from the input's master, following its slot to
    another master and a failover (cluster.KeyEvents); a standby takes over a released lease at
    its next tick (the channel is not listened to across the cluster)."""

    def __init__(self, client: RedisCluster, input_key: str, stop: threading.Event) -> None:
        self._events = cluster.KeyEvents(client, input_key, stop)

    def prepare(self) -> None:
        try:
            self._events.subscribe()
        except RedisClusterException as exc:  # no master known for the slot: Redis away
            raise redis.ConnectionError(f"Redis Cluster: {exc}") from exc

    def wait(self, timeout: float) -> None:
        self._events.wait(timeout)

    def close(self) -> None:
        self._events.close()


def notify_waiter(client: redis.Redis, settings: Settings, stop: threading.Event) -> Waiter:
    """TRIGGER=notify or auto: keyspace events; `auto` falls back to polling with one warning.
    INVOKE_ON=interval calls once per tick whatever the trigger, as the course runtime: the loop
    only sleeps, so a keyspace event never adds a call."""
    if settings.invoke_on is InvokeOn.INTERVAL:
        log.info(
            "INVOKE_ON=interval: one call every %ss; TRIGGER=%s adds no calls",
            settings.interval,
            settings.trigger,
        )
        return PollWaiter(stop)
    made: object = client
    if isinstance(made, RedisCluster):
        why = cluster.keyspace_events_refused(made, settings.keys.input)
    else:
        why = notifications.refused(client)
    if settings.trigger is Trigger.AUTO and why is not None:
        log.warning(
            "keyspace notifications unavailable (%s): polling %s every %ss",
            why,
            settings.keys.input,
            settings.interval,
        )
        return PollWaiter(stop)
    if why is not None:
        log.warning(
            "TRIGGER=notify without keyspace events (%s): changes are seen at the %ss "
            "reconciliation",
            why,
            settings.interval,
        )
    if isinstance(made, RedisCluster):
        return ClusterNotifyWaiter(made, settings.keys.input, stop)
    return NotifyWaiter(client, settings, stop)
