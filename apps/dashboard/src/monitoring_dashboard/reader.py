"""All Redis reads of the dashboard: one pipelined round trip per refresh."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import redis
from serverless_runtime.keys import KeyLayout

from monitoring_dashboard.history_cache import HistoryCache
from monitoring_dashboard.output_keys import numeric_values
from monitoring_dashboard.reading import FunctionError, Point, ReadError, Snapshot

log = logging.getLogger(__name__)


class RedisReader:
    """Reads the runtime's keys for one function: output, history stream and error record."""

    def __init__(self, client: redis.Redis, keys: KeyLayout, history_ms: int) -> None:
        self.client = client
        self.output_key = keys.output
        # None when the runtime is told not to write them (HISTORY_KEY / ERROR_KEY set empty).
        self.history_key = keys.history
        self.error_key = keys.error
        self.history_ms = history_ms
        self._cache = HistoryCache()
        # gunicorn's threads share one reader, and the cache must see reads in order.
        self._lock = threading.Lock()
        self._failing = False

    def read(self) -> Snapshot:
        """Fetch output, new history entries, error and Redis's clock; raise ReadError."""
        with self._lock:
            try:
                snapshot = self._read()
            except redis.RedisError as exc:
                # One line when Redis goes away, one when it is back: not one per refresh.
                if not self._failing:
                    log.warning("cannot read Redis: %s: %s", type(exc).__name__, exc)
                self._failing = True
                raise ReadError(f"{type(exc).__name__}: {exc}") from exc
            if self._failing:
                log.info("Redis is reachable again")
            self._failing = False
            return snapshot

    def _read(self) -> Snapshot:
        since = str(max(int(time.time() * 1000) - self.history_ms, 0))
        after = self._cache.fetch_after
        history_key, error_key = self.history_key, self.error_key
        pipe = self.client.pipeline(transaction=False)
        pipe.time()
        pipe.get(self.output_key)
        if history_key is not None:
            pipe.xrevrange(history_key, count=1)
            pipe.xrange(history_key, min=since, count=1)
            # Exclusive range start "(" fetches only entries the cache has not parsed yet.
            pipe.xrange(history_key, min=since if after is None else f"({after}")
        if error_key is not None:
            pipe.get(error_key)
        replies = pipe.execute(raise_on_error=False)
        for reply in replies:
            # A lost connection surfaces per command here; wrong key types are handled below.
            if isinstance(reply, redis.ConnectionError | redis.TimeoutError):
                raise reply
        time_reply, output_raw = replies[:2]
        newest, first, new = replies[2:5] if history_key is not None else ([], [], [])
        error_raw = replies[-1] if error_key is not None else None
        problems: list[str] = []
        history: list[Point] = []
        last_write_ms = None
        has_history = (
            history_key is not None
            and _stream_reply(newest, history_key, problems)
            and bool(newest)
        )
        if has_history and history_key is not None:
            last_write_ms = entry_ms(newest[0][0])
            if self._cache.is_ahead_of(newest[0][0]):
                self._cache.clear()
                new = self.client.xrange(history_key, min=since)
            history = self._cache.update(first[0][0] if first else None, self._entries(new))
        else:
            self._cache.clear()
        return Snapshot(
            now_ms=_redis_ms(time_reply),
            output=self._output(output_raw, problems),
            output_raw=output_raw if _is_text(output_raw) else None,
            history=history,
            last_write_ms=last_write_ms,
            has_history=has_history,
            error=self._error(error_raw, problems),
            problems=problems,
        )

    def _entries(self, entries: Any) -> list[tuple[str, Point | None]]:
        parsed = parse_entries(entries)
        skipped = [entry_id for entry_id, point in parsed if point is None]
        if skipped:
            # Each entry is parsed once (the cache keeps the rest), so this is said once per entry.
            log.warning(
                "skipped %d entries of %s without a UTF-8 JSON object in `output` (first: %s)",
                len(skipped),
                self.history_key,
                skipped[0],
            )
        return parsed

    def _output(self, raw: Any, problems: list[str]) -> Mapping[str, Any] | None:
        if isinstance(raw, Exception):
            problems.append(f"Key {self.output_key} cannot be read: {raw}")
            return None
        if raw is None:
            return None
        output = _json_object(raw)
        if output is None:
            problems.append(f"Key {self.output_key} does not hold a JSON object.")
        return output

    def _error(self, raw: Any, problems: list[str]) -> FunctionError | None:
        if isinstance(raw, Exception):
            problems.append(f"Key {self.error_key} cannot be read: {raw}")
            return None
        if raw is None:
            return None
        record = _json_object(raw)
        if record is None:
            problems.append(f"Key {self.error_key} does not hold a JSON object.")
            return None
        return parse_error(record)


def parse_entries(entries: Any) -> list[tuple[str, Point | None]]:
    """Turn XRANGE entries into points; None for an entry without a JSON object `output`."""
    if not isinstance(entries, list):
        return []
    parsed: list[tuple[str, Point | None]] = []
    for entry_id, fields in entries:
        output = _json_object(fields.get("output")) if isinstance(fields, dict) else None
        point = None if output is None else Point(entry_ms(entry_id), numeric_values(output))
        parsed.append((entry_id, point))
    return parsed


def parse_error(record: Mapping[str, Any]) -> FunctionError:
    """Read an error record leniently: a partial record is still worth showing."""
    at = str(record.get("at") or "")
    input_timestamp = record.get("input_timestamp")
    return FunctionError(
        at=at,
        at_ms=iso_ms(at),
        kind=str(record.get("kind") or "error"),
        message=str(record.get("message") or ""),
        traceback=str(record.get("traceback") or ""),
        input_timestamp=None if input_timestamp is None else str(input_timestamp),
    )


def entry_ms(entry_id: str) -> int:
    """The write time of a stream entry: the milliseconds part of its ID."""
    return int(entry_id.partition("-")[0])


def iso_ms(text: str) -> int | None:
    """Milliseconds since the epoch of an ISO-8601 time with an offset; None otherwise."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return int(moment.timestamp() * 1000)


def _json_object(raw: Any) -> dict[str, Any] | None:
    if not _is_text(raw):
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    # A "\ud800" escape also decodes to a lone surrogate, which the page cannot send on.
    for name, item in value.items():
        if not _is_text(name) or (isinstance(item, str) and not _is_text(item)):
            return None
    return value


def _is_text(raw: Any) -> bool:
    """A str without lone surrogates: what bytes that are not UTF-8 decode to (surrogateescape)."""
    if not isinstance(raw, str):
        return False
    if raw.isascii():
        return True
    try:
        raw.encode()
    except UnicodeEncodeError:
        return False
    return True


def _stream_reply(reply: Any, key: str, problems: list[str]) -> bool:
    if isinstance(reply, Exception):
        problems.append(f"Key {key} is not a stream: {reply}")
        return False
    return isinstance(reply, list)


def _redis_ms(reply: Any) -> int:
    if isinstance(reply, tuple | list) and len(reply) == 2:
        seconds, micros = reply
        return int(seconds) * 1000 + int(micros) // 1000
    # TIME may be renamed or denied by ACLs; the local clock is then the best estimate.
    return int(time.time() * 1000)
