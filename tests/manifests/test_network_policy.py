"""Every overlay closes its namespace by default and opens exactly: DNS for every pod, the
dashboard's port to anyone (it is published on a NodePort), and Redis between our pods and the
Redis their overlay names (in-cluster in dev, an address outside in prod and course).

The kubelet's probes rely on Kubernetes' rule that traffic from a pod's own node is always allowed
(gitops/README.md, "Network policies"); the probe server must listen on the pod's address for it."""

from __future__ import annotations

import ipaddress

import kubernetes_validate
import pytest
from serverless_runtime.config import Settings

from tests.manifests.netpol import (
    DASHBOARD_METRICS_LISTED,
    KUBE_DNS,
    NAME,
    Endpoint,
    address,
    allowed,
    network_policies,
    pod,
    pod_of,
)
from tests.manifests.rendered import (
    NAMESPACES,
    OVERLAYS,
    RUNTIMES,
    Doc,
    container,
    find,
    render_overlay,
    resolve_env,
    workloads,
)
from tests.manifests.test_render import KUBERNETES_VERSIONS

# Addresses from the documentation ranges (RFC 5737): a browser, some host on the Internet.
BROWSER = address("198.51.100.7")
INTERNET = address("203.0.113.50")


def _docs(overlay: str) -> list[Doc]:
    return render_overlay(overlay)


def _policies(overlay: str) -> list[Doc]:
    return network_policies(_docs(overlay))


def _pods(overlay: str) -> dict[str, Endpoint]:
    docs = _docs(overlay)
    return {
        w["metadata"]["name"]: pod_of(docs, w["metadata"]["name"], NAMESPACES[overlay])
        for w in workloads(docs)
    }


def _clients(overlay: str) -> dict[str, Endpoint]:
    """Our pods that talk to Redis: every workload but Redis itself."""
    return {name: p for name, p in _pods(overlay).items() if name != "redis"}


def _redis_connection(overlay: str) -> tuple[str, int]:
    """REDIS_HOST and REDIS_PORT as the runtime resolves them."""
    docs = _docs(overlay)
    ctr = container(find(docs, "Deployment", RUNTIMES[overlay]), "runtime")
    redis = Settings.from_env(resolve_env(ctr, docs)).redis
    return redis.host, redis.port


def _redis_endpoint(overlay: str) -> Endpoint:
    """Where the overlay's clients connect: the Redis pod (dev) or the external address."""
    pods = _pods(overlay)
    if "redis" in pods:
        return pods["redis"]
    host, _ = _redis_connection(overlay)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        # A DNS name (prod), which a policy cannot name: its address is the overlay's setting.
        (network,) = _redis_egress_networks(overlay)
        return address(str(network.network_address))
    return address(host)


def _redis_egress_networks(overlay: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The ipBlock CIDRs of the overlay's redis-egress policy: where its Redis may be."""
    (policy,) = [p for p in _policies(overlay) if p["metadata"]["name"] == "redis-egress"]
    return [
        ipaddress.ip_network(peer["ipBlock"]["cidr"])
        for rule in policy["spec"]["egress"]
        for peer in rule["to"]
        if "ipBlock" in peer
    ]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_default_deny_closes_every_pod_both_ways(overlay: str) -> None:
    deny = [
        p
        for p in _policies(overlay)
        if p["spec"]["podSelector"] == {}
        and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
    ]
    assert [p["metadata"]["name"] for p in deny] == ["default-deny"]
    # So a pod nobody wrote a policy for can neither be reached nor reach anything.
    stranger = pod(NAMESPACES[overlay], {NAME: "something-else"}, {"http": 80})
    assert not allowed(_policies(overlay), BROWSER, stranger, 80)
    assert not allowed(_policies(overlay), stranger, INTERNET, 443)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_every_pod_may_resolve_names_and_nothing_more_there(overlay: str) -> None:
    policies = _policies(overlay)
    for name, source in _pods(overlay).items():
        assert allowed(policies, source, KUBE_DNS, 53, "UDP"), name
        assert allowed(policies, source, KUBE_DNS, 53, "TCP"), name
        assert not allowed(policies, source, KUBE_DNS, 9153), name  # CoreDNS's metrics
        # The label alone is not enough: a pod named like CoreDNS elsewhere is no DNS server.
        impostor = pod("serverless-elsewhere", {"k8s-app": "kube-dns"})
        assert not allowed(policies, source, impostor, 53, "UDP"), name
        assert not allowed(policies, source, address("8.8.8.8"), 53, "UDP"), name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_our_pods_reach_their_redis(overlay: str) -> None:
    policies = _policies(overlay)
    redis = _redis_endpoint(overlay)
    _, port = _redis_connection(overlay)
    assert _clients(overlay), "no Redis client rendered"
    for name, client in _clients(overlay).items():
        assert allowed(policies, client, redis, port), name
        # Only Redis's port, and only Redis.
        assert not allowed(policies, client, redis, 22), name
        assert not allowed(policies, client, INTERNET, 443), name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_our_pods_reach_nothing_else(overlay: str) -> None:
    policies = _policies(overlay)
    pods = _pods(overlay)
    for name, source in pods.items():
        for other_name, other in pods.items():
            if other_name in ("redis", "monitoring-dashboard") or other_name == name:
                continue
            for port_name, port in other.ports.items():
                if _dashboard_reads_metrics(overlay, name, other, port_name):
                    continue
                assert not allowed(policies, source, other, port), (name, other_name)


def _dashboard_reads_metrics(overlay: str, source: str, target: Endpoint, port: str) -> bool:
    """The one exception where the overlay lists components/dashboard-metrics: the dashboard
    reads each runtime's /metrics on its `http` port (tests/manifests/test_prometheus.py)."""
    runtime = (target.labels or {}).get(NAME) == "serverless-runtime"
    listed = overlay in DASHBOARD_METRICS_LISTED
    return listed and source == "monitoring-dashboard" and runtime and port == "http"


def test_network_dev_redis_only_from_our_pods() -> None:
    policies = _policies("dev")
    redis = _pods("dev")["redis"]
    namespace = NAMESPACES["dev"]
    for name in (RUNTIMES["dev"], "metrics-collector", "monitoring-dashboard"):
        client = _pods("dev")[name]
        assert allowed(policies, client, redis, 6379), name
        # Same labels, other namespace: refused.
        elsewhere = pod("serverless-prod", client.labels or {})
        assert not allowed(policies, elsewhere, redis, 6379), name
    assert not allowed(policies, pod(namespace, {NAME: "debug-shell"}), redis, 6379)
    assert not allowed(policies, BROWSER, redis, 6379)
    # Redis itself connects nowhere but DNS.
    assert not allowed(policies, redis, INTERNET, 443)
    assert not allowed(policies, redis, _pods("dev")[RUNTIMES["dev"]], 8080)


def test_network_course_allows_exactly_the_course_redis_address() -> None:
    policies = _policies("course")
    host, port = _redis_connection("course")
    for name, client in _clients("course").items():
        assert allowed(policies, client, address(host), port), name
        neighbour = str(ipaddress.ip_address(host) + 1)
        assert not allowed(policies, client, address(neighbour), port), name
    # The dashboard reads the same Redis, from its own ConfigMap: one address for both.
    dashboard = container(find(_docs("course"), "Deployment", "monitoring-dashboard"))
    assert resolve_env(dashboard, _docs("course"))["REDIS_HOST"] == host


@pytest.mark.parametrize("overlay", [o for o in OVERLAYS if o != "dev"])
def test_network_external_redis_is_one_configured_address_and_port(overlay: str) -> None:
    # The overlay's setting (network-policy-redis-egress.yaml): its Redis's address or subnet,
    # never the whole Internet, and exactly the port its clients connect to.
    networks = _redis_egress_networks(overlay)
    assert networks
    for network in networks:
        assert network.prefixlen >= 8, f"{overlay}: {network} opens Redis's port to the Internet"
    _, port = _redis_connection(overlay)
    (policy,) = [p for p in _policies(overlay) if p["metadata"]["name"] == "redis-egress"]
    ports = {p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"]}
    assert ports == {port}
    for name, client in _clients(overlay).items():
        assert allowed(_policies(overlay), client, _redis_endpoint(overlay), port), name
        assert not allowed(_policies(overlay), client, INTERNET, port), name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_dashboard_is_reachable_wherever_it_is_published(overlay: str) -> None:
    docs = _docs(overlay)
    policies = network_policies(docs)
    dashboard = _pods(overlay)["monitoring-dashboard"]
    service = find(docs, "Service", "monitoring-dashboard")
    assert service["spec"]["type"] == "NodePort"
    (service_port,) = service["spec"]["ports"]
    target = service_port["targetPort"]
    port = dashboard.ports[target] if isinstance(target, str) else int(target)
    for source in (BROWSER, pod("somewhere-else", {NAME: "browser"})):
        assert allowed(policies, source, dashboard, port)
    assert not allowed(policies, BROWSER, dashboard, port + 1)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_runtime_http_port_is_for_the_node_only(overlay: str) -> None:
    # /healthz, /readyz and /metrics: the kubelet reaches them from the node, which no policy
    # filters; no outside address may, and no pod but the dashboard where the overlay lists
    # components/dashboard-metrics.
    policies = _policies(overlay)
    runtime = _pods(overlay)[RUNTIMES[overlay]]
    port = runtime.ports["http"]
    assert not allowed(policies, BROWSER, runtime, port)
    dashboard = pod(NAMESPACES[overlay], {NAME: "monitoring-dashboard"})
    assert allowed(policies, dashboard, runtime, port) == (overlay in DASHBOARD_METRICS_LISTED)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_runtime_probe_server_listens_on_the_pod_address(overlay: str) -> None:
    # The kubelet probes the pod's IP: the server must not bind loopback only.
    docs = _docs(overlay)
    ctr = container(find(docs, "Deployment", RUNTIMES[overlay]), "runtime")
    host = Settings.from_env(resolve_env(ctr, docs)).http_host
    assert host in ("0.0.0.0", "::"), host


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_validate_strictly(overlay: str, version: str) -> None:
    policies = _policies(overlay)
    assert len(policies) >= 4
    for policy in policies:
        kubernetes_validate.validate(policy, version, strict=True)
        assert policy["metadata"]["namespace"] == NAMESPACES[overlay]


def test_network_evaluator_catches_an_open_namespace() -> None:
    # The checks above can fail: with no policy selecting it for ingress, dev's Redis is open to
    # every pod; default-deny alone closes it (to our clients too).
    redis = _pods("dev")["redis"]
    intruder = pod("elsewhere", {NAME: "intruder"})
    unguarded = {"redis-ingress", "default-deny"}
    open_policies = [p for p in _policies("dev") if p["metadata"]["name"] not in unguarded]
    assert allowed(open_policies, intruder, redis, 6379)
    closed = [p for p in _policies("dev") if p["metadata"]["name"] != "redis-ingress"]
    assert not allowed(closed, intruder, redis, 6379)
    assert not allowed(closed, _pods("dev")[RUNTIMES["dev"]], redis, 6379)
    # And without the egress allowance, the runtime could not reach it.
    no_egress = [p for p in _policies("dev") if p["metadata"]["name"] != "redis-egress"]
    assert not allowed(no_egress, _pods("dev")[RUNTIMES["dev"]], redis, 6379)
