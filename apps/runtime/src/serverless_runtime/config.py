"""Settings from environment variables, parsed and validated once at start-up."""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

from serverless_runtime.function.handler_ref import FORMS, HandlerRef
from serverless_runtime.storage import redis_cluster, redis_sentinel, redis_settings
from serverless_runtime.storage.keys import DEFAULT_FUNCTIONS_KEY, DERIVED, KeyLayout

# Exported here too: `from serverless_runtime.config import ConfigError, RedisConfig` keeps working.
from serverless_runtime.storage.redis_settings import ConfigError as ConfigError
from serverless_runtime.storage.redis_settings import RedisConfig as RedisConfig

T = TypeVar("T")
D = TypeVar("D")
E = TypeVar("E", bound=StrEnum)

DEFAULT_FUNCTION_PATH = "/opt/usermodule.py"
# Upper bounds that catch typos (INTERVAL=1e308) before they overflow a timer or a Redis PX:
# one day for a period or a timeout; three days for LEASE_TTL, which its default
# (2 x INTERVAL + HANDLER_TIMEOUT) can reach.
MAX_SECONDS = 86_400.0
MAX_LEASE_SECONDS = 3 * MAX_SECONDS
# Sized for the pods' 128 MiB memory limit: a JSON document takes several times its size once
# parsed into Python objects.
DEFAULT_MAX_INPUT_BYTES = 1 << 20
DEFAULT_MAX_OUTPUT_BYTES = 1 << 20
DEFAULT_MAX_STATE_BYTES = 8 << 20
# Rebuilding the state after a node loss replays the journal: a few seconds at most, so that the
# next input is not held up for long (the snapshot policy keeps the replay's estimate under it).
DEFAULT_MAX_REPLAY_SECONDS = 5.0
# pip downloading and unpacking NEW_REQUERIMENTS at start (numpy and pandas: tens of MB).
DEFAULT_NEW_REQUIREMENTS_TIMEOUT = 300.0


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


def redis_config(environ: Mapping[str, str]) -> RedisConfig:
    """Where Redis is (read by storage/redis_settings.py); ConfigError names a bad variable."""
    try:
        return RedisConfig.from_env(environ, cluster=True)
    except redis_settings.Invalid as exc:
        raise ConfigError(exc.name, exc.value, exc.expected) from None


def cluster_layout(environ: Mapping[str, str], stream: bool) -> KeyLayout:
    """The key layout in a Redis Cluster: every key a commit's script writes shares the output
    key's hash slot (a cluster refuses a script across slots); ConfigError names one that
    would not."""
    output = (environ.get("REDIS_OUTPUT_KEY") or "").strip()
    try:
        layout = KeyLayout.from_env(environ, cluster=True)
    except ValueError:
        expected = (
            "a key name without '}' outside a hash tag in a Redis Cluster: no other key could "
            "share its hash slot (or give it a tag, such as '{name}')"
        )
        raise ConfigError("REDIS_OUTPUT_KEY", output, expected) from None
    home = redis_cluster.slot(output)
    for variable, suffix in DERIVED.items():
        raw = environ.get(variable)
        if raw is not None and raw.strip() and redis_cluster.slot(raw.strip()) != home:
            example = redis_cluster.tagged(output, suffix)
            expected = f"a key in REDIS_OUTPUT_KEY's hash slot in a Redis Cluster, e.g. {example!r}"
            raise ConfigError(variable, raw, expected)
    if stream and redis_cluster.slot(layout.input) != home:
        expected = (
            "a stream in REDIS_OUTPUT_KEY's hash slot with TRIGGER=stream in a Redis Cluster "
            f"(e.g. {redis_cluster.tagged(output, 'events')!r}): the commit acknowledges the "
            "entry in the same script"
        )
        raise ConfigError("REDIS_INPUT_KEY", layout.input, expected)
    return layout


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the runtime is told by its environment."""

    keys: KeyLayout
    redis: RedisConfig = field(default_factory=RedisConfig)
    interval: float = 5.0
    trigger: Trigger = Trigger.AUTO
    invoke_on: InvokeOn = InvokeOn.CHANGE
    function_path: str = DEFAULT_FUNCTION_PATH
    function_zip: str | None = None
    function_handler: HandlerRef = field(default_factory=HandlerRef)
    handler_timeout: float | None = None
    history_length: int = 1000
    lease_ttl: float = 10.0
    stream_group: str = "serverless-runtime"
    stream_consumer: str = "runtime"
    stream_claim_idle: float = 30.0
    http_port: int = 8080
    http_host: str = "0.0.0.0"  # noqa: S104 - a pod's probes reach it on the pod IP
    log_format: LogFormat = LogFormat.TEXT
    log_level: str = "INFO"
    max_input_bytes: int = DEFAULT_MAX_INPUT_BYTES
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES
    max_state_bytes: int = DEFAULT_MAX_STATE_BYTES
    # A snapshot is written before replaying the journal would take longer than this.
    max_replay_seconds: float = DEFAULT_MAX_REPLAY_SECONDS
    # A token: when it differs from the one recorded with the state, the state starts empty once.
    state_reset: str | None = None
    stream_max_deliveries: int = 3
    # Key mode: an input whose call ended the process this many times is poison.
    max_deaths: int = 3
    # WAIT after each commit for this many replicas (0: not asked), at most this long.
    commit_replicas: int = 0
    commit_replicas_timeout: float = 1.0
    shutdown_timeout: float = 20.0
    load_timeout: float = 30.0
    # The registry hash the dashboard lists functions from; None: not recorded.
    functions_key: str | None = DEFAULT_FUNCTIONS_KEY
    new_requirements: tuple[str, ...] = ()
    new_requirements_dir: str | None = None
    new_requirements_timeout: float = DEFAULT_NEW_REQUIREMENTS_TIMEOUT

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Parse and validate the environment; raise ConfigError naming the first bad variable."""
        reader = _Reader(environ)
        output_key = reader.text("REDIS_OUTPUT_KEY")
        if not output_key:
            raise ConfigError("REDIS_OUTPUT_KEY", environ.get("REDIS_OUTPUT_KEY"), "a key name")
        function_zip = reader.text("FUNCTION_ZIP")
        handler = reader.handler_ref("FUNCTION_HANDLER")
        if handler.module is not None and function_zip is None:
            # A single file is always imported as `usermodule`: a module part would be ignored.
            expected = ":function (a module is named only for a FUNCTION_ZIP package)"
            raise ConfigError("FUNCTION_HANDLER", environ.get("FUNCTION_HANDLER"), expected)
        interval = reader.seconds("INTERVAL", 5.0)
        handler_timeout = reader.seconds("HANDLER_TIMEOUT", None)
        commit_replicas = reader.integer("COMMIT_REPLICAS", 0, 0, 100)
        # Below the 5 s socket timeout, which would otherwise cut the WAIT short.
        commit_wait = reader.seconds("COMMIT_REPLICAS_TIMEOUT", 1.0, 4.0)
        # A call does not renew the lease, so the lease must outlast the longest call (and the
        # WAIT for replicas after its commit).
        longest = (handler_timeout or 0) + (commit_wait if commit_replicas else 0)
        lease_ttl = reader.seconds("LEASE_TTL", 2 * interval + longest, MAX_LEASE_SECONDS)
        if lease_ttl <= interval:
            expected = f"more seconds than INTERVAL ({interval:g}): it is renewed once per tick"
            raise ConfigError("LEASE_TTL", environ.get("LEASE_TTL"), expected)
        trigger = reader.choice("TRIGGER", Trigger, Trigger.AUTO)
        invoke_on = reader.choice("INVOKE_ON", InvokeOn, InvokeOn.CHANGE)
        if trigger is Trigger.STREAM and invoke_on is InvokeOn.INTERVAL:
            # Each stream entry is one input, handled once: there is no "current input" to
            # call again on a tick.
            expected = "change (or unset) with TRIGGER=stream: each entry is handled once"
            raise ConfigError("INVOKE_ON", environ.get("INVOKE_ON"), expected)
        redis = redis_config(environ)
        if redis.cluster_nodes is not None:
            keys = cluster_layout(environ, trigger is Trigger.STREAM)
        else:
            keys = KeyLayout.from_env(environ)
        settings = cls(
            keys=keys,
            redis=redis,
            interval=interval,
            trigger=trigger,
            invoke_on=invoke_on,
            function_path=reader.text("FUNCTION_PATH") or DEFAULT_FUNCTION_PATH,
            function_zip=function_zip,
            function_handler=handler,
            handler_timeout=handler_timeout,
            history_length=reader.integer("HISTORY_LENGTH", 1000, 1, 10_000_000),
            lease_ttl=lease_ttl,
            stream_group=reader.text("STREAM_GROUP") or "serverless-runtime",
            stream_consumer=reader.text("STREAM_CONSUMER") or socket.gethostname(),
            stream_claim_idle=reader.seconds("STREAM_CLAIM_IDLE", 30.0),
            http_port=reader.integer("HTTP_PORT", 8080, 0, 65535),
            http_host=reader.host("HTTP_HOST", "0.0.0.0"),  # noqa: S104
            log_format=reader.choice("LOG_FORMAT", LogFormat, LogFormat.TEXT),
            log_level=reader.log_level("LOG_LEVEL"),
            max_input_bytes=reader.integer("MAX_INPUT_BYTES", DEFAULT_MAX_INPUT_BYTES, 1, 2**31),
            max_output_bytes=reader.integer("MAX_OUTPUT_BYTES", DEFAULT_MAX_OUTPUT_BYTES, 1, 2**31),
            max_state_bytes=reader.integer("MAX_STATE_BYTES", DEFAULT_MAX_STATE_BYTES, 1, 2**31),
            max_replay_seconds=reader.seconds("MAX_REPLAY_SECONDS", DEFAULT_MAX_REPLAY_SECONDS),
            state_reset=reader.text("STATE_RESET"),
            stream_max_deliveries=reader.integer("STREAM_MAX_DELIVERIES", 3, 1, 1000),
            max_deaths=reader.integer("MAX_DEATHS", 3, 1, 1000),
            commit_replicas=commit_replicas,
            commit_replicas_timeout=commit_wait,
            shutdown_timeout=reader.seconds("SHUTDOWN_TIMEOUT", 20.0),
            load_timeout=reader.seconds("LOAD_TIMEOUT", 30.0),
            functions_key=reader.optional_text("FUNCTIONS_KEY", DEFAULT_FUNCTIONS_KEY),
            new_requirements=reader.requirements("NEW_REQUERIMENTS"),
            new_requirements_dir=reader.text("NEW_REQUERIMENTS_DIR"),
            new_requirements_timeout=reader.seconds(
                "NEW_REQUERIMENTS_TIMEOUT", DEFAULT_NEW_REQUIREMENTS_TIMEOUT
            ),
        )
        consumer = settings.stream_consumer if settings.stream_mode else None
        clash = settings.keys.clash(consumer, (("FUNCTIONS_KEY", settings.functions_key),))
        if clash is not None:
            # Two uses of one key corrupt each other (a function writing its own input calls
            # itself in a loop): refused before anything is written.
            name, key, why = clash
            raise ConfigError(name, key, f"a key no other key of this function uses ({why})")
        return settings

    @property
    def stream_mode(self) -> bool:
        """The input key is a stream shared by the replicas through a consumer group."""
        return self.trigger is Trigger.STREAM


# Every variable Settings.from_env reads; manifests are checked against this set.
ENV_VARS = frozenset(
    """
    REDIS_HOST REDIS_PORT REDIS_INPUT_KEY REDIS_OUTPUT_KEY INTERVAL REDIS_URL REDIS_PASSWORD
    TRIGGER INVOKE_ON FUNCTION_PATH FUNCTION_ZIP FUNCTION_HANDLER HANDLER_TIMEOUT STATE_KEY
    HISTORY_KEY HISTORY_LENGTH ERROR_KEY LEASE_KEY LEASE_TTL STREAM_GROUP STREAM_CONSUMER
    STREAM_CLAIM_IDLE HTTP_PORT HTTP_HOST LOG_FORMAT LOG_LEVEL MAX_INPUT_BYTES MAX_OUTPUT_BYTES
    MAX_STATE_BYTES MAX_REPLAY_SECONDS STATE_RESET STREAM_MAX_DELIVERIES MAX_DEATHS
    COMMIT_REPLICAS COMMIT_REPLICAS_TIMEOUT SHUTDOWN_TIMEOUT LOAD_TIMEOUT FUNCTIONS_KEY
    NEW_REQUERIMENTS NEW_REQUERIMENTS_DIR NEW_REQUERIMENTS_TIMEOUT
    """.split()  # noqa: SIM905 - a list of names, read as one
) | frozenset(redis_sentinel.VARIABLES | redis_cluster.VARIABLES)


_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class _Reader:
    """Typed access to the environment, raising ConfigError with the expected form."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._env = environ

    def text(self, name: str) -> str | None:
        """Unset or blank: None."""
        return (self._env.get(name) or "").strip() or None

    def optional_text(self, name: str, default: str) -> str | None:
        """Unset: the default; set empty (or blank): None, which disables what it names."""
        value = self._env.get(name)
        return default if value is None else value.strip() or None

    def _parse(
        self,
        name: str,
        default: D,
        expected: str,
        parse: Callable[[str], T],
        valid: Callable[[T], bool] = lambda _: True,
    ) -> T | D:
        raw = self._env.get(name)
        if raw is None or not raw.strip():
            return default
        try:
            value = parse(raw.strip())
        except ValueError:
            raise ConfigError(name, raw, expected) from None
        if not valid(value):
            raise ConfigError(name, raw, expected)
        return value

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        expected = f"a whole number from {low} to {high}"
        return self._parse(name, default, expected, int, lambda value: low <= value <= high)

    def seconds(self, name: str, default: D, maximum: float = MAX_SECONDS) -> float | D:
        """A default of None: unset (or empty) means no limit."""
        expected = f"a number of seconds greater than 0 and at most {maximum:g}"
        if default is None:
            expected += ", or empty for no limit"
        # The bounds refuse NaN and infinity too: every comparison with NaN is false.
        return self._parse(name, default, expected, float, lambda value: 0 < value <= maximum)

    def host(self, name: str, default: str) -> str:
        expected = "an IP address (such as 0.0.0.0 or ::) or a host name"
        return self._parse(name, default, expected, str, redis_sentinel.is_host)

    def choice(self, name: str, kind: type[E], default: E) -> E:
        names = "|".join(str(member) for member in kind)
        return self._parse(name, default, f"one of {names}", lambda raw: kind(raw.lower()))

    def log_level(self, name: str) -> str:
        expected = f"one of {'|'.join(_LOG_LEVELS)}"
        return self._parse(name, "INFO", expected, str.upper, _LOG_LEVELS.__contains__)

    def requirements(self, name: str) -> tuple[str, ...]:
        """Requirement specifiers separated by white space, as `pip install $NAME` took them."""

        def parse(raw: str) -> tuple[str, ...]:
            specifiers = tuple(raw.split())
            if any(specifier.startswith("-") for specifier in specifiers):
                raise ValueError(raw)  # pip options would change where and how it installs
            return specifiers

        expected = (
            "requirement specifiers separated by spaces, such as 'numpy pandas==2.2.3' "
            "(no pip options: pip reads its PIP_* variables, such as PIP_INDEX_URL)"
        )
        return self._parse(name, (), expected, parse)

    def handler_ref(self, name: str) -> HandlerRef:
        return self._parse(name, HandlerRef(), FORMS, HandlerRef.parse)


def log_settings(environ: Mapping[str, str]) -> tuple[LogFormat, str]:
    """LOG_FORMAT and LOG_LEVEL, for commands that read no other setting (`collect`)."""
    reader = _Reader(environ)
    return reader.choice("LOG_FORMAT", LogFormat, LogFormat.TEXT), reader.log_level("LOG_LEVEL")
