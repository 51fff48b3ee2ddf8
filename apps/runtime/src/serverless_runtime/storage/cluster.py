"""Valkey/Redis Cluster: the client, and keyspace notifications for one key from whichever
master owns it.

Settings passed in as plain values (storage/redis_cluster.py reads REDIS_CLUSTER_NODES, a few
nodes of the cluster; the client learns the rest, and names the keys).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import AskError, ClusterDownError, MovedError, RedisClusterException
from redis.retry import Retry

from serverless_runtime.storage import notifications
from serverless_runtime.storage.redis_cluster import listed, slot

log = logging.getLogger(__name__)

# -- the client --------------------------------------------------------------------------------


def connect(
    nodes: tuple[tuple[str, int], ...],
    password: str | None = None,
    tls: bool = False,
    timeout: float = 5.0,
    retries: int = 0,
) -> RedisCluster:
    """A cluster client that starts from `nodes`, with the single-server client's options.

    Unlike the single-server client it connects at once: ConnectionError when no node of
    `nodes` answers. It follows MOVED and ASK by itself; after a failed node it raises
    (ConnectionError) once and asks the cluster for its slots again before the next command,
    so the caller's own backoff and retry see a failover as a short outage.
    """
    options: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": min(timeout, 3.0),
        "health_check_interval": 30,
    }
    if password is not None:
        options["password"] = password
    if tls:
        options["ssl"] = True
    try:
        return RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in nodes],  # type: ignore[no-untyped-call]
            retry=Retry(NoBackoff(), retries),
            **options,
        )
    except RedisClusterException as exc:
        # The client asks the nodes for the slots at once; none answering (or a wrong password)
        # is a Redis that is away, as for the other modes, not a crash.
        raise redis.ConnectionError(f"no cluster node of {listed(nodes)} answered: {exc}") from exc


# -- keyspace notifications for one key ----------------------------------------------------------

# Longest single wait on the pub/sub socket, so a stop request is noticed promptly.
_SLICE = 0.25
_CONFIRM_TIMEOUT = 2.0
# A check of the owner gives up after this long: a frozen master is left for another.
_CHECK_TIMEOUT = 1.0


class KeyEvents:
    """Keyspace notifications for one key, from the master that owns its slot.

    Keyspace events stay on the node where the write ran, so the subscription goes to the key's
    master (with `notify-keyspace-events` enabled there) and moves when the slot does: on a lost
    connection, and at a check every `check_every` seconds that asks the subscribed node about
    the key (`-MOVED`: the slot has a new master; `-ASK`: the key has gone ahead to the node
    importing the slot; a timeout: the master may be frozen). Events sent while the subscription
    moves are lost: `wait` then returns True at once so that the caller reads the key again.
    """

    def __init__(
        self,
        cluster: RedisCluster,
        key: str,
        stop: threading.Event | None = None,
        check_every: float = 2.0,
    ) -> None:
        self._cluster = cluster
        self.key = key
        self.channel = f"__keyspace@0__:{key}"  # a cluster has only db 0
        self._stop = stop or threading.Event()
        self._check_every = check_every
        self._pubsub: redis.client.PubSub | None = None
        self._check: redis.Redis | None = None  # asks the subscribed node about the key
        self._node: ClusterNode | None = None
        self._ask: tuple[str, int] | None = None
        self._next_check = 0.0
        self._woken = False
        self.moves = 0  # how many times the subscription followed the key to another node

    @property
    def node(self) -> tuple[str, int] | None:
        """Where the subscription is (host, port), None while there is none."""
        return (self._node.host, self._node.port) if self._node is not None else None

    def subscribe(self) -> None:
        """Subscribe (if not already) at the key's master; a change made after this returns is
        seen by the next `wait` or by the read the caller makes next."""
        if self._pubsub is not None:
            return
        if self._ask is not None:
            host, port = self._ask
            node = self._cluster.get_node(host=host, port=port)  # type: ignore[no-untyped-call]
            if node is None:
                self._cluster.nodes_manager.initialize()
                node = self._cluster.get_node(host=host, port=port)  # type: ignore[no-untyped-call]
        else:
            try:
                node = self._cluster.nodes_manager.get_node_from_slot(slot(self.key))
            except RedisClusterException as exc:  # the slot has no master right now
                raise redis.ConnectionError(f"no master serves {self.key!r}: {exc}") from exc
        if node is None or node.redis_connection is None:
            raise redis.ConnectionError(f"no node known for {self.key!r}")
        connection: redis.Redis = node.redis_connection
        why = notifications.refused(connection)
        if why is not None:
            log.warning("cannot enable keyspace notifications on a cluster node (%s)", why)
        pubsub = connection.pubsub()  # type: ignore[no-untyped-call]
        try:
            pubsub.subscribe(self.channel)
            deadline = time.monotonic() + _CONFIRM_TIMEOUT
            while time.monotonic() < deadline:
                message = pubsub.get_message(timeout=_SLICE)
                if message is not None and message.get("type") == "subscribe":
                    break
                self._woken |= message is not None and message.get("type") == "message"
        except redis.RedisError:
            pubsub.close()
            raise
        if self._node is not None and (node.host, node.port) != self.node:
            self.moves += 1
        self._pubsub, self._node = pubsub, node
        self._check = _with_timeout(connection, _CHECK_TIMEOUT)
        self._next_check = time.monotonic() + self._check_every

    def wait(self, timeout: float) -> bool:
        """Block until an event for the key (True), `timeout` passes or a stop is asked (False).

        True too when the subscription was lost or moved, since an event may have been missed.
        """
        if self._woken:
            self._woken = False
            return True
        deadline = time.monotonic() + timeout
        while not self._stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                self.subscribe()
                assert self._pubsub is not None
                message = self._pubsub.get_message(timeout=min(remaining, _SLICE))
                if message is not None and message.get("type") == "message":
                    return True
                if time.monotonic() >= self._next_check and not self._still_here():
                    return True
            except (redis.RedisError, RedisClusterException) as exc:
                # A lost master, a slot without one (CLUSTERDOWN): Redis away, as for the loop.
                log.info("keyspace events for %s: %s; subscribing again", self.key, exc)
                self._lost(reinitialize=True)
                return True
        return False

    def _still_here(self) -> bool:
        """Ask the subscribed node about the key: False (and unsubscribed) if it is elsewhere."""
        assert self._check is not None
        self._next_check = time.monotonic() + self._check_every
        try:
            with self._check.pipeline(transaction=False) as pipe:
                if self._ask is not None:  # the node importing the slot answers only after ASKING
                    pipe.execute_command("ASKING")  # type: ignore[no-untyped-call]
                pipe.execute_command("EXISTS", self.key)  # type: ignore[no-untyped-call]
                pipe.execute()
        except AskError as exc:
            log.info("%s is moving to %s:%s: subscribing there", self.key, exc.host, exc.port)
            self._lost(ask=(exc.host, exc.port))
            return False
        except MovedError as exc:
            log.info("%s has moved to %s:%s: subscribing there", self.key, exc.host, exc.port)
            self._lost(reinitialize=True)
            return False
        except ClusterDownError:
            self._lost(reinitialize=True)
            return False
        return True

    def _lost(self, reinitialize: bool = False, ask: tuple[str, int] | None = None) -> None:
        self.close()
        self._ask = ask
        if reinitialize:
            try:
                self._cluster.nodes_manager.initialize()
            except (redis.RedisError, RedisClusterException) as exc:  # the next subscribe retries
                log.info("cluster topology unavailable (%s)", exc)

    def close(self) -> None:
        notifications.close(self._pubsub)
        self._pubsub = None
        if self._check is not None:
            self._check.close()
            self._check = None


def keyspace_events_refused(cluster: RedisCluster, key: str) -> str | None:
    """Make sure the master that owns `key` publishes keyspace events for it; why not when that
    may not be asked (CONFIG refused), else None. Redis away: ConnectionError."""
    try:
        node = cluster.get_node_from_key(key)  # type: ignore[no-untyped-call]
    except RedisClusterException as exc:  # the slot has no master right now
        raise redis.ConnectionError(f"no master serves {key!r}: {exc}") from exc
    if node is None or node.redis_connection is None:
        raise redis.ConnectionError(f"no node known for {key!r}")
    return notifications.refused(node.redis_connection)


def _with_timeout(connection: redis.Redis, timeout: float) -> redis.Redis:
    """A client for the same node as `connection` (same password, TLS) whose commands give up
    after `timeout`."""
    pool = connection.connection_pool
    kwargs = dict(pool.connection_kwargs)
    kwargs["socket_timeout"] = timeout
    kwargs["socket_connect_timeout"] = min(timeout, kwargs.get("socket_connect_timeout") or timeout)
    kwargs["retry"] = Retry(NoBackoff(), 0)
    check_pool = redis.ConnectionPool(
        connection_class=pool.connection_class, max_connections=1, **kwargs
    )
    return redis.Redis(connection_pool=check_pool)
