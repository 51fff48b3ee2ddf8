"""The data layer against a real Valkey: what one refresh reads, and the parsed-history cache."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import redis
from monitoring_dashboard.connection import connect
from monitoring_dashboard.reader import RedisReader, iso_ms
from monitoring_dashboard.reading import ReadError
from monitoring_dashboard.settings import Settings
from serverless_runtime import config as runtime_config
from serverless_runtime.registry import FunctionRecord, LoadFailure, Registration
from serverless_runtime.storage.store import Store

from tests.dashboard.runtime_writes import resource_output, write_error, write_output

KEY = "resource-monitor"
HOUR_MS = 3_600_000


def now_ms() -> int:
    return int(time.time() * 1000)


def make_reader(url: str, history_ms: int = HOUR_MS) -> RedisReader:
    settings = Settings(output_key=KEY, redis_url=url)
    return RedisReader(connect(settings), settings.keys, history_ms)


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
    with caplog.at_level(logging.WARNING, logger="monitoring_dashboard.reader"):
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


def test_iso_ms_needs_an_offset():
    moment = datetime(2026, 11, 27, 23, 22, 1, tzinfo=UTC) + timedelta(milliseconds=5)
    assert iso_ms(moment.isoformat()) == int(moment.timestamp() * 1000)
    assert iso_ms("2026-11-27T23:22:01+01:00") == int(moment.timestamp() * 1000) - 3_600_005
    assert iso_ms("2026-11-27 23:22:01") is None
    assert iso_ms("yesterday") is None


def _runtime_and_dashboard(url: str, environ: dict[str, str]) -> tuple[Store, RedisReader]:
    """The runtime's store and the dashboard's reader, both configured from one environment."""
    runtime = runtime_config.Settings.from_env({**environ, "REDIS_URL": url})
    store = Store(redis.Redis.from_url(url), runtime, None, "test")
    dashboard = Settings.from_env({**environ, "REDIS_URL": url})
    return store, RedisReader(connect(dashboard), dashboard.keys, HOUR_MS)


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
    settings = Settings(output_key=KEY, redis_url=valkey.url)
    reader = RedisReader(connect(settings), settings.keys, HOUR_MS, settings.functions_key)
    assert settings.functions_key is not None
    record = FunctionRecord(KEY, "metrics")
    assert Registration(redis_client, settings.functions_key, record).register()
    assert reader.read().load_failure is None
    failure = LoadFailure("2030-03-17T17:46:40+00:00", "0f" * 16, "syntax-error", "bad", True)
    assert Registration(
        redis_client, settings.functions_key, replace(record, load_failure=failure)
    ).register()
    assert reader.read().load_failure == failure
    # Another function's record, or an odd value, is no failure of this one.
    redis_client.hset(settings.functions_key, KEY, "not a record")
    snap = reader.read()
    assert snap.load_failure is None and snap.problems == []
