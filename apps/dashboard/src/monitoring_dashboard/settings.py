"""Dashboard settings, parsed once from environment variables into a frozen object."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from serverless_runtime.registry import DEFAULT_FUNCTIONS_KEY
from serverless_runtime.storage import redis_sentinel, redis_url
from serverless_runtime.storage.keys import KeyLayout

DEFAULT_REFRESH_SECONDS = 5.0
DEFAULT_HISTORY_MINUTES = 60.0
# Below this the browser would poll faster than a callback can usefully answer.
MIN_REFRESH_SECONDS = 0.2
# Upper bounds that catch typos (1e308) before they overflow a millisecond count.
MAX_REFRESH_SECONDS = 3600.0
MAX_HISTORY_MINUTES = 7 * 24 * 60.0
# As the runtime: Redis allows a db below the server's `databases` (16 by default), which a
# client cannot know; past 65535 it is a typo.
# Where create_app leaves the settings for page layouts (Flask's app config).
SETTINGS_CONFIG_KEY = "MONITORING_DASHBOARD_SETTINGS"


# Every variable the dashboard reads (LOG_LEVEL in its CLI); the manifests are checked against it.
ENV_VARS = frozenset(
    {
        "REDIS_OUTPUT_KEY",
        "HISTORY_KEY",
        "ERROR_KEY",
        "REDIS_URL",
        "REDIS_HOST",
        "REDIS_PORT",
        "REDIS_PASSWORD",
        *redis_sentinel.VARIABLES,
        "REFRESH_SECONDS",
        "HISTORY_MINUTES",
        "LOG_LEVEL",
        "FUNCTIONS_KEY",
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
    # Kept out of repr(): the URL may hold a password, and a repr can end up in a log.
    redis_url: str | None = field(default=None, repr=False)
    redis_host: str = "localhost"
    redis_port: int = 6379
    redis_password: str | None = field(default=None, repr=False)
    # REDIS_SENTINELS and REDIS_SENTINEL_MASTER: the master is asked of the sentinels.
    sentinels: redis_sentinel.Sentinels | None = None
    refresh_seconds: float = DEFAULT_REFRESH_SECONDS
    history_minutes: float = DEFAULT_HISTORY_MINUTES
    # The runtime's key names (HISTORY_KEY, ERROR_KEY); None: all named after output_key.
    layout: KeyLayout | None = None
    # The runtimes' registry hash (FUNCTIONS_KEY, as for the runtime); None: not read.
    functions_key: str | None = DEFAULT_FUNCTIONS_KEY

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Build settings from a mapping such as os.environ; raise SettingsError on a bad value."""
        output_key = environ.get("REDIS_OUTPUT_KEY", "").strip()
        if not output_key:
            raise SettingsError(
                "REDIS_OUTPUT_KEY", environ.get("REDIS_OUTPUT_KEY", ""), "a non-empty key name"
            )
        url = _redis_url(environ.get("REDIS_URL", ""))
        try:
            sentinels = redis_sentinel.from_env(environ)
        except redis_sentinel.Invalid as exc:
            raise SettingsError(exc.name, exc.value or "", exc.expected) from None
        return cls(
            output_key=output_key,
            layout=KeyLayout.from_env(environ),
            redis_url=url,
            sentinels=sentinels,
            redis_host=environ.get("REDIS_HOST", "").strip() or "localhost",
            redis_port=_port(environ.get("REDIS_PORT", "6379")),
            redis_password=environ.get("REDIS_PASSWORD") or None,
            refresh_seconds=_positive(
                "REFRESH_SECONDS",
                environ,
                DEFAULT_REFRESH_SECONDS,
                MIN_REFRESH_SECONDS,
                MAX_REFRESH_SECONDS,
            ),
            history_minutes=_positive(
                "HISTORY_MINUTES", environ, DEFAULT_HISTORY_MINUTES, 0.0, MAX_HISTORY_MINUTES
            ),
            functions_key=_optional_key(environ.get("FUNCTIONS_KEY"), DEFAULT_FUNCTIONS_KEY),
        )

    @property
    def keys(self) -> KeyLayout:
        """Where the runtime writes: the output key, its history stream and its error key."""
        return self.layout or KeyLayout.for_output(self.output_key)

    @property
    def redis_location(self) -> str:
        """Where Redis is, for messages: host:port, the URL without credentials, or the master."""
        if self.sentinels is not None:
            return self.sentinels.describe()
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


def _optional_key(raw: str | None, default: str) -> str | None:
    """Unset: the default; set empty: None (disabled), as the runtime reads it."""
    return default if raw is None else raw.strip() or None


def _port(raw: str) -> int:
    try:
        port = int(raw.strip())
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise SettingsError("REDIS_PORT", raw, "an integer from 1 to 65535")
    return port


def _positive(
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
        raise SettingsError(variable, raw, f"a number {bound} and <= {maximum:g}")
    return value


def _redis_url(raw: str) -> str | None:
    """REDIS_URL checked as redis-py reads it: a bad port or db fails here, not in gunicorn."""
    url = raw.strip()
    if not url:
        return None
    try:
        redis_url.check(url)
    except ValueError:
        # Shown without its password: this line goes to the pod's log.
        raise SettingsError("REDIS_URL", redis_url.redact(url), redis_url.EXPECTED) from None
    return url
