"""The dashboard's one Redis client, configured to fail fast so a page never hangs on Redis."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry
from serverless_runtime.storage.redis_sentinel import Sentinels

from monitoring_dashboard.settings import Settings

# A callback runs on every refresh, so a down Redis must cost a refused connection, not
# redis-py's default of three retries with backoff of up to ten seconds each.
CONNECT_TIMEOUT_SECONDS = 2.0
SOCKET_TIMEOUT_SECONDS = 5.0


def connect(settings: Settings) -> redis.Redis:
    """Create the client; it connects lazily and reconnects by itself after Redis returns."""
    options: dict[str, Any] = {
        "decode_responses": True,
        # Bytes that are not UTF-8 decode to lone surrogates instead of failing the whole
        # refresh (and the page with it); the reader skips such values.
        "encoding_errors": "surrogateescape",
        "socket_connect_timeout": CONNECT_TIMEOUT_SECONDS,
        "socket_timeout": SOCKET_TIMEOUT_SECONDS,
        # One quick retry replaces a pooled connection that died while Redis restarted.
        "retry": Retry(ExponentialBackoff(cap=0.1, base=0.02), 1),
        "health_check_interval": 30,
    }
    config = settings.redis
    if config.cluster_nodes is not None:
        make = partial(_cluster, config.cluster_nodes, config.password, config.tls, options)
        return _LazyCluster(make)  # type: ignore[return-value]
    if config.sentinels is not None:
        return _master(config.sentinels, config.password, options)
    if config.url is not None:
        if config.password is not None:
            options["password"] = config.password
        return redis.Redis.from_url(config.url, **options)
    return redis.Redis(host=config.host, port=config.port, password=config.password, **options)


def _master(sentinels: Sentinels, password: str | None, options: dict[str, Any]) -> redis.Redis:
    """A client on the master the sentinels name now; it asks them again after a failover."""
    from redis.sentinel import Sentinel  # only with REDIS_SENTINELS

    # The sentinels fail as fast as the servers (redis-py's default would retry for seconds).
    sentinel_options: dict[str, Any] = {
        "socket_connect_timeout": CONNECT_TIMEOUT_SECONDS,
        "socket_timeout": SOCKET_TIMEOUT_SECONDS,
        "retry": options["retry"],
    }
    if sentinels.password is not None:
        sentinel_options["password"] = sentinels.password
    sentinel = Sentinel(list(sentinels.addresses), sentinel_kwargs=sentinel_options)  # type: ignore[no-untyped-call]
    master: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
        sentinels.master, password=password, **options
    )
    return master


class _LazyCluster:
    """A Redis Cluster client made at its first use: a cluster client asks a node for the slots
    as it is made, so a cluster that is down when the dashboard starts is a "Redis is
    unreachable" notice on the page (ConnectionError, tried again each refresh), not a crash."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._made: Any = None
        self._make = make

    def __getattr__(self, name: str) -> Any:
        if self._made is None:
            self._made = self._make()
        return getattr(self._made, name)


def _cluster(
    nodes: tuple[tuple[str, int], ...], password: str | None, tls: bool, options: dict[str, Any]
) -> Any:
    from redis.cluster import ClusterNode, RedisCluster  # only with REDIS_CLUSTER_NODES
    from redis.exceptions import RedisClusterException

    try:
        return RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in nodes],  # type: ignore[no-untyped-call]
            password=password,
            ssl=tls,
            **options,
        )
    except RedisClusterException as exc:  # no node answered: Redis is away, as for a server
        raise redis.ConnectionError(f"no Redis Cluster node answered: {exc}") from exc
