"""Keyspace notifications are turned on where allowed; where not, the reason is said."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from serverless_runtime.storage import notifications

from tests.support.valkey import ValkeyProcess


@pytest.fixture
def server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[redis.Redis]:
    extra = ("--rename-command", "CONFIG", '""') if request.param == "no-config" else ()
    valkey = ValkeyProcess(tmp_path / "valkey", extra_args=extra)
    valkey.start()
    client = valkey.client()
    yield client
    client.close()
    valkey.stop()


@pytest.mark.parametrize("server", ["plain"], indirect=True)
def test_events_for_string_commands_are_turned_on_and_kept(server: redis.Redis) -> None:
    server.config_set("notify-keyspace-events", "Eh")  # another tool's hash events stay on
    assert notifications.refused(server) is None
    flags = str(server.config_get("notify-keyspace-events")["notify-keyspace-events"])
    assert {"K", "$", "E", "h"} <= set(flags)
    pubsub = server.pubsub()
    pubsub.subscribe("__keyspace@0__:in")
    pubsub.get_message(timeout=1)
    server.set("in", "1")
    message = pubsub.get_message(timeout=2)
    assert message is not None and message["data"] in ("set", b"set")
    pubsub.close()


@pytest.mark.parametrize("server", ["no-config"], indirect=True)
def test_a_server_that_refuses_config_gives_the_reason(server: redis.Redis) -> None:
    why = notifications.refused(server)
    assert why is not None and "config" in why.lower()
