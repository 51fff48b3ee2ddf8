"""The Live page's refresh callback over HTTP: Redis down and odd failures become messages, and
the KPIs and graphs show what the runtime wrote."""

from __future__ import annotations

from monitoring_dashboard.connection import connect
from monitoring_dashboard.redis_reads import RedisReader
from monitoring_dashboard.settings import RedisConfig, Settings
from monitoring_dashboard.snapshots import ReadError

from tests.dashboard.runtime_writes import resource_output, write_output
from tests.dashboard.test_app import StubReader, client_for, refresh, texts


def test_live_refresh_shows_redis_down_as_a_message():
    response = refresh(client_for(StubReader(ReadError("ConnectionError: refused"))))
    assert "Redis is unreachable" in texts(response["live-notices"]["children"])
    # Graphs and KPIs are left out of the response: the page keeps what it shows.
    assert "graph-egress" not in response
    assert "kpi-egress" not in response


def test_live_refresh_turns_an_unexpected_failure_into_a_message():
    response = refresh(client_for(StubReader(RuntimeError("bug in a reader"))))
    notices = texts(response["live-notices"]["children"])
    assert "could not render" in notices
    assert "Traceback" not in str(response)
    assert "bug in a reader" not in str(response)


def test_live_refresh_reads_the_runtime_keys_from_redis(valkey, redis_client):
    write_output(redis_client, "resource-monitor", resource_output([12.5, 37.5], egress=3.14159))
    settings = Settings(
        output_key="resource-monitor", redis=RedisConfig(url=valkey.url), refresh_seconds=1
    )
    reader = RedisReader(connect(settings), settings.keys, settings.history_ms, None)
    response = refresh(client_for(reader, settings))
    assert response["kpi-egress"]["children"] == "3.14 %"
    assert response["kpi-cpu"]["children"] == "2 · mean 25.00 %"
    assert response["graph-latest"]["figure"]["data"][0]["y"][:2] == [3.142, 41.5]
    assert response["live-notices"]["children"] == []
