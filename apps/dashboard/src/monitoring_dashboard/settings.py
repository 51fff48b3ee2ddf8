"""Dashboard settings from the environment; where Redis is comes from the runtime's reader."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from serverless_runtime.registry import DEFAULT_FUNCTIONS_KEY
from serverless_runtime.storage import redis_cluster, redis_settings
from serverless_runtime.storage.keys import KeyLayout
from serverless_runtime.storage.redis_settings import Invalid, RedisConfig

__all__ = ["ENV_VARS", "Invalid", "RedisConfig", "Settings"]

DEFAULT_REFRESH_SECONDS = 5.0
DEFAULT_HISTORY_MINUTES = 60.0
# Below this the browser would poll faster than a callback can usefully answer.
MIN_REFRESH_SECONDS = 0.2
# Upper bounds that catch typos (1e308) before they overflow a millisecond count.
MAX_REFRESH_SECONDS = 3600.0
MAX_HISTORY_MINUTES = 7 * 24 * 60.0
# Where create_app leaves the settings for page layouts (Flask's app config).
SETTINGS_CONFIG_KEY = "MONITORING_DASHBOARD_SETTINGS"

# Every variable the dashboard reads (LOG_LEVEL in its CLI); the manifests are checked against it.
ENV_VARS = frozenset(
    {
        "REDIS_OUTPUT_KEY",
        "HISTORY_KEY",
        "ERROR_KEY",
        *redis_settings.VARIABLES,
        *redis_cluster.VARIABLES,
        "REFRESH_SECONDS",
        "HISTORY_MINUTES",
        "LOG_LEVEL",
        "FUNCTIONS_KEY",
    }
)


@dataclass(frozen=True)
class Settings:
    output_key: str
    redis: RedisConfig = field(default_factory=RedisConfig)
    refresh_seconds: float = DEFAULT_REFRESH_SECONDS
    history_minutes: float = DEFAULT_HISTORY_MINUTES
    # The runtime's key names (HISTORY_KEY, ERROR_KEY); None: all named after output_key.
    layout: KeyLayout | None = None
    # The runtimes' registry hash (FUNCTIONS_KEY, as for the runtime); None: not read.
    functions_key: str | None = DEFAULT_FUNCTIONS_KEY

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Build settings from a mapping such as os.environ; raise Invalid on a bad value."""
        raw_key = environ.get("REDIS_OUTPUT_KEY", "")
        if not (output_key := raw_key.strip()):
            raise Invalid("REDIS_OUTPUT_KEY", raw_key, "a non-empty key name")
        # Unset: the default; set empty: None (not read), as the runtime reads it.
        functions_key = environ.get("FUNCTIONS_KEY", DEFAULT_FUNCTIONS_KEY).strip() or None
        redis = RedisConfig.from_env(environ, cluster=True)
        return cls(
            output_key=output_key,
            # In a Redis Cluster the runtime names its keys with the output key's hash tag.
            layout=KeyLayout.from_env(environ, cluster=redis.cluster_nodes is not None),
            redis=redis,
            refresh_seconds=_number(
                "REFRESH_SECONDS",
                environ,
                DEFAULT_REFRESH_SECONDS,
                MIN_REFRESH_SECONDS,
                MAX_REFRESH_SECONDS,
            ),
            history_minutes=_number(
                "HISTORY_MINUTES", environ, DEFAULT_HISTORY_MINUTES, 0.0, MAX_HISTORY_MINUTES
            ),
            functions_key=functions_key,
        )

    @property
    def keys(self) -> KeyLayout:
        """Where the runtime writes: the output key, its history stream and its error key."""
        return self.layout or KeyLayout.for_output(self.output_key)

    @property
    def redis_location(self) -> str:
        """Where Redis is, for messages: host:port, the URL without credentials, or the master."""
        redis = self.redis
        if redis.cluster_nodes is not None:
            return f"the Redis Cluster at {redis_cluster.listed(redis.cluster_nodes)}"
        if redis.sentinels is not None:
            return redis.sentinels.describe()
        if redis.url is None:
            return f"{redis.host}:{redis.port}"
        parts = urlsplit(redis.url)
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"

    @property
    def refresh_ms(self) -> int:
        return int(self.refresh_seconds * 1000)

    @property
    def history_ms(self) -> int:
        return int(self.history_minutes * 60_000)


def _number(
    variable: str, environ: Mapping[str, str], default: float, minimum: float, maximum: float
) -> float:
    raw = environ.get(variable, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 < value <= maximum and value >= minimum):
        bound = f">= {minimum:g}" if minimum > 0 else "> 0"
        raise Invalid(variable, raw, f"a number {bound} and <= {maximum:g}")
    return value
