"""Where Redis is: REDIS_CLUSTER_NODES (the runtime only, so far), REDIS_SENTINELS or REDIS_URL
if set, else REDIS_HOST and REDIS_PORT.

Standard library only: the runtime and the dashboard read these variables with the same rules
(the dashboard's image holds this package without its dependencies).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from serverless_runtime.storage import redis_cluster, redis_sentinel, redis_url
from serverless_runtime.storage.redis_sentinel import Invalid

__all__ = ["VARIABLES", "ConfigError", "Invalid", "RedisConfig"]

VARIABLES = frozenset(
    {"REDIS_URL", "REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD", *redis_sentinel.VARIABLES}
)
EXPECTED_PORT = "a whole number from 1 to 65535"


class ConfigError(ValueError):
    """An environment variable holds a value the runtime cannot use."""

    def __init__(self, name: str, value: str | None, expected: str) -> None:
        shown = "(not set)" if value is None else repr(value)
        super().__init__(f"invalid setting {name}={shown}: expected {expected}")
        self.name = name


@dataclass(frozen=True, slots=True)
class RedisConfig:
    """Where Redis is, and REDIS_PASSWORD (for each form; with Sentinel, the master's)."""

    host: str = "localhost"
    port: int = 6379
    # Kept out of repr(): the URL may hold a password, and a repr can end up in a log.
    url: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    sentinels: redis_sentinel.Sentinels | None = None
    # A Redis Cluster's startup nodes (REDIS_CLUSTER_NODES), and REDIS_TLS for them.
    cluster_nodes: tuple[tuple[str, int], ...] | None = None
    tls: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str], cluster: bool = False) -> RedisConfig:
        """Parse the connection variables; raise Invalid naming a bad one.

        `cluster`: REDIS_CLUSTER_NODES and REDIS_TLS are read too (redis_cluster.VARIABLES).
        """
        if cluster:
            nodes = redis_cluster.from_env(environ)
            tls = redis_cluster.tls(environ)
            if nodes is not None:
                password = environ.get("REDIS_PASSWORD", "").strip() or None
                return cls(password=password, cluster_nodes=nodes, tls=tls)
        url = _url(environ.get("REDIS_URL", ""))
        sentinels = redis_sentinel.from_env(environ)
        return cls(
            host=environ.get("REDIS_HOST", "").strip() or "localhost",
            port=_port(environ.get("REDIS_PORT", "")),
            url=url,
            password=environ.get("REDIS_PASSWORD", "").strip() or None,
            sentinels=sentinels,
        )

    @property
    def location(self) -> tuple[str, str]:
        """The variable that says where Redis is, and its value as it may be shown."""
        if self.cluster_nodes is not None:
            return redis_cluster.NODES, redis_cluster.listed(self.cluster_nodes)
        if self.sentinels is not None:
            return redis_sentinel.SENTINELS, self.sentinels.listed()
        if self.url:
            return "REDIS_URL", redis_url.redact(self.url)
        return "REDIS_HOST/REDIS_PORT", f"{self.host}:{self.port}"


def _port(raw: str) -> int:
    if not raw.strip():
        return 6379
    try:
        port = int(raw.strip())
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise Invalid("REDIS_PORT", raw, EXPECTED_PORT)
    return port


def _url(raw: str) -> str | None:
    """REDIS_URL checked as redis-py reads it, so that a bad port or db fails at start."""
    url = raw.strip()
    if not url:
        return None
    try:
        redis_url.check(url)
    except ValueError:
        # Shown without its password: this line goes to the pod's log.
        raise Invalid("REDIS_URL", redis_url.redact(raw), redis_url.EXPECTED) from None
    return url
