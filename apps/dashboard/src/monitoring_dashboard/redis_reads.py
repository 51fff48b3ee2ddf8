"""All Redis reads of the dashboard, by one reader for every page (Live: one round trip)."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from typing import Any, TypeVar

import redis
from serverless_runtime.registry import FunctionRecord
from serverless_runtime.storage.keys import KeyLayout

from monitoring_dashboard.display import iso_ms
from monitoring_dashboard.flatten import numbers, safe_text
from monitoring_dashboard.output_keys import numeric_values
from monitoring_dashboard.snapshots import (
    PAGE_SIZE,
    FunctionError,
    FunctionList,
    FunctionSummary,
    Point,
    ReadError,
    Snapshot,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
_SURROGATE = re.compile("[\ud800-\udfff]")


# A filter longer than this is cut (an output key is rarely longer).
MAX_QUERY = 200
# Per refresh of one function: at most this many history entries, and about this many bytes of
# them (a function writing 1 MiB outputs gets a few entries, one writing 1 KiB gets them all).
MAX_FUNCTION_ENTRIES = 300
HISTORY_BYTES_BUDGET = 4 << 20
# The latest output is shown only up to this size.
MAX_OUTPUT_CHARS = 4 << 20

StreamId = tuple[int, int]


def stream_id(text: str) -> StreamId:
    """Order stream IDs (`ms-seq`) numerically."""
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


class HistoryCache:
    """The window's parsed `:history` entries, kept so that a refresh parses only new ones."""

    def __init__(self) -> None:
        self._entries: deque[tuple[StreamId, Point]] = deque()
        # The ID after which entries are new to the cache (None: fetch the whole window).
        self.fetch_after: str | None = None

    def is_ahead_of(self, newest_id: str) -> bool:
        """True when the cache holds entries newer than the stream's newest: it was recreated."""
        return bool(self._entries) and self._entries[-1][0] > stream_id(newest_id)

    def update(
        self, first_in_window: str | None, new: list[tuple[str, Point | None]]
    ) -> list[Point]:
        """Drop entries Redis no longer has in the window, append new ones, return the window."""
        # Entries before the stream's first in-window entry aged out or were trimmed by MAXLEN.
        floor = stream_id(first_in_window) if first_in_window is not None else None
        while self._entries and (floor is None or self._entries[0][0] < floor):
            self._entries.popleft()
        for id_text, point in new:
            key = stream_id(id_text)
            if point is not None and floor is not None and key >= floor:
                self._entries.append((key, point))
            self.fetch_after = id_text
        if floor is None:
            # Nothing is left in the window: next time, read the window afresh.
            self.fetch_after = None
        return [point for _, point in self._entries]


class RedisReader:
    """Reads the runtime's keys: the configured function's output, history and error for the Live
    page (its parsed history kept between refreshes), the registry and any listed function's."""

    def __init__(
        self, client: redis.Redis, keys: KeyLayout, history_ms: int, functions_key: str | None
    ) -> None:
        self.client = client
        self.history_ms = history_ms
        # The function registry (None: not read).
        self.functions_key = functions_key
        # Its history and error are None when the runtime is told not to write them (set empty).
        record = FunctionRecord(keys.output, keys.input, history=keys.history, error=keys.error)
        self.configured = replace(record, state=keys.state, trigger="", invoke_on="", handler="")
        self._failing = False
        self._cache = HistoryCache()
        # gunicorn's threads share one reader, and the cache must see reads in order.
        self._lock = threading.Lock()

    def read(self) -> Snapshot:
        """The configured function's output, new history entries and error; raise ReadError."""
        with self._lock:
            return self._guard(self._read)

    def list_functions(self, query: str = "", page: int = 1) -> FunctionList:
        """One page of the registry's functions whose output key contains `query` (any case),
        plus the configured one on the first page; raise ReadError."""
        return self._guard(lambda: self._page(query[:MAX_QUERY], page))

    def read_function(self, output_key: str) -> Snapshot | None:
        """The latest output, newest history and error of a listed function; raise ReadError."""
        return self._guard(lambda: self._read_function(output_key))

    def _guard(self, read: Callable[[], T]) -> T:
        """A redis-py error as ReadError; logged once when Redis goes, once when it is back."""
        try:
            result = read()
        except redis.RedisError as exc:
            if not self._failing:
                log.warning("cannot read Redis: %s: %s", type(exc).__name__, exc)
            self._failing = True
            raise ReadError(f"{type(exc).__name__}: {exc}") from exc
        if self._failing:
            log.info("Redis is reachable again")
        self._failing = False
        return result

    def _read(self) -> Snapshot:
        configured = self.configured
        history_key = configured.history
        since = str(max(int(time.time() * 1000) - self.history_ms, 0))
        after = self._cache.fetch_after
        pipe = self.client.pipeline(transaction=False)
        _queue_time(pipe)
        _queue_keys(pipe, configured)
        if history_key is not None:
            pipe.xrange(history_key, min=since, count=1)
            # Exclusive range start "(" fetches only entries the cache has not parsed yet.
            pipe.xrange(history_key, min=since if after is None else f"({after}")
        if self.functions_key is not None:
            pipe.hget(self.functions_key, configured.output)
        replies = iter(_execute(pipe))
        now_ms = _redis_ms(next(replies))
        output_raw, newest, error_raw = _key_replies(replies, configured)
        first, new = (next(replies), next(replies)) if history_key is not None else ([], [])
        # The registry is the runtime's to write: anything but a record of this function (a
        # wrong type, odd JSON; None without FUNCTIONS_KEY) is no failure to show, no problem.
        raw = next(replies, None)
        listed = FunctionRecord.parse(configured.output, raw) if _is_text(raw) else None
        problems: list[str] = []
        history: list[Point] = []
        newest_id = _newest_id(newest, history_key, problems)
        if newest_id is not None and history_key is not None:
            if self._cache.is_ahead_of(newest_id):
                self._cache = HistoryCache()
                new = self.client.xrange(history_key, min=since)
            history = self._cache.update(first[0][0] if first else None, self._entries(new))
        else:
            self._cache = HistoryCache()
        output = self._object(configured.output, output_raw, problems)
        error = self._object(configured.error, error_raw, problems)
        return Snapshot(
            now_ms,
            listed or configured,
            registered=listed is not None,
            output=output,
            has_output=output is not None,
            output_raw=output_raw if _is_text(output_raw) else None,
            history=history,
            has_history=newest_id is not None,
            last_write_ms=None if newest_id is None else entry_ms(newest_id),
            last_entry_id=newest_id,
            error=None if error is None else parse_error(error),
            problems=problems,
        )

    def _entries(self, entries: Any) -> list[tuple[str, Point | None]]:
        parsed = parse_entries(entries, _object_numbers)
        skipped = [entry_id for entry_id, point in parsed if point is None]
        if skipped:
            # Each entry is parsed once (the cache keeps the rest), so this is said once per entry.
            log.warning(
                "skipped %d entries of %s without a UTF-8 JSON object in `output` (first: %s)",
                len(skipped),
                self.configured.history,
                skipped[0],
            )
        return parsed

    @staticmethod
    def _object(key: str | None, raw: Any, problems: list[str]) -> dict[str, Any] | None:
        if isinstance(raw, Exception):
            problems.append(f"Key {key} cannot be read: {raw}")
            return None
        value = None if raw is None else _json_object(raw)
        if raw is not None and value is None:
            problems.append(f"Key {key} does not hold a JSON object.")
        return value

    def _page(self, query: str, page: int) -> FunctionList:
        problems: list[str] = []
        key = self.functions_key
        names = [] if key is None else self._names(key, problems)
        shown, page, pages, matched = page_of(names, query, page)
        configured = self.configured.output
        first = page == 1 and configured not in names and query.casefold() in configured.casefold()
        listing = self._list(shown, first)
        return FunctionList(
            listing.now_ms,
            listing.functions,
            [*problems, *listing.problems],
            total=len(names),
            matched=matched,
            page=page,
            pages=pages,
            query=query,
        )

    def _names(self, key: str, problems: list[str]) -> list[str]:
        """The registry's field names (HKEYS), or none and a problem when it is not a hash."""
        pipe = self.client.pipeline(transaction=False)
        pipe.hkeys(key)
        (reply,) = _execute(pipe)
        if isinstance(reply, Exception):
            problems.append(f"Key {key} (FUNCTIONS_KEY) is not a hash: {reply}")
            return []
        return [name for name in reply if isinstance(name, str)]

    def _list(self, names: list[str], configured_first: bool) -> FunctionList:
        problems: list[str] = []
        pipe = self.client.pipeline(transaction=False)
        _queue_time(pipe)
        if self.functions_key is not None and names:
            pipe.hmget(self.functions_key, names)
        replies = _execute(pipe)
        now_ms = _redis_ms(replies[0])
        # A field deleted since its name was read is simply not listed.
        fields = dict(zip(names, replies[1], strict=True)) if len(replies) > 1 else {}
        raw = {name: value for name, value in fields.items() if value is not None}
        listed: list[tuple[FunctionRecord, bool]] = []
        for output in sorted(raw):
            record = FunctionRecord.parse(output, raw[output]) if _is_text(output) else None
            if record is None:
                problems.append(
                    f"Field {safe_text(str(output), 80)!r} of {self.functions_key} "
                    "does not hold a function record; it is not listed."
                )
            else:
                listed.append((record, True))
        if configured_first:
            listed.insert(0, (self.configured, False))
        pipe = self.client.pipeline(transaction=False)
        for record, _ in listed:
            _queue_keys(pipe, record, exists=True)
        answers = iter(_execute(pipe))
        summaries = []
        for record, registered in listed:
            exists, newest, error_raw = _key_replies(answers, record)
            written = entry_ms(newest[0][0]) if isinstance(newest, list) and newest else None
            error = _error_record(error_raw)
            summaries.append(FunctionSummary(record, registered, exists == 1, written, error))
        return FunctionList(now_ms, summaries, problems)

    def _read_function(self, output_key: str) -> Snapshot | None:
        pipe = self.client.pipeline(transaction=False)
        _queue_time(pipe)
        if self.functions_key is not None:
            pipe.hget(self.functions_key, output_key)
        replies = _execute(pipe)
        now_ms = _redis_ms(replies[0])
        record = FunctionRecord.parse(output_key, replies[1]) if len(replies) > 1 else None
        registered = record is not None
        if record is None and output_key == self.configured.output:
            record = self.configured
        if record is None:
            return None
        problems: list[str] = []
        pipe = self.client.pipeline(transaction=False)
        _queue_keys(pipe, record)
        output_raw, newest, error_raw = _key_replies(iter(_execute(pipe)), record)
        has_output, output = self._output(record.output, output_raw, problems)
        entries: list[Any] = []
        newest_id = _newest_id(newest, record.history, problems)
        if newest_id is not None and record.history:
            # The newest entry always; older ones inside the window, within the budget.
            entries = list(newest)
            count = self._entry_count(newest[0])
            since = max(now_ms - self.history_ms, 0)
            if count > 1 and entry_ms(newest_id) >= since:
                # Exclusive end "(": the newest entry is already here.
                older = self.client.xrevrange(
                    record.history, max=f"({newest_id}", min=str(since), count=count - 1
                )
                entries.extend(older if isinstance(older, list) else [])
        entries.sort(key=lambda entry: stream_id(entry[0]))
        history = [point for _, point in parse_entries(entries, _any_numbers) if point is not None]
        if skipped := len(entries) - len(history):
            problems.append(
                f"{skipped} of the newest {len(entries)} entries of {record.history} hold no JSON "
                "`output`; they are left out of the charts."
            )
        return Snapshot(
            now_ms,
            record,
            registered,
            output=output,
            has_output=has_output,
            output_raw=output_raw if has_output else None,
            history=history,
            has_history=newest_id is not None,
            last_write_ms=None if newest_id is None else entry_ms(newest_id),
            last_entry_id=newest_id,
            error=_error_record(error_raw, problems, record.error),
            problems=problems,
        )

    def _output(self, key: str, raw: Any, problems: list[str]) -> tuple[bool, Any]:
        if raw is None:
            return False, None
        if isinstance(raw, Exception):
            problems.append(f"Key {key} cannot be read: {raw}")
            return False, None
        if not _is_text(raw):
            problems.append(f"Key {key} does not hold UTF-8 text.")
            return False, None
        if len(raw) > MAX_OUTPUT_CHARS:
            problems.append(f"Key {key} holds {len(raw)} characters, too many to show.")
            return False, None
        try:
            return True, json.loads(raw)
        except (ValueError, RecursionError):
            problems.append(f"Key {key} does not hold JSON.")
            return False, None

    @staticmethod
    def _entry_count(newest: Any) -> int:
        fields = newest[1] if isinstance(newest, list | tuple) and len(newest) == 2 else {}
        size = len(fields.get("output") or "") if isinstance(fields, dict) else 0
        return max(1, min(MAX_FUNCTION_ENTRIES, HISTORY_BYTES_BUDGET // max(size, 1)))


def parse_entries(
    entries: Any, numbers_of: Callable[[Any], dict[str, float] | None]
) -> list[tuple[str, Point | None]]:
    """XRANGE entries as points of their `output`'s numbers; None where numbers_of finds none."""
    if not isinstance(entries, list):
        return []
    parsed: list[tuple[str, Point | None]] = []
    for entry_id, fields in entries:
        found = numbers_of(fields.get("output")) if isinstance(fields, dict) else None
        parsed.append((entry_id, None if found is None else Point(entry_ms(entry_id), found)))
    return parsed


def _object_numbers(raw: Any) -> dict[str, float] | None:
    """The Live page's values: the top-level numbers of a JSON object."""
    output = _json_object(raw)
    return None if output is None else numeric_values(output)


def _any_numbers(raw: Any) -> dict[str, float] | None:
    """The Functions page's values: the numbers by path of any JSON but null."""
    try:
        value = json.loads(raw) if isinstance(raw, str) and _is_text(raw) else None
    except (ValueError, RecursionError):
        return None
    return None if value is None else numbers(value)


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
    return stream_id(entry_id)[0]


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
    return isinstance(raw, str) and (raw.isascii() or _SURROGATE.search(raw) is None)


def _newest_id(reply: Any, key: str | None, problems: list[str]) -> str | None:
    """The ID of XREVRANGE's one entry (None: no history), or a problem when it is no stream."""
    if isinstance(reply, Exception):
        problems.append(f"Key {key} is not a stream: {reply}")
        return None
    return str(reply[0][0]) if key and isinstance(reply, list) and reply else None


def _redis_ms(reply: Any) -> int:
    if isinstance(reply, tuple | list) and len(reply) == 2:
        seconds, micros = reply
        return int(seconds) * 1000 + int(micros) // 1000
    # TIME may be renamed or denied by ACLs; the local clock is then the best estimate.
    return int(time.time() * 1000)


def _error_record(
    raw: Any, problems: list[str] | None = None, key: str | None = None
) -> FunctionError | None:
    if raw is None:
        return None
    record = None if isinstance(raw, Exception) else _json_object(raw)
    if record is None:
        if problems is not None:
            problems.append(f"Key {key} does not hold an error record.")
        return None
    return parse_error(record)


def _execute(pipe: Any) -> list[Any]:
    """Run the pipeline; raise a lost connection (per command), other errors stay per key."""
    replies: list[Any] = pipe.execute(raise_on_error=False)
    for reply in replies:
        if isinstance(reply, redis.ConnectionError | redis.TimeoutError):
            raise reply
    return replies


def _queue_keys(pipe: Any, record: FunctionRecord, exists: bool = False) -> None:
    """Queue GET (or EXISTS) of a function's output, its newest history entry, GET of its error."""
    (pipe.exists if exists else pipe.get)(record.output)
    if record.history:
        pipe.xrevrange(record.history, count=1)
    if record.error:
        pipe.get(record.error)


def _key_replies(replies: Iterator[Any], record: FunctionRecord) -> tuple[Any, Any, Any]:
    """_queue_keys's replies: the output's, the newest entry's ([]: no history), the error's."""
    output = next(replies)
    newest = next(replies) if record.history else []
    return output, newest, next(replies) if record.error else None


def page_of(names: list[str], query: str, page: int) -> tuple[list[str], int, int, int]:
    """The sorted names containing `query` (any case) on `page` (from 1, kept within the pages):
    those names, the page, the number of pages and how many names matched."""
    wanted = query.casefold()
    matching = sorted(name for name in names if wanted in name.casefold())
    pages = max(1, -(-len(matching) // PAGE_SIZE))
    page = min(max(1, page), pages)
    start = (page - 1) * PAGE_SIZE
    return matching[start : start + PAGE_SIZE], page, pages, len(matching)


def _queue_time(pipe: Any) -> None:
    """Queue TIME (Redis's clock): as a command, since a cluster pipeline blocks its helper."""
    pipe.execute_command("TIME")
