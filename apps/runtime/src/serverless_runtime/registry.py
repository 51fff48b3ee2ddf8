"""The function registry: each runtime records its key layout in one hash the dashboard lists.

Standard library only at import time: the dashboard image installs this package without its
dependencies and imports this module to read the records.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from serverless_runtime.storage.keys import (
    DEFAULT_FUNCTIONS_KEY as DEFAULT_FUNCTIONS_KEY,  # read by the dashboard
)

if TYPE_CHECKING:
    import redis

    from serverless_runtime.config import Settings

log = logging.getLogger(__name__)

# A record is a few hundred bytes; anything far larger in the hash is not one of ours.
MAX_RECORD_BYTES = 16_384
# HTTP_HOST values that listen on every address: the record names this host's own address.
_WILDCARDS = frozenset({"", "0.0.0.0", "::"})  # noqa: S104 - compared, never bound here
# A load failure's message in the record is cut to this many characters.
MAX_FAILURE_MESSAGE = 1000


@dataclass(frozen=True, slots=True)
class LoadFailure:
    """The newest version of the function failed to load; `running`: the previous one runs."""

    mtime: str  # the failed file's modification time, ISO 8601 in UTC
    digest: str  # of the failed file's content
    kind: str  # the error kind, as in the error record
    message: str
    running: bool

    def describe(self) -> str:
        """One line for people: when the version is from, why it failed, what runs instead."""
        try:
            when = datetime.fromisoformat(self.mtime).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
            shown = f"{when} UTC"
        except ValueError:
            shown = self.mtime
        instead = "running the previous version" if self.running else "no version is running"
        return f"version from {shown} failed to load: {self.message}; {instead}"

    @classmethod
    def parse(cls, raw: Any) -> LoadFailure | None:
        """Read the record's field leniently; None when it is not a load failure."""
        if not isinstance(raw, dict):
            return None
        text = _texts(raw)
        if "mtime" not in text or "message" not in text:
            return None
        return cls(
            mtime=text["mtime"],
            digest=text.get("digest", ""),
            kind=text.get("kind", ""),
            message=text["message"][:MAX_FAILURE_MESSAGE],
            running=raw.get("running") is True,
        )


@dataclass(frozen=True, slots=True)
class FunctionRecord:
    """One function as the registry holds it: field = output key, value = this as JSON."""

    output: str
    input: str
    # "key" (a JSON document read on change or tick) or "stream" (TRIGGER=stream).
    input_kind: str = "key"
    history: str | None = None
    error: str | None = None
    state: str | None = None
    trigger: str = "auto"
    invoke_on: str = "change"
    # FUNCTION_PATH, or FUNCTION_ZIP for a package; `handler` as FUNCTION_HANDLER names it.
    function: str = ""
    handler: str = ":handler"
    registered_at: str = ""
    # Where this replica's /metrics answers (HTTP_PORT), for the dashboard's operations view;
    # "" when the HTTP server is off. The replica that registered last.
    metrics: str = ""
    # The newest version failed to load (cleared when a version loads); None when none did.
    load_failure: LoadFailure | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        now: datetime | None = None,
        own_address: Callable[[], str | None] | None = None,
    ) -> FunctionRecord:
        """The record of the function these settings run."""
        moment = now or datetime.now(UTC)
        return cls(
            output=settings.keys.output,
            input=settings.keys.input,
            input_kind="stream" if settings.stream_mode else "key",
            history=settings.keys.history,
            error=settings.keys.error,
            state=settings.keys.state,
            trigger=str(settings.trigger),
            invoke_on=str(settings.invoke_on),
            function=settings.function_zip or settings.function_path,
            handler=str(settings.function_handler),
            registered_at=moment.isoformat(timespec="seconds"),
            metrics=metrics_url(settings.http_host, settings.http_port, own_address or _address),
        )

    @classmethod
    def parse(cls, output: str, raw: Any) -> FunctionRecord | None:
        """Read a hash value leniently; None when it is not a record for `output`."""
        if not isinstance(raw, str) or len(raw) > MAX_RECORD_BYTES:
            return None
        try:
            value = json.loads(raw)
        except (ValueError, RecursionError):
            return None
        if not isinstance(value, dict) or value.get("output") != output:
            return None
        text = _texts(value)
        # A field missing (or not a string) reads as "", or None where the key may be absent.
        read: dict[str, Any] = {
            f.name: text.get(f.name, "" if f.type == "str" else None) for f in fields(cls)
        }
        read.update(
            output=output,
            input_kind=read["input_kind"] or "key",
            load_failure=LoadFailure.parse(value.get("load_failure")),
        )
        return cls(**read)


def metrics_url(host: str, port: int, own_address: Callable[[], str | None]) -> str:
    """The /metrics URL others reach this process at; "" when the HTTP server is off."""
    if port == 0:
        return ""
    address = own_address() if host in _WILDCARDS else host
    if not address:
        return ""
    shown = f"[{address}]" if ":" in address else address
    return f"http://{shown}:{port}/metrics"


def _address() -> str | None:
    # In a pod the kubelet maps the pod's hostname to its IP in /etc/hosts: no DNS is asked.
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return None


class Registration:
    """This function's record in FUNCTIONS_KEY: written whenever Redis answers again, and when
    the newest version fails to load or a version loads after one did."""

    def __init__(self, client: redis.Redis, functions_key: str, record: FunctionRecord) -> None:
        self._client = client
        self._key = functions_key
        self.record = record

    def register(self) -> bool:
        """HSET the record; a Redis error is logged, never raised (tried again at next connect)."""
        import redis  # the runtime's dependency; the dashboard never calls this

        output, key = self.record.output, self._key
        try:
            self._client.hset(key, output, self.record.to_json())
        except (redis.RedisError, redis.exceptions.RedisClusterException) as exc:  # no slot master
            log.warning(
                "cannot record %r in the function registry %r (%s: %s); running anyway, "
                "tried again when Redis next answers after not answering",
                output,
                key,
                type(exc).__name__,
                exc,
            )
            return False
        log.info("recorded %r in the function registry %r", output, key)
        return True

    def load_failed(self, failure: LoadFailure | None) -> None:
        """The newest version failed to load (None: a version loaded); written if it changed."""
        if failure == self.record.load_failure:
            return
        self.record = replace(self.record, load_failure=failure)
        self.register()


def _texts(value: Mapping[str, Any]) -> dict[str, str]:
    # Only string values are taken: a record written by hand with odd types must not crash a reader.
    return {name: item for name, item in value.items() if isinstance(item, str)}
