"""The cluster client's pieces that need no cluster (a real one: tests/cluster/)."""

from __future__ import annotations

import pytest
import redis
from serverless_runtime.config import RedisConfig
from serverless_runtime.storage import cluster
from serverless_runtime.storage.store import Store, connect

from tests.support.valkey import free_port


def test_no_node_answering_is_redis_being_away_not_a_crash() -> None:
    dead = ("127.0.0.1", free_port())
    with pytest.raises(redis.ConnectionError, match=f"no cluster node of 127.0.0.1:{dead[1]}"):
        cluster.connect((dead,), timeout=0.5)


def test_the_store_connects_to_a_cluster_only_when_told_to(settings) -> None:
    dead = ("127.0.0.1", free_port())
    with pytest.raises(redis.ConnectionError, match="no cluster node"):
        connect(RedisConfig(cluster_nodes=(dead,)), timeout=0.5)
    single = connect(RedisConfig(port=dead[1]))  # connects lazily
    assert Store(single, settings(), None, "pod").cluster is None
    single.close()
