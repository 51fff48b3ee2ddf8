"""Settings come from the environment once; a bad value stops the process with exit code 2."""

from __future__ import annotations

import subprocess

import pytest
from serverless_runtime.config import ConfigError, InvokeOn, Settings, Trigger

from tests.support.processes import RUNTIME


def test_settings_course_env_gives_course_defaults() -> None:
    settings = Settings.from_env({"REDIS_OUTPUT_KEY": "out"})
    assert (settings.redis.host, settings.redis.port) == ("localhost", 6379)
    assert settings.input_key == "metrics"
    assert settings.interval == 5.0
    assert settings.function_path == "/opt/usermodule.py"
    assert settings.trigger is Trigger.AUTO
    assert settings.invoke_on is InvokeOn.CHANGE
    assert (settings.state_key, settings.history_key, settings.error_key) == (
        "out:state",
        "out:history",
        "out:error",
    )


def test_settings_empty_key_disables_it() -> None:
    settings = Settings.from_env({"REDIS_OUTPUT_KEY": "out", "HISTORY_KEY": "", "STATE_KEY": ""})
    assert settings.history_key is None
    assert settings.state_key is None


def test_settings_are_immutable() -> None:
    settings = Settings.from_env({"REDIS_OUTPUT_KEY": "out"})
    with pytest.raises(AttributeError):
        settings.interval = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("env", "name", "expected"),
    [
        ({"REDIS_PORT": "abc"}, "REDIS_PORT", "whole number"),
        ({"REDIS_PORT": "70000"}, "REDIS_PORT", "whole number"),
        ({"INTERVAL": "-1"}, "INTERVAL", "greater than 0"),
        ({"INTERVAL": "nan"}, "INTERVAL", "greater than 0"),
        ({"TRIGGER": "sometimes"}, "TRIGGER", "auto|notify|poll|stream"),
        ({"INVOKE_ON": "always"}, "INVOKE_ON", "change|interval"),
        ({"REDIS_URL": "http://x"}, "REDIS_URL", "redis://"),
        ({"FUNCTION_HANDLER": "pkg.mod:"}, "FUNCTION_HANDLER", "package.module"),
        ({"LEASE_TTL": "5"}, "LEASE_TTL", "more seconds than INTERVAL (5)"),
    ],
)
def test_settings_bad_value_names_variable_value_and_form(
    env: dict[str, str], name: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"REDIS_OUTPUT_KEY": "out", **env})
    message = str(caught.value)
    assert name in message
    assert repr(env[name]) in message
    assert expected in message


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"REDIS_OUTPUT_KEY": "out", "REDIS_PORT": "abc"}, "REDIS_PORT='abc'"),
        ({"REDIS_OUTPUT_KEY": "out", "INTERVAL": "-1"}, "INTERVAL='-1'"),
        ({}, "REDIS_OUTPUT_KEY=(not set)"),
    ],
)
def test_run_bad_setting_exits_2_with_one_line(env: dict[str, str], name: str) -> None:
    done = subprocess.run([RUNTIME], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert name in lines[0]
    assert "expected" in lines[0]
