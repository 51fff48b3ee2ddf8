"""Settings from the environment: defaults, overrides, and one clear error per bad value."""

from __future__ import annotations

import pytest
from monitoring_dashboard.settings import Invalid, Settings


def test_settings_defaults_need_only_the_output_key():
    settings = Settings.from_env({"REDIS_OUTPUT_KEY": "resource-monitor"})
    assert settings.output_key == "resource-monitor"
    assert (settings.redis.host, settings.redis.port, settings.redis.url) == (
        "localhost",
        6379,
        None,
    )
    assert settings.refresh_seconds == 5.0
    assert settings.history_minutes == 60.0
    assert settings.refresh_ms == 5000
    assert settings.history_ms == 3_600_000
    keys = settings.keys
    assert (keys.output, keys.history, keys.error) == (
        "resource-monitor",
        "resource-monitor:history",
        "resource-monitor:error",
    )


def test_settings_history_key_and_error_key_as_the_runtime_reads_them():
    settings = Settings.from_env({"REDIS_OUTPUT_KEY": "out", "HISTORY_KEY": " h ", "ERROR_KEY": ""})
    # Set empty, a key is one the runtime does not write: the dashboard does not read it.
    assert (settings.keys.history, settings.keys.error) == ("h", None)


def test_settings_functions_key_as_the_runtime_reads_it():
    base = {"REDIS_OUTPUT_KEY": "out"}
    assert Settings.from_env(base).functions_key == "serverless:functions"
    assert Settings.from_env({**base, "FUNCTIONS_KEY": " team:fns "}).functions_key == "team:fns"
    # Empty: no registry read; the Functions page lists the configured function only.
    assert Settings.from_env({**base, "FUNCTIONS_KEY": ""}).functions_key is None


def test_settings_read_every_variable():
    settings = Settings.from_env(
        {
            "REDIS_OUTPUT_KEY": "out",
            "REDIS_HOST": "redis.example",
            "REDIS_PORT": "6380",
            "REDIS_PASSWORD": "s3cret",
            "REFRESH_SECONDS": "1.5",
            "HISTORY_MINUTES": "15",
        }
    )
    assert settings.redis_location == "redis.example:6380"
    assert settings.redis.password == "s3cret"
    assert settings.refresh_seconds == 1.5
    assert settings.history_ms == 15 * 60_000


def test_settings_redis_url_location_hides_credentials():
    settings = Settings.from_env(
        {"REDIS_OUTPUT_KEY": "out", "REDIS_URL": "rediss://app:s3cret@redis.example:6390/2"}
    )
    assert settings.redis.url == "rediss://app:s3cret@redis.example:6390/2"
    assert settings.redis_location == "rediss://redis.example:6390/2"
    assert "s3cret" not in settings.redis_location


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("REDIS_OUTPUT_KEY", ""),
        ("REDIS_OUTPUT_KEY", "   "),
        ("REDIS_PORT", "http"),
        ("REDIS_PORT", "70000"),
        ("REDIS_URL", "http://redis:6379"),
        ("REFRESH_SECONDS", "fast"),
        ("REFRESH_SECONDS", "0"),
        ("REFRESH_SECONDS", "0.01"),
        ("REFRESH_SECONDS", "nan"),
        ("HISTORY_MINUTES", "-5"),
        ("HISTORY_MINUTES", "inf"),
        ("HISTORY_MINUTES", "1e308"),
        ("REFRESH_SECONDS", "1e308"),
        ("REDIS_URL", "redis://redis:99999/0"),
        ("REDIS_URL", "redis://redis:6379/abc"),
        ("REDIS_URL", "redis://redis:6379/99999"),
        ("REDIS_URL", "redis://redis:6379/0?db=x"),
    ],
)
def test_settings_bad_value_names_variable_value_and_form(variable, value):
    environ = {"REDIS_OUTPUT_KEY": "out", variable: value}
    with pytest.raises(Invalid) as caught:
        Settings.from_env(environ)
    message = str(caught.value)
    assert caught.value.name == variable
    assert message.startswith(f"{variable}={value!r}: expected ")
    assert "\n" not in message


@pytest.mark.parametrize(
    "url",
    ["redis://app:s3cret@redis:99999/0", "redis://:s3cret@redis/abc", "http://s3cret@redis"],
)
def test_settings_bad_redis_url_error_hides_the_password(url):
    with pytest.raises(Invalid) as caught:
        Settings.from_env({"REDIS_OUTPUT_KEY": "out", "REDIS_URL": url})
    assert caught.value.name == "REDIS_URL"
    assert "***@redis" in str(caught.value)
    assert "s3cret" not in str(caught.value)


def test_settings_repr_hides_the_password():
    settings = Settings.from_env(
        {
            "REDIS_OUTPUT_KEY": "out",
            "REDIS_URL": "redis://app:s3cret@redis:6379/0",
            "REDIS_PASSWORD": "s3cret",
        }
    )
    assert "s3cret" not in repr(settings)


def test_settings_missing_output_key_is_an_error():
    with pytest.raises(Invalid, match="REDIS_OUTPUT_KEY"):
        Settings.from_env({})
