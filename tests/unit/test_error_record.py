"""The error record: bounded in size, never dated after Redis's clock."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import redis
from serverless_runtime.failures import FailureKind
from serverless_runtime.loop import MAX_MESSAGE_BYTES, MAX_TRACEBACK_BYTES, error_record
from serverless_runtime.storage.store import Store


def test_error_record_small_message_and_traceback_are_kept_whole() -> None:
    record = error_record(FailureKind.HANDLER_ERROR, "boom", "Traceback: boom", "t1")
    assert record["message"] == "boom"
    assert record["traceback"] == "Traceback: boom"
    assert "message_bytes" not in record and "traceback_bytes" not in record


def test_error_record_huge_message_and_traceback_are_cut_with_their_sizes() -> None:
    message = "é" * (10 << 20)
    tb = "Traceback (most recent call last):\n" + "x" * (20 << 20) + "\nValueError: end\n"
    record = error_record(FailureKind.HANDLER_ERROR, message, tb, None)
    assert len(record["message"].encode()) <= MAX_MESSAGE_BYTES
    assert len(record["traceback"].encode()) <= MAX_TRACEBACK_BYTES
    assert record["message_bytes"] == len(message.encode())
    assert record["traceback_bytes"] == len(tb.encode())
    assert record["message"].startswith("éé")
    assert record["traceback"].startswith("Traceback (most recent call last):")
    assert record["traceback"].endswith("ValueError: end\n"), "the exception's line is kept"
    assert len(json.dumps(record)) < 64 << 10


def test_store_dates_an_error_no_later_than_redis_clock(client, settings) -> None:
    store = Store(client, settings(), None, "pod")
    record = error_record(FailureKind.HANDLER_ERROR, "boom", "", None)
    record["at"] = "2100-01-01T00:00:00+00:00"  # this machine's clock far ahead of Redis's
    store.record_error(record)
    written = json.loads(client.get("out:error"))
    seconds, _ = client.time()
    assert datetime.fromisoformat(written["at"]).timestamp() <= seconds + 1
    assert datetime.fromisoformat(written["at"]).tzinfo == UTC


def test_store_records_the_error_when_redis_denies_time(client, settings, monkeypatch) -> None:
    def denied() -> None:
        raise redis.ResponseError("NOPERM this user has no permissions to run the 'time' command")

    store = Store(client, settings(), None, "pod")
    monkeypatch.setattr(client, "time", denied)
    store.record_error(error_record(FailureKind.HANDLER_ERROR, "boom", "", None))
    assert json.loads(client.get("out:error"))["message"] == "boom"
