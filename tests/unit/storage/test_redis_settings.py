"""Where Redis is, read once for both apps: the forms, the defaults, and the errors they share."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from serverless_runtime.storage.redis_settings import Invalid, RedisConfig


def test_host_and_port_default_and_blank_values_fall_back_to_them() -> None:
    assert RedisConfig.from_env({}) == RedisConfig("localhost", 6379)
    blank = RedisConfig.from_env({"REDIS_HOST": " ", "REDIS_PORT": " ", "REDIS_PASSWORD": " "})
    assert (blank.host, blank.port, blank.password) == ("localhost", 6379, None)


def test_location_names_the_variable_and_hides_the_password() -> None:
    config = RedisConfig.from_env({"REDIS_URL": " redis://app:s3cret@redis:6380/2 "})
    assert config.url == "redis://app:s3cret@redis:6380/2"
    assert config.location == ("REDIS_URL", "redis://app:***@redis:6380/2")
    assert "s3cret" not in repr(config)
    assert RedisConfig.from_env({"REDIS_PORT": "6380"}).location == (
        "REDIS_HOST/REDIS_PORT",
        "localhost:6380",
    )


@pytest.mark.parametrize(
    ("environ", "name", "shown"),
    [
        ({"REDIS_PORT": "0"}, "REDIS_PORT", "0"),
        ({"REDIS_PORT": "http"}, "REDIS_PORT", "http"),
        ({"REDIS_URL": "redis://:s3cret@h:99999/0"}, "REDIS_URL", "redis://:***@h:99999/0"),
        ({"REDIS_SENTINEL_MASTER": "m"}, "REDIS_SENTINELS", None),
    ],
)
def test_a_bad_value_names_the_variable_and_what_was_expected(environ, name, shown) -> None:
    with pytest.raises(Invalid) as caught:
        RedisConfig.from_env(environ)
    assert (caught.value.name, caught.value.value) == (name, shown)
    assert str(caught.value).startswith(f"{name}={shown!r}: expected ")


def test_the_module_imports_only_the_standard_library() -> None:
    # The dashboard image installs the runtime package without its dependencies.
    code = (
        "import json, sys; import serverless_runtime.storage.redis_settings; "
        "print(json.dumps(sorted({name.split('.')[0] for name in sys.modules})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    others = set(json.loads(result.stdout)) - set(sys.stdlib_module_names)
    assert others - {"__main__", "_distutils_hack"} == {"serverless_runtime"}
