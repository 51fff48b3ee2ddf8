"""The runtime's cluster pieces against a real Valkey Cluster: the client follows a slot that
moves (MOVED, and ASK half-way through) and a master that fails over; derived key names share
their output key's slot; keyspace events for one key follow its master.

The tests share one cluster (three masters, a replica each); each uses keys of its own and finds
their master when it needs it, so the order of the tests does not matter.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable

import pytest
import redis
from redis.cluster import RedisCluster
from serverless_runtime.storage import cluster
from serverless_runtime.storage.cluster import KeyEvents
from serverless_runtime.storage.redis_cluster import slot, tagged

from tests.support.processes import wait_for
from tests.support.valkey import free_port
from tests.support.valkey_cluster import ClusterNode, ValkeyCluster

from .conftest import PASSWORD

pytestmark = pytest.mark.slow


def other_master(nodes: ValkeyCluster, key: str) -> ClusterNode:
    owner = nodes.owner(key)
    return next(master for master in nodes.masters() if master is not owner)


def on_node(node: ClusterNode, key: str) -> str | None:
    """The key as this node holds it (no redirection; ASKING: a node importing the slot too)."""
    with node.client() as direct, direct.pipeline(transaction=False) as pipe:
        pipe.execute_command("ASKING")
        pipe.execute_command("GET", key)
        return pipe.execute()[1]  # type: ignore[no-any-return]


def retried(command: Callable[[], object]) -> object:
    """The command as the runtime's loop runs it: a connection error is backed off and retried."""

    def attempt() -> tuple[object] | None:
        try:
            return (command(),)
        except (redis.ConnectionError, redis.TimeoutError):
            return None

    return wait_for(attempt, what="the command to succeed again")[0]


def test_input_and_output_live_on_different_masters(
    valkey_cluster: ValkeyCluster, client: RedisCluster
) -> None:
    client.set("metrics", "1")
    client.set("resource-monitor", "2")
    assert valkey_cluster.owner("metrics") is not valkey_cluster.owner("resource-monitor")
    assert on_node(valkey_cluster.owner("metrics"), "metrics") == "1"
    assert on_node(valkey_cluster.owner("resource-monitor"), "resource-monitor") == "2"
    assert len(valkey_cluster.masters()) == 3


def test_a_dead_startup_node_is_skipped(valkey_cluster: ValkeyCluster) -> None:
    nodes = (("127.0.0.1", free_port()), *valkey_cluster.startup_nodes[2:3])
    client = cluster.connect(nodes, password=PASSWORD)
    try:
        client.set("resource-monitor", "1")
        assert client.get("resource-monitor") == b"1"
    finally:
        client.close()


def test_no_node_answering_or_a_wrong_password_is_a_connection_error(
    valkey_cluster: ValkeyCluster,
) -> None:
    dead = ("127.0.0.1", free_port())
    with pytest.raises(redis.ConnectionError, match=f"no cluster node of 127.0.0.1:{dead[1]}"):
        cluster.connect((dead,), password=PASSWORD)
    with pytest.raises(redis.ConnectionError, match="invalid username-password pair"):
        cluster.connect(tuple(valkey_cluster.startup_nodes[:1]), password="wrong")


@pytest.mark.parametrize(
    "output", ["out", "{out}", "a{b", "{a{b}", "{user1}.out", "{{x}}", "ü€", "{ü}€", "x:{y}:z"]
)
def test_derived_names_share_their_output_keys_slot(
    valkey_cluster: ValkeyCluster, output: str
) -> None:
    for suffix in ("state", "state:journal", "history", "lease:token"):
        assert valkey_cluster.keyslot(tagged(output, suffix)) == valkey_cluster.keyslot(output)
        assert slot(tagged(output, suffix)) == valkey_cluster.keyslot(output)


@pytest.mark.parametrize("output", ["a}b", "x{}y", "{}out"])
def test_names_refused_for_an_awkward_output_key_would_have_landed_elsewhere(
    valkey_cluster: ValkeyCluster, output: str
) -> None:
    with pytest.raises(ValueError, match="no other key name can share its hash slot"):
        tagged(output, "state")
    assert valkey_cluster.keyslot(f"{{{output}}}:state") != valkey_cluster.keyslot(output)


def test_a_slot_migration_is_followed_through_ask_and_moved(
    shaped: ValkeyCluster, client: RedisCluster
) -> None:
    key = "migrating-input"
    client.set(key, "before")
    source, target = shaped.owner(key), other_master(shaped, key)
    slot = shaped.keyslot(key)
    with shaped.migrating(slot, target) as move_keys:
        assert move_keys() == 1
        assert on_node(target, key) == "before"
        # The slot is still the source's: the source answers ASK, the client follows it.
        assert client.get(key) == b"before"
        client.set(key, "during")
        assert on_node(target, key) == "during"
    assert shaped.owner(key) is target
    assert client.get(key) == b"during"  # MOVED from the old master, if the client asks there
    client.set(key, "after")
    assert on_node(target, key) == "after"
    with source.client() as direct:
        assert direct.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) == 0


def test_a_graceful_failover_is_followed(shaped: ValkeyCluster, client: RedisCluster) -> None:
    key = "graceful-input"
    client.set(key, "1")
    old = shaped.owner(key)
    new = shaped.failover(old)
    assert shaped.owner(key) is new
    assert retried(lambda: client.get(key)) == b"1"
    client.set(key, "2")
    assert on_node(new, key) == "2"


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGSTOP], ids=["killed", "frozen"])
def test_a_forced_failover_of_a_dead_master_is_followed(
    shaped: ValkeyCluster, client: RedisCluster, signum: int
) -> None:
    key = f"forced-input-{signum}"
    client.set(key, "1")
    shaped.wait_settled()  # the replica has the key
    old = shaped.owner(key)
    new = shaped.takeover(old, signum)
    assert shaped.owner(key) is new
    assert retried(lambda: client.get(key)) == b"1"
    retried(lambda: client.set(key, "2"))
    assert on_node(new, key) == "2"


class Watcher:
    """KeyEvents driven as the runtime's loop drives a waiter: subscribe, then wait."""

    def __init__(self, client: RedisCluster, key: str) -> None:
        self.events = KeyEvents(client, key, threading.Event(), check_every=0.2)
        self.client = client
        self.key = key

    def follows_to(self, node: ClusterNode) -> bool:
        """Wait (as the loop does between reads) until the subscription is at `node`."""

        def there() -> bool:
            try:
                self.events.subscribe()
            except (redis.ConnectionError, redis.TimeoutError):
                return False
            self.events.wait(0.1)
            return self.events.node == ("127.0.0.1", node.port)

        return wait_for(there, what=f"the subscription to follow to port {node.port}")

    def sees_a_write(self, value: str) -> bool:
        """A write made now wakes the next wait (nothing else would: the key stays put)."""
        self.events.subscribe()
        self.events.wait(0)  # clear a wake-up owed to a move
        retried(lambda: self.client.set(self.key, value))
        return self.events.wait(10.0)


def test_key_events_come_from_the_keys_master(
    valkey_cluster: ValkeyCluster, client: RedisCluster
) -> None:
    watcher = Watcher(client, "events-input")
    try:
        owner = valkey_cluster.owner("events-input")
        watcher.events.subscribe()
        assert watcher.events.node == ("127.0.0.1", owner.port)
        assert watcher.sees_a_write("1")
        assert not watcher.events.wait(0.5), "no write, no wake-up"
    finally:
        watcher.events.close()


def test_key_events_follow_a_slot_migration(shaped: ValkeyCluster, client: RedisCluster) -> None:
    key = "events-migrating-input"
    client.set(key, "0")
    watcher = Watcher(client, key)
    try:
        source, target = shaped.owner(key), other_master(shaped, key)
        watcher.events.subscribe()
        with shaped.migrating(shaped.keyslot(key), target) as move_keys:
            move_keys()
            # Half-way, writes to the key run on the importing node (ASK): events come from there.
            assert watcher.follows_to(target)
            assert watcher.sees_a_write("during")
        assert watcher.sees_a_write("after")
        # Back to the first master, without waiting in between: a write made while the
        # subscription is still at the old master wakes the next wait all the same.
        shaped.migrate_slot(shaped.keyslot(key), source)
        client.set(key, "back")
        assert watcher.events.wait(10.0)
        assert watcher.follows_to(source)
        assert watcher.sees_a_write("home")
    finally:
        watcher.events.close()


@pytest.mark.parametrize("how", ["graceful", "killed", "frozen"])
def test_key_events_follow_a_failover(
    shaped: ValkeyCluster, client: RedisCluster, how: str
) -> None:
    key = f"events-failover-input-{how}"
    client.set(key, "0")
    shaped.wait_settled()
    watcher = Watcher(client, key)
    try:
        watcher.events.subscribe()
        assert watcher.sees_a_write("1")
        old = shaped.owner(key)
        if how == "graceful":
            new = shaped.failover(old)
        else:
            new = shaped.takeover(old, signal.SIGKILL if how == "killed" else signal.SIGSTOP)
        # Written before the subscription has moved: the next wait still wakes (the move is
        # noticed), so the caller reads the key again and the write is not lost.
        retried(lambda: client.set(key, "2"))
        assert watcher.events.wait(10.0)
        assert watcher.follows_to(new)
        assert watcher.sees_a_write("3")
        assert watcher.events.moves >= 1
    finally:
        watcher.events.close()
