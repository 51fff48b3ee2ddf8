"""Settings from environment variables, parsed and validated once at start-up."""

from __future__ import annotations

import math
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")
E = TypeVar("E", bound=StrEnum)

DEFAULT_FUNCTION_PATH = "/opt/usermodule.py"


class Trigger(StrEnum):
    """What wakes the loop up."""

    AUTO = "auto"
    NOTIFY = "notify"
    POLL = "poll"
    STREAM = "stream"


class InvokeOn(StrEnum):
    """When the handler is called."""

    CHANGE = "change"
    INTERVAL = "interval"


class LogFormat(StrEnum):
    """How log lines look."""

    TEXT = "text"
    JSON = "json"


class ConfigError(ValueError):
    """An environment variable holds a value the runtime cannot use."""

    def __init__(self, name: str, value: str | None, expected: str) -> None:
        shown = "(not set)" if value is None else repr(value)
        super().__init__(f"invalid setting {name}={shown}: expected {expected}")
        self.name = name


@dataclass(frozen=True, slots=True)
class RedisConfig:
    """Where Redis is: REDIS_URL if set, else REDIS_HOST/REDIS_PORT; REDIS_PASSWORD for both."""

    host: str = "localhost"
    port: int = 6379
    url: str | None = None
    password: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> RedisConfig:
        """Parse the connection variables; raise ConfigError naming a bad one."""
        reader = _Reader(environ)
        return cls(
            host=reader.text("REDIS_HOST", "localhost") or "localhost",
            port=reader.integer("REDIS_PORT", 6379, 1, 65535),
            url=reader.redis_url("REDIS_URL"),
            password=reader.text("REDIS_PASSWORD", None) or None,
        )


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the runtime is told by its environment."""

    output_key: str
    redis: RedisConfig = RedisConfig()
    input_key: str = "metrics"
    interval: float = 5.0
    trigger: Trigger = Trigger.AUTO
    invoke_on: InvokeOn = InvokeOn.CHANGE
    function_path: str = DEFAULT_FUNCTION_PATH
    function_zip: str | None = None
    function_handler: str | None = None
    handler_timeout: float | None = None
    state_key: str | None = None
    history_key: str | None = None
    history_length: int = 1000
    error_key: str | None = None
    lease_key: str | None = None
    lease_ttl: float = 10.0
    stream_group: str = "serverless-runtime"
    stream_consumer: str = "runtime"
    stream_claim_idle: float = 30.0
    http_port: int = 8080
    http_host: str = "0.0.0.0"  # noqa: S104 - a pod's probes reach it on the pod IP
    log_format: LogFormat = LogFormat.TEXT
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Parse and validate the environment; raise ConfigError naming the first bad variable."""
        reader = _Reader(environ)
        output_key = reader.text("REDIS_OUTPUT_KEY", None)
        if not output_key:
            raise ConfigError("REDIS_OUTPUT_KEY", environ.get("REDIS_OUTPUT_KEY"), "a key name")
        interval = reader.seconds("INTERVAL", 5.0)
        handler_timeout = reader.optional_seconds("HANDLER_TIMEOUT")
        # A call does not renew the lease, so the lease must outlast the longest call.
        lease_ttl = reader.seconds("LEASE_TTL", 2 * interval + (handler_timeout or 0))
        if lease_ttl <= interval:
            expected = f"more seconds than INTERVAL ({interval:g}): it is renewed once per tick"
            raise ConfigError("LEASE_TTL", environ.get("LEASE_TTL"), expected)
        return cls(
            output_key=output_key,
            redis=RedisConfig.from_env(environ),
            input_key=reader.text("REDIS_INPUT_KEY", "metrics") or "metrics",
            interval=interval,
            trigger=reader.choice("TRIGGER", Trigger, Trigger.AUTO),
            invoke_on=reader.choice("INVOKE_ON", InvokeOn, InvokeOn.CHANGE),
            function_path=reader.text("FUNCTION_PATH", DEFAULT_FUNCTION_PATH)
            or DEFAULT_FUNCTION_PATH,
            function_zip=reader.text("FUNCTION_ZIP", None) or None,
            function_handler=reader.handler_ref("FUNCTION_HANDLER"),
            handler_timeout=handler_timeout,
            state_key=reader.derived_key("STATE_KEY", output_key, "state"),
            history_key=reader.derived_key("HISTORY_KEY", output_key, "history"),
            history_length=reader.integer("HISTORY_LENGTH", 1000, 1, 10_000_000),
            error_key=reader.derived_key("ERROR_KEY", output_key, "error"),
            lease_key=reader.derived_key("LEASE_KEY", output_key, "lease"),
            lease_ttl=lease_ttl,
            stream_group=reader.text("STREAM_GROUP", None) or "serverless-runtime",
            stream_consumer=reader.text("STREAM_CONSUMER", None) or socket.gethostname(),
            stream_claim_idle=reader.seconds("STREAM_CLAIM_IDLE", 30.0),
            http_port=reader.integer("HTTP_PORT", 8080, 0, 65535),
            http_host=reader.text("HTTP_HOST", "0.0.0.0") or "0.0.0.0",  # noqa: S104
            log_format=reader.choice("LOG_FORMAT", LogFormat, LogFormat.TEXT),
            log_level=reader.log_level("LOG_LEVEL"),
        )

    @property
    def stream_mode(self) -> bool:
        """The input key is a stream shared by the replicas through a consumer group."""
        return self.trigger is Trigger.STREAM

    @property
    def digest_key(self) -> str:
        """Where the digest of the last processed input is kept."""
        return f"{self.output_key}:input-digest"


# Every variable Settings.from_env reads; manifests are checked against this set.
ENV_VARS = frozenset(
    {
        "REDIS_HOST",
        "REDIS_PORT",
        "REDIS_INPUT_KEY",
        "REDIS_OUTPUT_KEY",
        "INTERVAL",
        "REDIS_URL",
        "REDIS_PASSWORD",
        "TRIGGER",
        "INVOKE_ON",
        "FUNCTION_PATH",
        "FUNCTION_ZIP",
        "FUNCTION_HANDLER",
        "HANDLER_TIMEOUT",
        "STATE_KEY",
        "HISTORY_KEY",
        "HISTORY_LENGTH",
        "ERROR_KEY",
        "LEASE_KEY",
        "LEASE_TTL",
        "STREAM_GROUP",
        "STREAM_CONSUMER",
        "STREAM_CLAIM_IDLE",
        "HTTP_PORT",
        "HTTP_HOST",
        "LOG_FORMAT",
        "LOG_LEVEL",
    }
)

_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class _Reader:
    """Typed access to the environment, raising ConfigError with the expected form."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._env = environ

    def text(self, name: str, default: str | None) -> str | None:
        value = self._env.get(name)
        return default if value is None else value.strip()

    def _parse(self, name: str, default: T, expected: str, parse: Callable[[str], T]) -> T:
        raw = self._env.get(name)
        if raw is None or not raw.strip():
            return default
        try:
            return parse(raw.strip())
        except ValueError:
            raise ConfigError(name, raw, expected) from None

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        expected = f"a whole number from {low} to {high}"

        def parse(raw: str) -> int:
            value = int(raw)
            if not low <= value <= high:
                raise ValueError(raw)
            return value

        return self._parse(name, default, expected, parse)

    def seconds(self, name: str, default: float) -> float:
        return self._parse(name, default, "a number of seconds greater than 0", _positive_float)

    def optional_seconds(self, name: str) -> float | None:
        expected = "a number of seconds greater than 0, or empty for no limit"
        return self._parse(name, None, expected, _positive_float)

    def choice(self, name: str, kind: type[E], default: E) -> E:
        names = "|".join(str(member) for member in kind)
        return self._parse(name, default, f"one of {names}", lambda raw: kind(raw.lower()))

    def log_level(self, name: str) -> str:
        def parse(raw: str) -> str:
            if raw.upper() not in _LOG_LEVELS:
                raise ValueError(raw)
            return raw.upper()

        return self._parse(name, "INFO", f"one of {'|'.join(_LOG_LEVELS)}", parse)

    def redis_url(self, name: str) -> str | None:
        def parse(raw: str) -> str:
            parts = urlsplit(raw)
            if parts.scheme not in ("redis", "rediss", "unix"):
                raise ValueError(raw)
            if not (parts.hostname or parts.path):
                raise ValueError(raw)
            _ = parts.port  # raises ValueError on a bad port
            return raw

        expected = "redis://[user:password@]host[:port][/db] or rediss://…"
        return self._parse(name, None, expected, parse)

    def handler_ref(self, name: str) -> str | None:
        def parse(raw: str) -> str:
            module, colon, attr = raw.partition(":")
            if not all(part.isidentifier() for part in module.split(".")):
                raise ValueError(raw)
            if colon and not attr.isidentifier():
                raise ValueError(raw)
            return raw

        return self._parse(name, None, "package.module or package.module:function", parse)

    def derived_key(self, name: str, output_key: str, suffix: str) -> str | None:
        """A key named after the output key by default; set empty to disable it."""
        raw = self._env.get(name)
        if raw is None:
            return f"{output_key}:{suffix}"
        return raw.strip() or None


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(raw)
    return value
