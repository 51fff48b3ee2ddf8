"""The dashboard is reachable on its NodePort and Argo CD links to it."""

from __future__ import annotations

import pytest

from tests.manifests.rendered import OVERLAYS, container, find, pod_spec, render_overlay

NODE_PORTS = {"dev": 31001, "prod": 31002, "course": 31003}
LINK = "link.argocd.argoproj.io/external-link"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_dashboard_service_exposes_the_dashboard_port(overlay: str) -> None:
    docs = render_overlay(overlay)
    service = find(docs, "Service", "monitoring-dashboard")
    dashboard = find(docs, "Deployment", "monitoring-dashboard")
    assert service["spec"]["type"] == "NodePort"
    (port,) = service["spec"]["ports"]
    assert port["port"] == 80
    assert port["nodePort"] == NODE_PORTS[overlay]
    # The selector picks the dashboard pods and the target port is the one gunicorn binds.
    labels = dashboard["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    target = next(p for p in container(dashboard)["ports"] if p["name"] == port["targetPort"])
    assert target["containerPort"] == 8050
    link = service["metadata"].get("annotations", {}).get(LINK)
    # Only kind publishes its NodePort on localhost; elsewhere a localhost link would be wrong.
    assert link == (f"http://localhost:{NODE_PORTS[overlay]}" if overlay == "dev" else None)


def test_dev_dashboard_is_on_node_port_31001() -> None:
    # kind maps this port to the host: http://localhost:31001 is the dev dashboard.
    service = find(render_overlay("dev"), "Service", "monitoring-dashboard")
    assert service["spec"]["ports"][0]["nodePort"] == 31001


def test_node_ports_differ_between_overlays() -> None:
    # One environment per cluster, but a distinct port still tells which environment a URL is.
    ports = [
        port["nodePort"]
        for overlay in OVERLAYS
        for service in render_overlay(overlay)
        if service["kind"] == "Service"
        for port in service["spec"]["ports"]
        if "nodePort" in port
    ]
    assert len(ports) == len(set(ports)) == len(OVERLAYS)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_the_dashboard_is_exposed_outside_the_cluster(overlay: str) -> None:
    exposed = [
        doc["metadata"]["name"]
        for doc in render_overlay(overlay)
        if doc["kind"] == "Service" and doc["spec"].get("type", "ClusterIP") != "ClusterIP"
    ]
    assert exposed == ["monitoring-dashboard"]
    assert all(
        not pod_spec(doc).get("hostNetwork")
        for doc in render_overlay(overlay)
        if doc["kind"] == "Deployment"
    )
