"""The data layer against a real Valkey: what one refresh reads, the parsed-history cache, the
function registry and any function's keys."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from datetime import UTC, datetime

import pytest
import redis
from monitoring_dashboard.connection import connect
from monitoring_dashboard.redis_reads import (
    HISTORY_BYTES_BUDGET,
    MAX_FUNCTION_ENTRIES,
    RedisReader,
)
from monitoring_dashboard.settings import RedisConfig, Settings
from monitoring_dashboard.snapshots import Point, ReadError
from serverless_runtime import config as runtime_config
from serverless_runtime.config import Settings as RuntimeSettings
from serverless_runtime.registry import (
    DEFAULT_FUNCTIONS_KEY,
    FunctionRecord,
    LoadFailure,
    Registration,
)
from serverless_runtime.storage.store import Store

from tests.dashboard.runtime_writes import resource_output, write_error, write_output

KEY = "resource-monitor"
CONFIGURED = KEY
HOUR_MS = 3_600_000


def now_ms() -> int:
    return int(time.time() * 1000)


def make_reader(url: str, history_ms: int = HOUR_MS) -> RedisReader:
    settings = Settings(output_key=KEY, redis=RedisConfig(url=url))
    return RedisReader(connect(settings), settings.keys, history_ms, None)


@pytest.fixture
def reader(valkey, redis_client):
    return make_reader(valkey.url)


def test_reader_missing_keys_give_an_empty_snapshot(reader):
    snap = reader.read()
    assert snap.output is None
    assert snap.history == []
    assert not snap.has_history
    assert snap.last_write_ms is None
    assert snap.error is None
    assert snap.problems == []
    assert abs(snap.now_ms - now_ms()) < 60_000


def test_reader_returns_output_history_and_newest_write_time(reader, redis_client):
    start = now_ms() - 20_000
    for step in range(3):
        write_output(
            redis_client, KEY, resource_output([10.0 + step, 20.0]), at_ms=start + step * 5000
        )
    snap = reader.read()
    assert snap.output is not None
    assert snap.output["avg-util-cpu0-60sec"] == 12.0
    assert snap.output_raw == redis_client.get(KEY)
    assert snap.has_history
    assert [point.at_ms for point in snap.history] == [start, start + 5000, start + 10_000]
    assert [point.values["avg-util-cpu0-60sec"] for point in snap.history] == [10.0, 11.0, 12.0]
    assert "timestamp" not in snap.history[0].values
    assert snap.last_write_ms == start + 10_000


def test_reader_history_window_excludes_older_entries_but_keeps_newest_write_time(
    valkey, redis_client
):
    reader = make_reader(valkey.url, history_ms=60_000)
    old = now_ms() - 10 * 60_000
    write_output(redis_client, KEY, resource_output([5.0]), at_ms=old)
    snap = reader.read()
    assert snap.history == []
    assert snap.has_history
    assert snap.last_write_ms == old
    write_output(redis_client, KEY, resource_output([6.0]))
    assert [point.values["avg-util-cpu0-60sec"] for point in reader.read().history] == [6.0]


def test_reader_appends_only_new_entries_on_later_reads(reader, redis_client):
    write_output(redis_client, KEY, resource_output([1.0]))
    first = reader.read()
    write_output(redis_client, KEY, resource_output([2.0]))
    write_output(redis_client, KEY, resource_output([3.0]))
    second = reader.read()
    assert len(first.history) == 1
    assert [point.values["avg-util-cpu0-60sec"] for point in second.history] == [1.0, 2.0, 3.0]
    assert second.history[0] is first.history[0]


def test_reader_follows_entries_trimmed_by_maxlen(reader, redis_client):
    for value in (1.0, 2.0, 3.0):
        write_output(redis_client, KEY, resource_output([value]))
    reader.read()
    redis_client.xtrim(f"{KEY}:history", maxlen=1, approximate=False)
    write_output(redis_client, KEY, resource_output([4.0]))
    values = [point.values["avg-util-cpu0-60sec"] for point in reader.read().history]
    assert values == [3.0, 4.0]


def test_reader_starts_over_when_the_stream_is_recreated_older(reader, redis_client):
    write_output(redis_client, KEY, resource_output([1.0]))
    reader.read()
    redis_client.delete(f"{KEY}:history")
    earlier = now_ms() - 30_000
    write_output(redis_client, KEY, resource_output([9.0]), at_ms=earlier)
    snap = reader.read()
    assert [point.values["avg-util-cpu0-60sec"] for point in snap.history] == [9.0]
    assert snap.last_write_ms == earlier


def test_reader_forgets_history_when_the_stream_is_deleted(reader, redis_client):
    write_output(redis_client, KEY, resource_output([1.0]))
    reader.read()
    redis_client.delete(f"{KEY}:history")
    snap = reader.read()
    assert not snap.has_history
    assert snap.history == []
    assert snap.output is not None


def test_reader_skips_history_entries_without_a_json_object(reader, redis_client):
    redis_client.xadd(f"{KEY}:history", {"output": "not json"})
    redis_client.xadd(f"{KEY}:history", {"other": "field"})
    redis_client.xadd(f"{KEY}:history", {"output": json.dumps([1, 2])})
    write_output(redis_client, KEY, resource_output([7.0]))
    snap = reader.read()
    assert [point.values["avg-util-cpu0-60sec"] for point in snap.history] == [7.0]


def test_reader_history_entry_with_an_integer_beyond_float_range(reader, redis_client):
    write_output(redis_client, KEY, resource_output([1.0]))
    huge = '{"avg-util-cpu0-60sec": 2.0, "count": 1' + "0" * 400 + "}"
    redis_client.xadd(f"{KEY}:history", {"output": huge})
    snap = reader.read()
    assert [dict(point.values) for point in snap.history][-1] == {"avg-util-cpu0-60sec": 2.0}


def test_reader_skips_history_entries_that_are_not_utf8(reader, redis_client, caplog):
    write_output(redis_client, KEY, resource_output([1.0]))
    redis_client.xadd(f"{KEY}:history", {"output": b'{"avg-util-cpu0-60sec": 2.0, "\xff": 1}'})
    redis_client.xadd(f"{KEY}:history", {b"out\xfeput": b"{}"})
    # Valid UTF-8, but the escape decodes to a lone surrogate that the page cannot send on.
    redis_client.xadd(f"{KEY}:history", {"output": '{"avg-util-cpu0-60sec": 2.0, "\\ud800": 1}'})
    write_output(redis_client, KEY, resource_output([3.0]))
    with caplog.at_level(logging.WARNING, logger="monitoring_dashboard.redis_reads"):
        snap = reader.read()
        assert [point.values["avg-util-cpu0-60sec"] for point in snap.history] == [1.0, 3.0]
        assert [r.getMessage().split(" (")[0] for r in caplog.records] == [
            f"skipped 3 entries of {KEY}:history without a UTF-8 JSON object in `output`"
        ]
        write_output(redis_client, KEY, resource_output([4.0]))
        snap = reader.read()
    assert [point.values["avg-util-cpu0-60sec"] for point in snap.history] == [1.0, 3.0, 4.0]
    assert len(caplog.records) == 1  # said once, not on every refresh


def test_reader_output_or_error_that_is_not_utf8_is_a_problem(reader, redis_client):
    redis_client.set(KEY, b'{"avg-util-cpu0-60sec": 1.0, "\xff": 2}')
    redis_client.set(f"{KEY}:error", b'{"kind": "\xfe"}')
    snap = reader.read()
    assert snap.output is None
    assert snap.output_raw is None
    assert snap.error is None
    assert len(snap.problems) == 2
    assert all("does not hold a JSON object" in problem for problem in snap.problems)


def test_reader_parses_the_error_record(reader, redis_client):
    at = datetime(2026, 11, 27, 23, 22, 1, tzinfo=UTC)
    write_error(redis_client, KEY, message="division by zero", kind="handler", at=at)
    error = reader.read().error
    assert error is not None
    assert error.kind == "handler"
    assert error.message == "division by zero"
    assert error.at_ms == int(at.timestamp() * 1000)
    assert error.input_timestamp == "2026-11-27 23:22:01.123456"
    assert error.traceback.startswith("Traceback")


def test_reader_reports_values_it_cannot_use_as_problems(reader, redis_client):
    redis_client.set(KEY, "[1, 2, 3]")
    redis_client.set(f"{KEY}:history", "a string, not a stream")
    redis_client.rpush(f"{KEY}:error", "a list, not a string")
    snap = reader.read()
    assert snap.output is None
    assert not snap.has_history
    assert snap.error is None
    assert len(snap.problems) == 3
    assert any("does not hold a JSON object" in problem for problem in snap.problems)
    assert any("is not a stream" in problem for problem in snap.problems)


def test_reader_raises_read_error_while_redis_is_down_and_recovers(own_valkey):
    reader = make_reader(own_valkey.url)
    client = own_valkey.client()
    write_output(client, KEY, resource_output([1.0]))
    assert reader.read().output is not None
    own_valkey.stop()
    with pytest.raises(ReadError, match="Connection"):
        reader.read()
    own_valkey.start()
    write_output(own_valkey.client(), KEY, resource_output([2.0]))
    snap = reader.read()
    assert snap.output is not None
    assert snap.output["avg-util-cpu0-60sec"] == 2.0


def _runtime_and_dashboard(url: str, environ: dict[str, str]) -> tuple[Store, RedisReader]:
    """The runtime's store and the dashboard's reader, both configured from one environment."""
    runtime = runtime_config.Settings.from_env({**environ, "REDIS_URL": url})
    store = Store(redis.Redis.from_url(url), runtime, None, "test")
    dashboard = Settings.from_env({**environ, "REDIS_URL": url})
    return store, RedisReader(connect(dashboard), dashboard.keys, HOUR_MS, None)


def test_reader_follows_history_key_and_error_key_where_the_runtime_writes(valkey, redis_client):
    environ = {"REDIS_OUTPUT_KEY": KEY, "HISTORY_KEY": "audit:stream", "ERROR_KEY": "audit:error"}
    store, reader = _runtime_and_dashboard(valkey.url, environ)
    store.commit(json.dumps(resource_output([10.0, 30.0])).encode(), "digest")
    store.record_error({"at": datetime.now(UTC).isoformat(), "kind": "timeout", "message": "slow"})
    snap = reader.read()
    assert redis_client.exists("audit:stream", "audit:error") == 2
    assert snap.has_history
    assert [point.values["avg-util-cpu1-60sec"] for point in snap.history] == [30.0]
    assert snap.error is not None and snap.error.kind == "timeout"
    assert snap.problems == []


def test_reader_without_history_and_error_keys_reads_the_output_alone(valkey, redis_client):
    environ = {"REDIS_OUTPUT_KEY": KEY, "HISTORY_KEY": "", "ERROR_KEY": ""}
    store, reader = _runtime_and_dashboard(valkey.url, environ)
    store.commit(json.dumps(resource_output([10.0])).encode(), "digest")
    store.record_error({"kind": "timeout"})
    snap = reader.read()
    assert snap.output is not None and snap.output["avg-util-cpu0-60sec"] == 10.0
    assert (snap.has_history, snap.history, snap.error, snap.problems) == (False, [], None, [])


def test_reader_reads_the_functions_load_failure_from_the_registry(valkey, redis_client):
    settings = Settings(output_key=KEY, redis=RedisConfig(url=valkey.url))
    reader = RedisReader(connect(settings), settings.keys, HOUR_MS, settings.functions_key)
    assert settings.functions_key is not None
    record = FunctionRecord(KEY, "metrics")
    assert Registration(redis_client, settings.functions_key, record).register()
    assert reader.read().record.load_failure is None
    failure = LoadFailure("2030-03-17T17:46:40+00:00", "0f" * 16, "syntax-error", "bad", True)
    assert Registration(
        redis_client, settings.functions_key, replace(record, load_failure=failure)
    ).register()
    assert reader.read().record.load_failure == failure
    # Another function's record, or an odd value, is no failure of this one.
    redis_client.hset(settings.functions_key, KEY, "not a record")
    snap = reader.read()
    assert snap.record.load_failure is None and snap.problems == []


def make_functions_reader(
    url: str, functions_key: str | None = DEFAULT_FUNCTIONS_KEY
) -> RedisReader:
    settings = Settings(
        output_key=CONFIGURED, redis=RedisConfig(url=url), functions_key=functions_key
    )
    return RedisReader(connect(settings), settings.keys, HOUR_MS, settings.functions_key)


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
def functions_reader(valkey, redis_client):
    return make_functions_reader(valkey.url)


def test_functions_list_holds_registered_and_configured_functions(
    functions_reader, redis_client
) -> None:
    register_function(redis_client, "word-count", TRIGGER="poll")
    register_function(redis_client, "cpu-stats")
    written = now_ms() - 7000
    write(redis_client, "cpu-stats", {"mean": 1.5}, at_ms=written)
    write_error(redis_client, "word-count", message="boom")
    listing = functions_reader.list_functions()
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
    assert listing.problems == []
    assert abs(listing.now_ms - now_ms()) < 60_000


def test_functions_list_names_what_is_not_a_record(functions_reader, redis_client, valkey) -> None:
    register_function(redis_client, CONFIGURED)
    redis_client.hset(DEFAULT_FUNCTIONS_KEY, "junk", "not json")
    listing = functions_reader.list_functions()
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
    listing = functions_reader.list_functions()
    assert [item.record.output for item in listing.functions] == [CONFIGURED]
    assert "is not a hash" in listing.problems[0]
    # FUNCTIONS_KEY empty: only the configured function.
    assert [
        item.record.output
        for item in make_functions_reader(valkey.url, None).list_functions().functions
    ] == [CONFIGURED]


def test_function_read_gives_any_output_and_numbers_oldest_first(
    functions_reader, redis_client
) -> None:
    register_function(redis_client, "shapes", HISTORY_KEY="custom-history")
    start = now_ms() - 30_000
    write(redis_client, "shapes", {"a": {"b": 1}}, at_ms=start, history="custom-history")
    redis_client.xadd("custom-history", {"output": "not json"}, id=f"{start + 1000}-*")
    write(redis_client, "shapes", [1, "x"], at_ms=start + 2000, history="custom-history")
    snap = functions_reader.read_function("shapes")
    assert snap is not None and snap.registered
    assert snap.has_output and snap.output == [1, "x"]
    assert snap.history == [Point(start, {"a.b": 1.0}), Point(start + 2000, {"[0]": 1.0})]
    assert snap.has_history and snap.last_write_ms == start + 2000
    assert snap.problems == [
        "1 of the newest 3 entries of custom-history hold no JSON `output`; "
        "they are left out of the charts."
    ]
    assert functions_reader.read_function("not-listed") is None


def test_function_read_missing_and_unusable_outputs(functions_reader, redis_client) -> None:
    snap = functions_reader.read_function(CONFIGURED)
    assert snap is not None and not snap.registered
    assert (snap.has_output, snap.has_history, snap.history, snap.problems) == (
        False,
        False,
        [],
        [],
    )
    register_function(redis_client, "odd")
    redis_client.set("odd", "{not json")
    assert functions_reader.read_function("odd").problems == ["Key odd does not hold JSON."]
    redis_client.delete("odd")
    redis_client.hset("odd", "x", "1")
    redis_client.set("odd:history", "a string")
    problems = functions_reader.read_function("odd").problems
    assert problems[0].startswith("Key odd cannot be read: WRONGTYPE")
    assert problems[1].startswith("Key odd:history is not a stream")
    redis_client.delete("odd")
    redis_client.set("odd", b"\xff\xfe")
    assert functions_reader.read_function("odd").problems[0] == "Key odd does not hold UTF-8 text."


def test_function_read_takes_a_bounded_number_of_history_entries(
    functions_reader, redis_client
) -> None:
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
    busy = functions_reader.read_function("busy")
    assert len(busy.history) == MAX_FUNCTION_ENTRIES
    assert [point.values["n"] for point in busy.history] == list(range(700, 1000))
    large = functions_reader.read_function("large")
    expected = HISTORY_BYTES_BUDGET // len(json.dumps({"n": 99, "pad": padding}))
    assert 1 < len(large.history) == expected < 100
    assert large.history[-1].values["n"] == 99.0


def test_function_history_outside_the_window_keeps_only_the_newest(
    functions_reader, redis_client
) -> None:
    register_function(redis_client, "old")
    long_ago = now_ms() - 3 * HOUR_MS
    for step in range(3):
        write(redis_client, "old", {"n": step}, at_ms=long_ago + step)
    snap = functions_reader.read_function("old")
    assert snap.history == [Point(long_ago + 2, {"n": 2.0})]


def test_functions_reader_raises_read_error_when_redis_is_down(own_valkey) -> None:
    functions_reader = make_functions_reader(own_valkey.url)
    assert functions_reader.list_functions().functions
    own_valkey.stop()
    with pytest.raises(ReadError):
        functions_reader.list_functions()
    with pytest.raises(ReadError):
        functions_reader.read_function(CONFIGURED)
    own_valkey.start()
    assert functions_reader.list_functions().functions
