"""Valkey/Redis Cluster: where the startup nodes are, the client, slot-sharing key names, and
keyspace notifications for one key from whichever master owns it.

Standard library and redis-py only, settings passed in as plain values (config.py reads the
environment): REDIS_CLUSTER_NODES lists a few nodes of the cluster; the client learns the rest.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.crc import key_slot
from redis.exceptions import AskError, ClusterDownError, MovedError, RedisClusterException
from redis.retry import Retry

log = logging.getLogger(__name__)

NODES = "REDIS_CLUSTER_NODES"
DEFAULT_PORT = 6379
EXPECTED = (
    "a comma-separated list of host:port of cluster nodes (port 1 to 65535; "
    "an IPv6 address in brackets, [::1]:6379)"
)
# Settings the cluster's nodes say themselves, so they may not be set beside REDIS_CLUSTER_NODES.
EXCLUSIVE = ("REDIS_URL", "REDIS_SENTINELS")

_HOST_LABEL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")


class Invalid(ValueError):
    """REDIS_CLUSTER_NODES (or a variable that may not be set with it) holds an unusable value."""

    def __init__(self, name: str, value: str | None, expected: str) -> None:
        super().__init__(f"{name}={value!r}: expected {expected}")
        self.name = name
        self.value = value
        self.expected = expected


# -- settings ----------------------------------------------------------------------------------


def from_env(environ: Mapping[str, str]) -> tuple[tuple[str, int], ...] | None:
    """The startup nodes, None when REDIS_CLUSTER_NODES is unset or blank; Invalid names a bad
    variable (a malformed list, or REDIS_URL / REDIS_SENTINELS set beside it)."""
    listed = environ.get(NODES, "").strip()
    if not listed:
        return None
    nodes = parse_nodes(listed)
    for other in EXCLUSIVE:
        if environ.get(other, "").strip():
            # The value is not shown: a URL may hold a password.
            raise Invalid(
                other, "***", f"unset when {NODES} is set: the cluster says where keys are"
            )
    return nodes


def parse_nodes(text: str) -> tuple[tuple[str, int], ...]:
    """`host:port[,host:port…]` as (host, port) pairs, each listed once.

    Invalid says which item is wrong and why, in one line.
    """
    if not text.strip():
        raise Invalid(NODES, text, f"{EXPECTED} (the list is empty)")
    nodes: list[tuple[str, int]] = []
    for number, item in enumerate(text.split(","), start=1):
        try:
            node = _parse_node(item.strip())
        except ValueError as exc:
            raise Invalid(NODES, text, f"{EXPECTED} (item {number}: {exc})") from None
        if node not in nodes:
            nodes.append(node)
    return tuple(nodes)


def _parse_node(item: str) -> tuple[str, int]:
    if not item:
        raise ValueError("empty")
    if "://" in item:
        raise ValueError(f"{item.partition('://')[0]}:// is a URL scheme; list host:port only")
    if item.startswith("["):  # [IPv6]:port
        host, bracket, rest = item[1:].partition("]")
        if not bracket:
            raise ValueError(f"{item!r} has no closing ]")
        if not _is_ipv6(host):
            raise ValueError(f"{host!r} in brackets is not an IPv6 address")
        if rest and not rest.startswith(":"):
            raise ValueError(f"{item!r} has {rest!r} after the ]")
        port_text = rest[1:] if rest else None
    elif item.count(":") > 1:
        raise ValueError(f"{item!r}: an IPv6 address goes in brackets, [{item}]:{DEFAULT_PORT}")
    else:
        host, colon, after = item.partition(":")
        if not _is_host(host):
            raise ValueError(f"{host!r} is not a host name or IP address")
        port_text = after if colon else None
    if port_text is None:
        return host, DEFAULT_PORT
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"port {port_text!r} is not a number from 1 to 65535")
    return host, int(port_text)


def _is_ipv6(text: str) -> bool:
    try:
        return ipaddress.ip_address(text).version == 6
    except ValueError:
        return False


def _is_host(text: str) -> bool:
    """An IPv4 address, or a host name (RFC 1123) whose last label is not all digits."""
    try:
        return ipaddress.ip_address(text).version == 4
    except ValueError:
        labels = text.removesuffix(".").split(".")
        return (
            0 < len(text) <= 253
            and all(
                0 < len(label) <= 63
                and set(label) <= _HOST_LABEL_CHARS
                and label[0] != "-"
                and label[-1] != "-"
                for label in labels
            )
            and not labels[-1].isdigit()
        )


def listed(nodes: tuple[tuple[str, int], ...]) -> str:
    """The nodes as REDIS_CLUSTER_NODES lists them (for messages: holds no password)."""
    return ",".join(f"[{host}]:{port}" if ":" in host else f"{host}:{port}" for host, port in nodes)


# -- the client --------------------------------------------------------------------------------


def connect(
    nodes: tuple[tuple[str, int], ...],
    password: str | None = None,
    username: str | None = None,
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
    if username is not None:
        options["username"] = username
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


# -- key names ---------------------------------------------------------------------------------


def hash_tag(key: str) -> str | None:
    """The part of `key` Redis hashes when it is not the whole key: the text between the first
    `{` and the first `}` after it, if not empty (as Redis reads the key's bytes)."""
    start = key.find("{")
    if start < 0:
        return None
    end = key.find("}", start + 1)
    if end <= start + 1:
        return None
    return key[start + 1 : end]


def tagged(output_key: str, suffix: str) -> str:
    """A key in the same hash slot as `output_key`, named after it: `{<output_key>}:<suffix>`.

    An output key with a hash tag of its own (`{t}rest`) gets `{t}<output_key>:<suffix>`, so
    that the first tag stays its tag and no two output keys share a derived name. An output key
    whose whole name is hashed but holds a `}` (`a}b`, `x{}y`) has no such name: ValueError.
    """
    tag = hash_tag(output_key)
    if tag is not None:
        return f"{{{tag}}}{output_key}:{suffix}"
    if "}" in output_key:
        raise ValueError(
            f"output key {output_key!r} holds '}}' outside a hash tag: no other key name can "
            "share its hash slot (rename it, or give it a tag such as '{name}')"
        )
    return f"{{{output_key}}}:{suffix}"


def slot(key: str | bytes) -> int:
    """The hash slot of `key` (0 to 16383), as the cluster computes it."""
    return int(key_slot(key.encode() if isinstance(key, str) else key))


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
        _enable_keyspace_events(connection)
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
            except (redis.ConnectionError, redis.TimeoutError) as exc:
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
            except redis.RedisError as exc:  # the next subscribe tries again
                log.info("cluster topology unavailable (%s)", exc)

    def close(self) -> None:
        if self._pubsub is not None:
            try:
                self._pubsub.close()
            except redis.RedisError:
                log.debug("closing the pub/sub connection failed", exc_info=True)
            self._pubsub = None
        if self._check is not None:
            self._check.close()
            self._check = None


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


def _enable_keyspace_events(connection: redis.Redis) -> bool:
    """Make sure this node publishes keyspace events for string commands (`K$` at least);
    False when it may not be asked (CONFIG refused: the caller's polling still sees changes)."""
    try:
        reply = connection.config_get("notify-keyspace-events")
        current = str(reply.get("notify-keyspace-events", ""))
        has_strings = "$" in current or "A" in current
        if "K" not in current or not has_strings:
            wanted = current + ("" if "K" in current else "K") + ("" if has_strings else "$")
            connection.config_set("notify-keyspace-events", wanted)
    except redis.ResponseError as exc:
        log.warning("cannot enable keyspace notifications on a cluster node (%s)", exc)
        return False
    return True
