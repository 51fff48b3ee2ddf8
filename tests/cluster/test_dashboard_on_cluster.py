"""The dashboard on a real Valkey Cluster: REDIS_CLUSTER_NODES, the runtime's hash-tagged keys.

The keys are written as a runtime in cluster mode names them (`{<out>}:history`, …), one function
on each master, so that the Functions page's reads span the cluster.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import redis
from monitoring_dashboard.connection import connect
from monitoring_dashboard.redis_reads import RedisReader
from monitoring_dashboard.settings import Settings
from monitoring_dashboard.snapshots import ReadError
from serverless_runtime.registry import DEFAULT_FUNCTIONS_KEY, FunctionRecord
from serverless_runtime.storage.keys import KeyLayout

from tests.cluster.conftest import PASSWORD
from tests.support.valkey_cluster import ValkeyCluster

pytestmark = pytest.mark.slow

OUTPUTS = ("resource-monitor", "cpu-stats", "orders")


def write_function(client: redis.RedisCluster, output: str, n: int) -> None:
    """What a runtime in cluster mode leaves: output, a history entry, a registry record."""
    keys = KeyLayout.for_output(output, cluster=True)
    value = json.dumps({"percent-memory-caching": float(n), "timestamp": "2026-12-06 05:00:00"})
    client.set(keys.output, value)
    assert keys.history is not None
    client.xadd(keys.history, {"output": value})
    record = FunctionRecord(output, "metrics", history=keys.history, error=keys.error)
    client.hset(DEFAULT_FUNCTIONS_KEY, output, record.to_json())


@pytest.fixture
def settings(valkey_cluster: ValkeyCluster) -> Settings:
    nodes = ",".join(f"{host}:{port}" for host, port in valkey_cluster.startup_nodes[:2])
    return Settings.from_env(
        {
            "REDIS_CLUSTER_NODES": nodes,
            "REDIS_PASSWORD": PASSWORD,
            "REDIS_OUTPUT_KEY": "resource-monitor",
        }
    )


@pytest.fixture
def written(valkey_cluster: ValkeyCluster) -> Iterator[None]:
    client = valkey_cluster.client()
    for n, output in enumerate(OUTPUTS):
        write_function(client, output, n)
    yield
    client.close()


def test_settings_name_the_keys_as_the_runtime_does_in_a_cluster(settings: Settings) -> None:
    assert settings.keys.history == "{resource-monitor}:history"
    assert settings.redis_location.startswith("the Redis Cluster at 127.0.0.1:")


def test_the_live_page_reads_one_function_across_the_cluster(
    settings: Settings, written: None, valkey_cluster: ValkeyCluster
) -> None:
    masters = {valkey_cluster.owner(key).port for key in (*OUTPUTS, DEFAULT_FUNCTIONS_KEY)}
    assert len(masters) > 1, "the test's keys should live on more than one master"
    reader = RedisReader(connect(settings), settings.keys, settings.history_ms, None)
    snapshot = reader.read()
    assert snapshot.problems == []
    assert snapshot.output is not None and snapshot.output["percent-memory-caching"] == 0.0
    assert snapshot.has_history and len(snapshot.history) >= 1


def test_the_functions_page_lists_and_reads_every_function(
    settings: Settings, written: None
) -> None:
    reader = RedisReader(
        connect(settings), settings.keys, settings.history_ms, settings.functions_key
    )
    listing = reader.list_functions()
    assert listing.problems == []
    assert sorted(summary.record.output for summary in listing.functions) == sorted(OUTPUTS)
    assert all(summary.output_exists for summary in listing.functions)
    one = reader.read_function("orders")
    assert one is not None and one.has_output and one.output["percent-memory-caching"] == 2.0
    assert one.has_history


def test_a_cluster_that_does_not_answer_is_a_notice_not_a_crash() -> None:
    settings = Settings.from_env(
        {"REDIS_CLUSTER_NODES": "127.0.0.1:1", "REDIS_OUTPUT_KEY": "resource-monitor"}
    )
    client = connect(settings)  # made at its first use: the dashboard still starts
    reader = RedisReader(client, settings.keys, settings.history_ms, None)
    with pytest.raises(ReadError, match="Cluster"):
        reader.read()
