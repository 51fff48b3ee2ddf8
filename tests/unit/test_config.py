"""Settings come from the environment once; a bad value stops the process with exit code 2."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator

import pytest
from serverless_runtime.cli import _function_source
from serverless_runtime.config import ConfigError, InvokeOn, Settings, Trigger
from serverless_runtime.function.handler_ref import HandlerRef

from tests.support.processes import RUNTIME

PASSWORD = "s3cret-Pa55"


def test_settings_course_env_gives_course_defaults() -> None:
    settings = Settings.from_env({"REDIS_OUTPUT_KEY": "out"})
    assert (settings.redis.host, settings.redis.port) == ("localhost", 6379)
    assert settings.keys.input == "metrics"
    assert settings.interval == 5.0
    assert settings.function_path == "/opt/usermodule.py"
    assert settings.trigger is Trigger.AUTO
    assert settings.invoke_on is InvokeOn.CHANGE
    assert (settings.keys.state, settings.keys.history, settings.keys.error) == (
        "out:state",
        "out:history",
        "out:error",
    )


def test_settings_empty_key_disables_it() -> None:
    settings = Settings.from_env({"REDIS_OUTPUT_KEY": "out", "HISTORY_KEY": "", "STATE_KEY": ""})
    assert settings.keys.history is None
    assert settings.keys.state is None


@pytest.mark.parametrize(
    ("raw", "module", "function"),
    [
        ("shop.main:handle", "shop.main", "handle"),
        ("shop.main", "shop.main", "handler"),
        (":handle", None, "handle"),
        (" pkg:run ", "pkg", "run"),
    ],
)
def test_handler_ref_parses_each_form(raw: str, module: str | None, function: str) -> None:
    assert HandlerRef.parse(raw) == HandlerRef(module, function)


@pytest.mark.parametrize("raw", ["pkg.mod:", "pkg..mod", "1pkg:fn", ":1fn", "pkg:fn:x", ":", "a-b"])
def test_handler_ref_rejects_what_cannot_be_imported(raw: str) -> None:
    with pytest.raises(ValueError, match=r"not a|names no function"):
        HandlerRef.parse(raw)


def test_settings_handler_defaults_to_the_handler_of_usermodule() -> None:
    settings = Settings.from_env({"REDIS_OUTPUT_KEY": "out"})
    assert settings.function_handler == HandlerRef(None, "handler")


def test_settings_zip_handler_names_module_and_function() -> None:
    env = {"REDIS_OUTPUT_KEY": "out", "FUNCTION_ZIP": "/f.zip", "FUNCTION_HANDLER": "shop.main"}
    assert Settings.from_env(env).function_handler == HandlerRef("shop.main", "handler")


def test_settings_file_mode_function_name_is_the_handler_called(tmp_path) -> None:
    function = tmp_path / "usermodule.py"
    function.write_text("def main(input, context):\n    return {'via': 'main'}\n")
    env = {"REDIS_OUTPUT_KEY": "out", "FUNCTION_PATH": str(function), "FUNCTION_HANDLER": ":main"}
    source = _function_source(Settings.from_env(env))
    assert source.refresh()
    assert source.current is not None
    assert source.current.handler({}, None) == {"via": "main"}


def test_settings_new_requerimients_are_the_specifiers_pip_install_took() -> None:
    # The course's spelling; `pip install $NEW_REQUERIMENTS` split the value at white space.
    env = {"REDIS_OUTPUT_KEY": "out", "NEW_REQUERIMENTS": " numpy\tpandas==2.2.3\n scipy>=1 "}
    settings = Settings.from_env(env)
    assert settings.new_requirements == ("numpy", "pandas==2.2.3", "scipy>=1")
    assert settings.new_requirements_dir is None  # the temporary directory's new-requirements
    assert settings.new_requirements_timeout == 300.0
    assert (
        Settings.from_env({"REDIS_OUTPUT_KEY": "out", "NEW_REQUERIMENTS": " "}).new_requirements
        == ()
    )


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
        ({"TRIGGER": "stream", "INVOKE_ON": "interval"}, "INVOKE_ON", "each entry is handled once"),
        ({"NEW_REQUERIMENTS": "numpy -r x.txt"}, "NEW_REQUERIMENTS", "no pip options"),
        ({"NEW_REQUERIMENTS": "--index-url=x numpy"}, "NEW_REQUERIMENTS", "no pip options"),
        ({"NEW_REQUERIMENTS_TIMEOUT": "0"}, "NEW_REQUERIMENTS_TIMEOUT", "greater than 0"),
        ({"REDIS_URL": "http://x"}, "REDIS_URL", "redis://"),
        ({"FUNCTION_HANDLER": "pkg.mod:"}, "FUNCTION_HANDLER", "package.module"),
        ({"FUNCTION_HANDLER": "pkg.mod:fn"}, "FUNCTION_HANDLER", "only for a FUNCTION_ZIP"),
        ({"FUNCTION_HANDLER": "pkg"}, "FUNCTION_HANDLER", ":function (a module is named"),
        ({"LEASE_TTL": "5"}, "LEASE_TTL", "more seconds than INTERVAL (5)"),
        ({"INTERVAL": "1e308"}, "INTERVAL", "at most 86400"),
        ({"LEASE_TTL": "1e300"}, "LEASE_TTL", "at most 259200"),
        ({"HANDLER_TIMEOUT": "86401"}, "HANDLER_TIMEOUT", "at most 86400"),
        ({"STREAM_CLAIM_IDLE": "inf"}, "STREAM_CLAIM_IDLE", "at most 86400"),
        ({"MAX_REPLAY_SECONDS": "0"}, "MAX_REPLAY_SECONDS", "greater than 0"),
        ({"MAX_REPLAY_SECONDS": "inf"}, "MAX_REPLAY_SECONDS", "at most 86400"),
        ({"HTTP_HOST": "999.1.1.1"}, "HTTP_HOST", "an IP address"),
        ({"HTTP_HOST": "bad_host!"}, "HTTP_HOST", "or a host name"),
        ({"REDIS_URL": "redis://h:6379/abc"}, "REDIS_URL", "a db from 0 to 65535"),
        ({"REDIS_URL": "redis://h:6379/99999"}, "REDIS_URL", "a db from 0 to 65535"),
        ({"REDIS_URL": "redis://h:6379/0?db=abc"}, "REDIS_URL", "a db from 0 to 65535"),
        ({"REDIS_URL": "unix:///run/redis.sock?db=70000"}, "REDIS_URL", "unix://path"),
        ({"REDIS_URL": "redis://h:99999/0"}, "REDIS_URL", "a port from 1 to 65535"),
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
    "env",
    [
        {"HTTP_HOST": "::"},
        {"HTTP_HOST": "localhost"},
        {"HTTP_HOST": "runtime-0.runtime.serverless.svc.cluster.local"},
        {"REDIS_URL": "redis://h:6380/15"},
        {"REDIS_URL": "redis://h/"},
        {"REDIS_URL": "rediss://app:pw@h:6390/65535"},
        {"REDIS_URL": "unix:///run/redis.sock?db=2"},
        {"INTERVAL": "86400", "LEASE_TTL": "259200", "HANDLER_TIMEOUT": "86400"},
    ],
)
def test_settings_accept_values_at_the_documented_bounds(env: dict[str, str]) -> None:
    Settings.from_env({"REDIS_OUTPUT_KEY": "out", **env})


def test_settings_state_reset_and_max_replay_seconds() -> None:
    default = Settings.from_env({"REDIS_OUTPUT_KEY": "out"})
    assert (default.max_replay_seconds, default.state_reset) == (5.0, None)
    env = {"REDIS_OUTPUT_KEY": "out", "MAX_REPLAY_SECONDS": "0.5", "STATE_RESET": " 2026-12-06 "}
    settings = Settings.from_env(env)
    assert (settings.max_replay_seconds, settings.state_reset) == (0.5, "2026-12-06")


@pytest.mark.parametrize(
    "url",
    [
        f"redis://app:{PASSWORD}@h:99999/0",
        f"redis://:{PASSWORD}@h:6379/abc",
        f"rediss://{PASSWORD}@h:6379/99999",
        f"redis://app:{PASSWORD[:4]}@/{PASSWORD[4:]}@h:6379/x",  # an unescaped "@" and "/"
        f"redis://h:6379/abc?password={PASSWORD}",
        f"http://app:{PASSWORD}@h",
    ],
)
def test_settings_bad_redis_url_error_hides_the_password(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"REDIS_OUTPUT_KEY": "out", "REDIS_URL": url})
    message = str(caught.value)
    assert "REDIS_URL=" in message
    assert "***" in message
    assert PASSWORD not in message
    assert PASSWORD[:4] not in message
    assert PASSWORD[4:] not in message


def test_settings_repr_hides_the_password() -> None:
    settings = Settings.from_env(
        {
            "REDIS_OUTPUT_KEY": "out",
            "REDIS_URL": f"redis://app:{PASSWORD}@h:6379/0",
            "REDIS_PASSWORD": PASSWORD,
        }
    )
    assert settings.redis.url == f"redis://app:{PASSWORD}@h:6379/0"
    assert PASSWORD not in repr(settings)


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"REDIS_OUTPUT_KEY": "out", "REDIS_PORT": "abc"}, "REDIS_PORT='abc'"),
        ({"REDIS_OUTPUT_KEY": "out", "INTERVAL": "-1"}, "INTERVAL='-1'"),
        ({}, "REDIS_OUTPUT_KEY=(not set)"),
        ({"REDIS_OUTPUT_KEY": "out", "INTERVAL": "1e308"}, "INTERVAL='1e308'"),
        ({"REDIS_OUTPUT_KEY": "out", "LEASE_TTL": "1e300"}, "LEASE_TTL='1e300'"),
        ({"REDIS_OUTPUT_KEY": "out", "HTTP_HOST": "999.1.1.1"}, "HTTP_HOST='999.1.1.1'"),
        (
            {"REDIS_OUTPUT_KEY": "out", "FUNCTION_HANDLER": "shop.main:handle"},
            "FUNCTION_HANDLER='shop.main:handle'",
        ),
        (
            {"REDIS_OUTPUT_KEY": "out", "REDIS_URL": "redis://127.0.0.1:6379/99999"},
            "REDIS_URL='redis://127.0.0.1:6379/99999'",
        ),
        (
            {"REDIS_OUTPUT_KEY": "out", "REDIS_URL": f"redis://app:{PASSWORD}@127.0.0.1/abc"},
            "REDIS_URL='redis://app:***@127.0.0.1/abc'",
        ),
        (
            {"REDIS_OUTPUT_KEY": "out", "REDIS_URL": f"redis://:{PASSWORD}@127.0.0.1:99999"},
            "REDIS_URL='redis://:***@127.0.0.1:99999'",
        ),
    ],
)
def test_run_bad_setting_exits_2_with_one_line(env: dict[str, str], name: str) -> None:
    done = subprocess.run([RUNTIME], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert name in lines[0]
    assert "expected" in lines[0]
    assert PASSWORD not in done.stderr + done.stdout


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port another process already listens on."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def test_run_http_port_in_use_exits_2_with_one_line(busy_port: int, tmp_path) -> None:
    function = tmp_path / "usermodule.py"
    function.write_text("def handler(input, context):\n    return {}\n")
    env = {
        "REDIS_OUTPUT_KEY": "out",
        "REDIS_HOST": "127.0.0.1",
        "REDIS_PORT": "1",  # never reached: the check comes first
        "FUNCTION_PATH": str(function),
        "HTTP_HOST": "127.0.0.1",
        "HTTP_PORT": str(busy_port),
    }
    done = subprocess.run([RUNTIME], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"serverless-runtime: invalid setting HTTP_PORT='{busy_port}': expected a port free to "
        "listen on at 127.0.0.1 (Address already in use)"
    ]


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT='xml'"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL='loud'"),
        ({"REDIS_URL": f"redis://app:{PASSWORD}@127.0.0.1:99999"}, "REDIS_URL='redis://app:***@"),
    ],
)
def test_collect_bad_setting_exits_2_with_one_line(env: dict[str, str], name: str) -> None:
    done = subprocess.run(
        [RUNTIME, "collect", "--period", "0.1"],
        env={"REDIS_HOST": "127.0.0.1", "REDIS_PORT": "1", **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"serverless-runtime: invalid setting {name}")
    assert PASSWORD not in done.stderr + done.stdout


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"REDIS_INPUT_KEY": "out"}, ("REDIS_INPUT_KEY", "REDIS_OUTPUT_KEY")),
        ({"STATE_KEY": "metrics"}, ("STATE_KEY", "REDIS_INPUT_KEY")),
        ({"HISTORY_KEY": "out"}, ("HISTORY_KEY", "REDIS_OUTPUT_KEY")),
        ({"ERROR_KEY": "metrics"}, ("ERROR_KEY", "REDIS_INPUT_KEY")),
        ({"LEASE_KEY": "out"}, ("LEASE_KEY", "REDIS_OUTPUT_KEY")),
        ({"STATE_KEY": "s", "HISTORY_KEY": "s"}, ("HISTORY_KEY", "STATE_KEY")),
        ({"ERROR_KEY": "x", "LEASE_KEY": "x"}, ("LEASE_KEY", "ERROR_KEY")),
        ({"HISTORY_KEY": "out:poison"}, ("HISTORY_KEY", "REDIS_OUTPUT_KEY")),
        # Keys named after another: the output's digest, the state's journal.
        ({"REDIS_INPUT_KEY": "out:input-digest"}, ("REDIS_INPUT_KEY", "REDIS_OUTPUT_KEY")),
        ({"REDIS_INPUT_KEY": "s:journal", "STATE_KEY": "s"}, ("REDIS_INPUT_KEY", "STATE_KEY")),
        ({"REDIS_INPUT_KEY": "l:token", "LEASE_KEY": "l"}, ("REDIS_INPUT_KEY", "LEASE_KEY")),
        ({"FUNCTIONS_KEY": "out"}, ("FUNCTIONS_KEY", "REDIS_OUTPUT_KEY")),
        ({"FUNCTIONS_KEY": "out:state:seq"}, ("FUNCTIONS_KEY", "STATE_KEY")),
        ({"REDIS_INPUT_KEY": "out:state:epoch"}, ("REDIS_INPUT_KEY", "STATE_KEY")),
        ({"REDIS_INPUT_KEY": "out:in-flight"}, ("REDIS_INPUT_KEY", "REDIS_OUTPUT_KEY")),
    ],
)
def test_settings_refuse_two_uses_of_one_key(env: dict[str, str], names: tuple[str, ...]) -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"REDIS_OUTPUT_KEY": "out", **env})
    message = str(raised.value)
    assert message.startswith(f"invalid setting {names[0]}=")
    assert all(name in message for name in names)


@pytest.mark.parametrize(
    "env",
    [
        {"STATE_KEY": "", "HISTORY_KEY": "", "ERROR_KEY": "", "LEASE_KEY": ""},  # all disabled
        {"REDIS_INPUT_KEY": "out:in"},  # named like a derived key, but none is
        {"STATE_KEY": "shared:state", "HISTORY_KEY": "shared:history"},
    ],
)
def test_settings_accept_distinct_keys(env: dict[str, str]) -> None:
    Settings.from_env({"REDIS_OUTPUT_KEY": "out", **env})


def test_settings_refuse_stream_consumer_state_on_the_input() -> None:
    env = {"REDIS_OUTPUT_KEY": "out", "TRIGGER": "stream", "STREAM_CONSUMER": "pod"}
    with pytest.raises(ConfigError, match="REDIS_INPUT_KEY"):
        Settings.from_env({**env, "REDIS_INPUT_KEY": "out:state:pod"})


def test_run_input_key_equal_to_output_key_exits_2_with_one_line() -> None:
    env = {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": "1", "REDIS_OUTPUT_KEY": "same"}
    done = subprocess.run(
        [RUNTIME],
        env={**env, "REDIS_INPUT_KEY": "same"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "REDIS_INPUT_KEY='same'" in lines[0]
    assert "REDIS_OUTPUT_KEY" in lines[0]
