"""One real Valkey Cluster per test module: three masters with a replica each, and a password."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from redis.cluster import RedisCluster
from serverless_runtime.storage import cluster

from tests.support.valkey_cluster import ValkeyCluster

PASSWORD = "s3cret"


@pytest.fixture(scope="module")
def valkey_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ValkeyCluster]:
    nodes = ValkeyCluster(tmp_path_factory.mktemp("cluster"), replicas=1, password=PASSWORD)
    try:
        nodes.start()
        yield nodes
    finally:
        nodes.stop()


@pytest.fixture
def shaped(valkey_cluster: ValkeyCluster) -> Iterator[ValkeyCluster]:
    """The module's cluster, with every node a test killed or froze brought back afterwards."""
    yield valkey_cluster
    for node in valkey_cluster.nodes:
        valkey_cluster.heal(node)


@pytest.fixture
def client(valkey_cluster: ValkeyCluster) -> Iterator[RedisCluster]:
    """The runtime's cluster client (storage.cluster.connect), text replies."""
    # Two of the six nodes, as a deployment lists a few; a short timeout notices a frozen master
    # sooner (the runtime's default is 5 s).
    nodes = tuple(valkey_cluster.startup_nodes[:2])
    made = cluster.connect(nodes, password=PASSWORD, timeout=2.0)
    yield made
    made.close()
