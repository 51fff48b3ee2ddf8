"""The registry record: what a runtime writes for the dashboard, and how a reader takes it back."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime

import fakeredis
import pytest
import redis
from serverless_runtime.config import Settings
from serverless_runtime.registry import (
    DEFAULT_FUNCTIONS_KEY,
    FunctionRecord,
    LoadFailure,
    Registration,
)

MOMENT = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_registry_record_holds_the_key_layout_trigger_and_function() -> None:
    settings = Settings.from_env(
        {
            "REDIS_OUTPUT_KEY": "cpu-stats",
            "REDIS_INPUT_KEY": "metrics",
            "TRIGGER": "notify",
            "INVOKE_ON": "interval",
            "FUNCTION_PATH": "/opt/function/usermodule.py",
            "ERROR_KEY": "",
        }
    )
    record = FunctionRecord.from_settings(settings, MOMENT, lambda: "10.244.0.7")
    value = json.loads(record.to_json())
    assert value == {
        "output": "cpu-stats",
        "input": "metrics",
        "input_kind": "key",
        "history": "cpu-stats:history",
        "error": None,
        "state": "cpu-stats:state",
        "trigger": "notify",
        "invoke_on": "interval",
        "function": "/opt/function/usermodule.py",
        "handler": ":handler",
        "registered_at": "2026-12-01T12:00:00+00:00",
        # HTTP_HOST 0.0.0.0 (every address): the pod's own address, where the dashboard scrapes.
        "metrics": "http://10.244.0.7:8080/metrics",
        # No version failed to load since the one running loaded.
        "load_failure": None,
    }
    # Compact: no spaces after separators.
    assert ": " not in record.to_json() and ", " not in record.to_json()


@pytest.mark.parametrize(
    ("env", "address", "expected"),
    [
        ({"HTTP_HOST": "127.0.0.1", "HTTP_PORT": "18080"}, None, "http://127.0.0.1:18080/metrics"),
        ({"HTTP_HOST": "::1"}, None, "http://[::1]:8080/metrics"),
        ({"HTTP_HOST": "::"}, "fd00::7", "http://[fd00::7]:8080/metrics"),
        ({"HTTP_PORT": "0"}, "10.0.0.1", ""),
        # The host's address cannot be found: no URL rather than a wrong one.
        ({}, None, ""),
    ],
)
def test_registry_record_names_where_its_metrics_answer(env, address, expected) -> None:
    settings = Settings.from_env({"REDIS_OUTPUT_KEY": "a", **env})
    record = FunctionRecord.from_settings(settings, MOMENT, lambda: address)
    assert record.metrics == expected
    assert FunctionRecord.parse("a", record.to_json()) == record


def test_registry_record_of_a_stream_function_and_a_zip() -> None:
    settings = Settings.from_env(
        {
            "REDIS_OUTPUT_KEY": "orders-out",
            "REDIS_INPUT_KEY": "orders",
            "TRIGGER": "stream",
            "FUNCTION_ZIP": "/opt/function/function.zip",
            "FUNCTION_HANDLER": "shop.main:handle",
        }
    )
    record = FunctionRecord.from_settings(settings, MOMENT)
    assert (record.input, record.input_kind) == ("orders", "stream")
    assert (record.function, record.handler) == ("/opt/function/function.zip", "shop.main:handle")


def test_registry_record_round_trips_and_refuses_what_is_not_one() -> None:
    record = FunctionRecord.from_settings(Settings.from_env({"REDIS_OUTPUT_KEY": "é.x"}), MOMENT)
    assert FunctionRecord.parse("é.x", record.to_json()) == record
    # Another field's record, not JSON, not an object, too large, bytes: not a record.
    assert FunctionRecord.parse("other", record.to_json()) is None
    assert FunctionRecord.parse("é.x", "{") is None
    assert FunctionRecord.parse("é.x", "[1]") is None
    assert FunctionRecord.parse("é.x", " " * 20_000 + record.to_json()) is None
    assert FunctionRecord.parse("é.x", record.to_json().encode()) is None
    assert FunctionRecord.parse("é.x", "[" * 100_000) is None
    # Fields of the wrong type are dropped, not trusted.
    odd = json.dumps({"output": "é.x", "history": 5, "input": ["x"], "error": "é.x:error"})
    parsed = FunctionRecord.parse("é.x", odd)
    assert parsed is not None
    assert (parsed.history, parsed.input, parsed.error) == (None, "", "é.x:error")


def test_registry_register_writes_one_field_per_output_key() -> None:
    client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    first = FunctionRecord.from_settings(Settings.from_env({"REDIS_OUTPUT_KEY": "a"}), MOMENT)
    second = FunctionRecord.from_settings(Settings.from_env({"REDIS_OUTPUT_KEY": "b"}), MOMENT)
    assert Registration(client, DEFAULT_FUNCTIONS_KEY, first).register()
    assert Registration(client, DEFAULT_FUNCTIONS_KEY, second).register()
    assert Registration(client, DEFAULT_FUNCTIONS_KEY, first).register()
    stored = fakeredis.FakeRedis(
        server=client.connection_pool.connection_kwargs["server"], decode_responses=True
    ).hgetall(DEFAULT_FUNCTIONS_KEY)
    assert sorted(stored) == ["a", "b"]
    assert FunctionRecord.parse("b", stored["b"]) == second


def test_registry_record_carries_a_load_failure_until_a_version_loads() -> None:
    client = fakeredis.FakeRedis(decode_responses=True)
    record = FunctionRecord.from_settings(Settings.from_env({"REDIS_OUTPUT_KEY": "a"}), MOMENT)
    registration = Registration(client, DEFAULT_FUNCTIONS_KEY, record)
    assert registration.register()
    assert json.loads(client.hget(DEFAULT_FUNCTIONS_KEY, "a") or "")["load_failure"] is None

    failure = LoadFailure(
        mtime="2030-03-17T17:46:40+00:00",
        digest="0f" * 16,
        kind="syntax-error",
        message="syntax error in /opt/usermodule.py at line 3: invalid syntax",
        running=True,
    )
    registration.load_failed(failure)
    stored = FunctionRecord.parse("a", client.hget(DEFAULT_FUNCTIONS_KEY, "a"))
    assert stored is not None and stored.load_failure == failure
    assert failure.describe() == (
        "version from 2030-03-17 17:46:40 UTC failed to load: syntax error in "
        "/opt/usermodule.py at line 3: invalid syntax; running the previous version"
    )
    # Written again at the next connect with the failure (a restarted Redis gets it back).
    client.delete(DEFAULT_FUNCTIONS_KEY)
    assert registration.register()
    assert FunctionRecord.parse("a", client.hget(DEFAULT_FUNCTIONS_KEY, "a")) == stored

    registration.load_failed(None)
    cleared = FunctionRecord.parse("a", client.hget(DEFAULT_FUNCTIONS_KEY, "a"))
    assert cleared is not None and cleared.load_failure is None
    assert replace(failure, running=False).describe().endswith("; no version is running")


@pytest.mark.parametrize(
    "raw",
    [
        "nope",
        {"mtime": 5, "message": "m"},
        {"mtime": "2030-03-17T17:46:40+00:00", "message": ["m"]},
    ],
)
def test_registry_record_reads_an_odd_load_failure_as_none(raw) -> None:
    value = {"output": "a", "input": "metrics", "load_failure": raw}
    parsed = FunctionRecord.parse("a", json.dumps(value))
    assert parsed is not None and parsed.load_failure is None


def test_registry_register_logs_a_redis_error_and_returns(caplog) -> None:
    client = fakeredis.FakeRedis()
    client.set(DEFAULT_FUNCTIONS_KEY, "not a hash")
    record = FunctionRecord.from_settings(Settings.from_env({"REDIS_OUTPUT_KEY": "a"}), MOMENT)
    with caplog.at_level(logging.WARNING):
        assert not Registration(client, DEFAULT_FUNCTIONS_KEY, record).register()
    assert "cannot record 'a' in the function registry" in caplog.text
    assert "tried again when Redis next answers" in caplog.text
    with pytest.raises(redis.ResponseError):
        client.hgetall(DEFAULT_FUNCTIONS_KEY)


def test_registry_register_survives_a_cluster_slot_without_a_master(caplog) -> None:
    class NoMaster:
        def hset(self, *_: object) -> None:
            raise redis.exceptions.SlotNotCoveredError("slot 1234 is not covered")

    record = FunctionRecord.from_settings(Settings.from_env({"REDIS_OUTPUT_KEY": "a"}), MOMENT)
    registration = Registration(NoMaster(), DEFAULT_FUNCTIONS_KEY, record)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING):
        assert not registration.register()
    assert "slot 1234 is not covered" in caplog.text


def test_registry_functions_key_setting_default_and_disabled() -> None:
    assert Settings.from_env({"REDIS_OUTPUT_KEY": "a"}).functions_key == "serverless:functions"
    assert Settings.from_env({"REDIS_OUTPUT_KEY": "a", "FUNCTIONS_KEY": ""}).functions_key is None
    custom = Settings.from_env({"REDIS_OUTPUT_KEY": "a", "FUNCTIONS_KEY": " team:fns "})
    assert custom.functions_key == "team:fns"


def test_registry_module_imports_only_the_standard_library() -> None:
    # The dashboard image installs the runtime package without its dependencies.
    code = (
        "import json, sys; import serverless_runtime.registry; "
        "print(json.dumps(sorted({name.split('.')[0] for name in sys.modules})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    # __main__ is the -c script; _distutils_hack is setuptools' hook, loaded by site in a venv.
    others = set(json.loads(result.stdout)) - set(sys.stdlib_module_names)
    assert others - {"__main__", "_distutils_hack"} == {"serverless_runtime"}
