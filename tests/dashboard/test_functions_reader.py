"""The function registry and any function's keys, read from a real Valkey."""

from __future__ import annotations

import json
import time

import pytest
from monitoring_dashboard.connection import connect
from monitoring_dashboard.reader import (
    HISTORY_BYTES_BUDGET,
    MAX_FUNCTION_ENTRIES,
    FunctionsReader,
)
from monitoring_dashboard.reading import ReadError
from monitoring_dashboard.settings import Settings
from serverless_runtime.config import Settings as RuntimeSettings
from serverless_runtime.registry import DEFAULT_FUNCTIONS_KEY, FunctionRecord, Registration

from tests.dashboard.runtime_writes import write_error

CONFIGURED = "resource-monitor"
HOUR_MS = 3_600_000


def now_ms() -> int:
    return int(time.time() * 1000)


def make_reader(url: str, functions_key: str | None = DEFAULT_FUNCTIONS_KEY) -> FunctionsReader:
    settings = Settings(output_key=CONFIGURED, redis_url=url, functions_key=functions_key)
    return FunctionsReader(connect(settings), settings.functions_key, settings.keys, HOUR_MS)


def register_function(client, output: str, **env: str) -> FunctionRecord:
    record = FunctionRecord.from_settings(
        RuntimeSettings.from_env({"REDIS_OUTPUT_KEY": output, **env})
    )
    assert Registration(client, DEFAULT_FUNCTIONS_KEY, record).register()
    return record


def write(client, key: str, output, at_ms: int | None = None, history: str | None = None) -> None:
    text = json.dumps(output)
    client.set(key, text)
    client.xadd(
        history or f"{key}:history", {"output": text}, id="*" if at_ms is None else f"{at_ms}-*"
    )


@pytest.fixture
def reader(valkey, redis_client):
    return make_reader(valkey.url)


def test_functions_list_holds_registered_and_configured_functions(reader, redis_client) -> None:
    register_function(redis_client, "word-count", TRIGGER="poll")
    register_function(redis_client, "cpu-stats")
    written = now_ms() - 7000
    write(redis_client, "cpu-stats", {"mean": 1.5}, at_ms=written)
    write_error(redis_client, "word-count", message="boom")
    listing = reader.list_functions()
    assert [(item.record.output, item.registered) for item in listing.functions] == [
        (CONFIGURED, False),
        ("cpu-stats", True),
        ("word-count", True),
    ]
    configured, cpu, words = listing.functions
    assert not configured.output_exists and configured.last_write_ms is None
    assert cpu.output_exists and cpu.last_write_ms == written
    assert words.record.trigger == "poll"
    assert words.error is not None and words.error.message == "boom"
    assert listing.problems == [] and listing.omitted == 0
    assert abs(listing.now_ms - now_ms()) < 60_000


def test_functions_list_names_what_is_not_a_record(reader, redis_client, valkey) -> None:
    register_function(redis_client, CONFIGURED)
    redis_client.hset(DEFAULT_FUNCTIONS_KEY, "junk", "not json")
    listing = reader.list_functions()
    # The configured function is registered: listed once, as registered.
    assert [(item.record.output, item.registered) for item in listing.functions] == [
        (CONFIGURED, True)
    ]
    assert listing.problems == [
        f"Field 'junk' of {DEFAULT_FUNCTIONS_KEY} does not hold a function record; "
        "it is not listed."
    ]
    redis_client.delete(DEFAULT_FUNCTIONS_KEY)
    redis_client.set(DEFAULT_FUNCTIONS_KEY, "a string")
    listing = reader.list_functions()
    assert [item.record.output for item in listing.functions] == [CONFIGURED]
    assert "is not a hash" in listing.problems[0]
    # FUNCTIONS_KEY empty: only the configured function.
    assert [
        item.record.output for item in make_reader(valkey.url, None).list_functions().functions
    ] == [CONFIGURED]


def test_function_read_gives_any_output_and_numbers_oldest_first(reader, redis_client) -> None:
    register_function(redis_client, "shapes", HISTORY_KEY="custom-history")
    start = now_ms() - 30_000
    write(redis_client, "shapes", {"a": {"b": 1}}, at_ms=start, history="custom-history")
    redis_client.xadd("custom-history", {"output": "not json"}, id=f"{start + 1000}-*")
    write(redis_client, "shapes", [1, "x"], at_ms=start + 2000, history="custom-history")
    snap = reader.read_function("shapes")
    assert snap is not None and snap.registered
    assert snap.has_output and snap.output == [1, "x"]
    assert snap.history == [(start, {"a.b": 1.0}), (start + 2000, {"[0]": 1.0})]
    assert snap.has_history and snap.last_write_ms == start + 2000
    assert snap.problems == [
        "1 of the newest 3 entries of custom-history hold no JSON `output`; "
        "they are left out of the charts."
    ]
    assert reader.read_function("not-listed") is None


def test_function_read_missing_and_unusable_outputs(reader, redis_client) -> None:
    snap = reader.read_function(CONFIGURED)
    assert snap is not None and not snap.registered
    assert (snap.has_output, snap.has_history, snap.history, snap.problems) == (
        False,
        False,
        [],
        [],
    )
    register_function(redis_client, "odd")
    redis_client.set("odd", "{not json")
    assert reader.read_function("odd").problems == ["Key odd does not hold JSON."]
    redis_client.delete("odd")
    redis_client.hset("odd", "x", "1")
    redis_client.set("odd:history", "a string")
    problems = reader.read_function("odd").problems
    assert problems[0].startswith("Key odd cannot be read: WRONGTYPE")
    assert problems[1].startswith("Key odd:history is not a stream")
    redis_client.delete("odd")
    redis_client.set("odd", b"\xff\xfe")
    assert reader.read_function("odd").problems[0] == "Key odd does not hold UTF-8 text."


def test_function_read_takes_a_bounded_number_of_history_entries(reader, redis_client) -> None:
    register_function(redis_client, "busy")
    register_function(redis_client, "large")
    start = now_ms() - 20 * 60_000
    pipe = redis_client.pipeline()
    for step in range(1000):
        pipe.xadd("busy:history", {"output": json.dumps({"n": step})}, id=f"{start + step}-*")
    pipe.set("busy", json.dumps({"n": 999}))
    # 100 KB per entry: the byte budget, not the count, bounds these.
    padding = "x" * 100_000
    for step in range(100):
        text = json.dumps({"n": step, "pad": padding})
        pipe.xadd("large:history", {"output": text}, id=f"{start + step}-*")
    pipe.execute()
    busy = reader.read_function("busy")
    assert len(busy.history) == MAX_FUNCTION_ENTRIES
    assert [values["n"] for _, values in busy.history] == list(range(700, 1000))
    large = reader.read_function("large")
    expected = HISTORY_BYTES_BUDGET // len(json.dumps({"n": 99, "pad": padding}))
    assert 1 < len(large.history) == expected < 100
    assert large.history[-1][1]["n"] == 99.0


def test_function_history_outside_the_window_keeps_only_the_newest(reader, redis_client) -> None:
    register_function(redis_client, "old")
    long_ago = now_ms() - 3 * HOUR_MS
    for step in range(3):
        write(redis_client, "old", {"n": step}, at_ms=long_ago + step)
    snap = reader.read_function("old")
    assert snap.history == [(long_ago + 2, {"n": 2.0})]


def test_functions_reader_raises_read_error_when_redis_is_down(own_valkey) -> None:
    reader = make_reader(own_valkey.url)
    assert reader.list_functions().functions
    own_valkey.stop()
    with pytest.raises(ReadError):
        reader.list_functions()
    with pytest.raises(ReadError):
        reader.read_function(CONFIGURED)
    own_valkey.start()
    assert reader.list_functions().functions
