"""REDIS_URL checked the way redis-py reads it, and shown without its password."""

from __future__ import annotations

import pytest
from serverless_runtime.storage.redis_url import check, redact


@pytest.mark.parametrize(
    "url",
    [
        "redis://redis:6379/0",
        "redis://redis",
        "rediss://user:pw@redis.example:6380/15",
        "unix:///run/redis.sock",
        "unix:///run/redis.sock?db=3",
        "redis://redis:6379/65535",
    ],
)
def test_check_accepts_what_redis_py_connects_to(url: str) -> None:
    check(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://redis:6379",  # not a Redis scheme
        "redis://",  # no host
        "unix://",  # no socket path
        "redis://redis:0",
        "redis://redis:65536",
        "redis://redis:port",
        "redis://redis:6379/one",  # redis-py would quietly use db 0
        "redis://redis:6379/65536",
        "unix:///run/redis.sock?db=x",
    ],
)
def test_check_refuses_what_redis_py_would_misread(url: str) -> None:
    with pytest.raises(ValueError):
        check(url)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://app:s3cret@redis:6379/0", "redis://app:***@redis:6379/0"),
        ("redis://s3cret@redis:6379", "redis://***@redis:6379"),
        ("redis://app:s3@cr/et@redis:6379", "redis://app:***@redis:6379"),
        ("unix:///run/redis.sock?db=1&password=s3cret", "unix:///run/redis.sock?db=1&password=***"),
        ("redis://redis:6379/0", "redis://redis:6379/0"),
    ],
)
def test_redact_hides_every_password(url: str, shown: str) -> None:
    assert redact(url) == shown
