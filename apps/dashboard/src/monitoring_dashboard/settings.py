"""Dashboard settings, parsed once from environment variables into a frozen object."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_REFRESH_SECONDS = 5.0
DEFAULT_HISTORY_MINUTES = 60.0
# Below this the browser would poll faster than a callback can usefully answer.
MIN_REFRESH_SECONDS = 0.2
# Where create_app leaves the settings for page layouts (Flask's app config).
SETTINGS_CONFIG_KEY = "MONITORING_DASHBOARD_SETTINGS"


# Every variable the dashboard reads (LOG_LEVEL in its CLI); the manifests are checked against it.
ENV_VARS = frozenset(
    {
        "REDIS_OUTPUT_KEY",
        "REDIS_URL",
        "REDIS_HOST",
        "REDIS_PORT",
        "REDIS_PASSWORD",
        "REFRESH_SECONDS",
        "HISTORY_MINUTES",
        "LOG_LEVEL",
    }
)


class SettingsError(ValueError):
    """A variable holds a value the dashboard cannot use."""

    def __init__(self, variable: str, value: str, expected: str) -> None:
        super().__init__(f"{variable}={value!r}: expected {expected}")
        self.variable = variable


@dataclass(frozen=True)
class Settings:
    """Everything the dashboard reads from its environment."""

    output_key: str
    redis_url: str | None = None
    redis_host: str = "localhost"
    redis_port: int = 6379
    redis_password: str | None = None
    refresh_seconds: float = DEFAULT_REFRESH_SECONDS
    history_minutes: float = DEFAULT_HISTORY_MINUTES

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Build settings from a mapping such as os.environ; raise SettingsError on a bad value."""
        output_key = environ.get("REDIS_OUTPUT_KEY", "").strip()
        if not output_key:
            raise SettingsError(
                "REDIS_OUTPUT_KEY", environ.get("REDIS_OUTPUT_KEY", ""), "a non-empty key name"
            )
        redis_url = environ.get("REDIS_URL", "").strip() or None
        if redis_url is not None and urlsplit(redis_url).scheme not in {"redis", "rediss", "unix"}:
            raise SettingsError("REDIS_URL", redis_url, "a redis://, rediss:// or unix:// URL")
        return cls(
            output_key=output_key,
            redis_url=redis_url,
            redis_host=environ.get("REDIS_HOST", "").strip() or "localhost",
            redis_port=_port(environ.get("REDIS_PORT", "6379")),
            redis_password=environ.get("REDIS_PASSWORD") or None,
            refresh_seconds=_positive(
                "REFRESH_SECONDS", environ, DEFAULT_REFRESH_SECONDS, MIN_REFRESH_SECONDS
            ),
            history_minutes=_positive("HISTORY_MINUTES", environ, DEFAULT_HISTORY_MINUTES, 0.0),
        )

    @property
    def redis_location(self) -> str:
        """Where Redis is, for messages: host:port or the URL without its credentials."""
        if self.redis_url is None:
            return f"{self.redis_host}:{self.redis_port}"
        parts = urlsplit(self.redis_url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}{parts.path}"

    @property
    def refresh_ms(self) -> int:
        """The refresh period in milliseconds."""
        return int(self.refresh_seconds * 1000)

    @property
    def history_ms(self) -> int:
        """The history window in milliseconds."""
        return int(self.history_minutes * 60_000)


def _port(raw: str) -> int:
    try:
        port = int(raw.strip())
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise SettingsError("REDIS_PORT", raw, "an integer from 1 to 65535")
    return port


def _positive(variable: str, environ: Mapping[str, str], default: float, minimum: float) -> float:
    raw = environ.get(variable, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0 and value >= minimum):
        bound = f">= {minimum:g}" if minimum > 0 else "> 0"
        raise SettingsError(variable, raw, f"a number {bound}")
    return value
