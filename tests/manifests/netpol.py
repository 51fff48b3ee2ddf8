"""NetworkPolicy semantics, evaluated on the rendered objects: may this pod (or this address
outside the cluster) open a connection to that one on this port? Enough of the API for what the
overlays use: pod and namespace selectors (matchLabels, matchExpressions), ipBlock with except,
numbered and named ports with endPort, policyTypes.

Not modelled, as no CNI can be relied on for it: pods matched by ipBlock (implementation-defined)
and traffic from the pod's own node, which Kubernetes always allows (the kubelet's probes)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field

from tests.manifests.rendered import Doc, find, pod_spec

NAME = "app.kubernetes.io/name"
# The overlays that list components/dashboard-metrics: their dashboard reads the runtimes' /metrics
# (course keeps the course's objects only).
DASHBOARD_METRICS_LISTED = ("dev", "prod")


@dataclass(frozen=True)
class Endpoint:
    """One end of a connection: a pod (namespace and labels) or an address outside the cluster."""

    namespace: str | None = None
    labels: Mapping[str, str] | None = None
    namespace_labels: Mapping[str, str] = field(default_factory=dict)
    ip: str | None = None
    # Named container ports, for policies that name a port.
    ports: Mapping[str, int] = field(default_factory=dict)


def pod_of(docs: list[Doc], workload: str, namespace: str) -> Endpoint:
    """The pod a rendered Deployment runs, in the namespace the overlay deploys to."""
    template = find(docs, "Deployment", workload)["spec"]["template"]
    ports = {
        p["name"]: int(p["containerPort"])
        for ctr in pod_spec(find(docs, "Deployment", workload))["containers"]
        for p in ctr.get("ports", [])
        if "name" in p
    }
    return pod(namespace, template["metadata"]["labels"], ports)


def pod(
    namespace: str, labels: Mapping[str, str], ports: Mapping[str, int] | None = None
) -> Endpoint:
    """Any pod: namespaces carry their automatic kubernetes.io/metadata.name label."""
    return Endpoint(
        namespace=namespace,
        labels=dict(labels),
        namespace_labels={"kubernetes.io/metadata.name": namespace},
        ports=dict(ports or {}),
    )


def address(ip: str) -> Endpoint:
    """A host outside the cluster (or a browser reaching a NodePort)."""
    return Endpoint(ip=ip)


# CoreDNS as kubeadm (and kind) deploy it.
KUBE_DNS = pod("kube-system", {"k8s-app": "kube-dns"}, {"dns": 53, "dns-tcp": 53})


def selects(selector: Mapping[str, object], labels: Mapping[str, str]) -> bool:
    """Whether a label selector matches; {} matches everything."""
    match_labels = selector.get("matchLabels") or {}
    assert isinstance(match_labels, dict)
    if any(labels.get(key) != value for key, value in match_labels.items()):
        return False
    expressions = selector.get("matchExpressions") or []
    assert isinstance(expressions, list)
    for expression in expressions:
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values", [])
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
        if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise ValueError(f"unknown selector operator {operator}")
    return True


def _peer_matches(peer: Doc, other: Endpoint, policy_namespace: str) -> bool:
    if "ipBlock" in peer:
        if other.ip is None:
            return False
        ip = ipaddress.ip_address(other.ip)
        block = peer["ipBlock"]
        if ip not in ipaddress.ip_network(block["cidr"]):
            return False
        return not any(ip in ipaddress.ip_network(cidr) for cidr in block.get("except", []))
    if other.labels is None:
        return False  # selectors match pods only
    if "namespaceSelector" in peer:
        namespace_ok = selects(peer["namespaceSelector"], other.namespace_labels)
    else:
        namespace_ok = other.namespace == policy_namespace
    return namespace_ok and selects(peer.get("podSelector") or {}, other.labels)


def _port_matches(ports: list[Doc], port: int, protocol: str, destination: Endpoint) -> bool:
    if not ports:
        return True
    for entry in ports:
        if entry.get("protocol", "TCP") != protocol:
            continue
        if "port" not in entry:
            return True
        named: int | str = entry["port"]
        if isinstance(named, str):
            if named not in destination.ports:
                continue
            named = destination.ports[named]
        number = int(named)
        end = int(entry["endPort"]) if "endPort" in entry else number
        if number <= port <= end:
            return True
    return False


def _policy_types(policy: Doc) -> list[str]:
    spec = policy["spec"]
    if "policyTypes" in spec:
        return list(spec["policyTypes"])
    return ["Ingress", *(["Egress"] if "egress" in spec else [])]


def _side_allows(
    policies: list[Doc],
    direction: str,
    subject: Endpoint,
    other: Endpoint,
    port: int,
    protocol: str,
    destination: Endpoint,
) -> bool:
    """Whether the policies of subject's namespace let this direction through for subject."""
    if subject.labels is None:
        return True  # outside the cluster: no NetworkPolicy applies there
    isolating = [
        p
        for p in policies
        if p["metadata"].get("namespace") == subject.namespace
        and direction in _policy_types(p)
        and selects(p["spec"].get("podSelector") or {}, subject.labels)
    ]
    if not isolating:
        return True
    key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    for policy in isolating:
        for rule in policy["spec"].get(key) or []:
            peers = rule.get(peers_key) or []
            if not _port_matches(rule.get("ports") or [], port, protocol, destination):
                continue
            if not peers or any(
                _peer_matches(peer, other, policy["metadata"]["namespace"]) for peer in peers
            ):
                return True
    return False


def allowed(
    policies: list[Doc], source: Endpoint, destination: Endpoint, port: int, protocol: str = "TCP"
) -> bool:
    """Whether source may connect to destination's port: its egress and their ingress allow it."""
    return _side_allows(
        policies, "Egress", source, destination, port, protocol, destination
    ) and _side_allows(policies, "Ingress", destination, source, port, protocol, destination)


def network_policies(docs: list[Doc]) -> list[Doc]:
    """The rendered NetworkPolicies."""
    return [d for d in docs if d["kind"] == "NetworkPolicy"]
